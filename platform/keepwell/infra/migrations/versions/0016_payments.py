"""payments: payment methods (gateway tokens only), charges and refunds, credit notes, the
sandbox gateway's books, collecting an invoice, a membership's standing

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('billing_schedules') as t:
        t.add_column(sa.Column('payment_method_id', sa.String(length=40), nullable=True))
        t.add_column(sa.Column('change_to_tier', sa.String(length=64), nullable=True))
        t.add_column(sa.Column('ends_on', sa.Date(), nullable=True))
        t.add_column(sa.Column('ends_refund', sa.String(length=20), nullable=True))
        t.add_column(sa.Column('replaces', sa.String(length=40), nullable=True))
    with op.batch_alter_table('invoices') as t:
        t.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        t.add_column(sa.Column('next_attempt_on', sa.Date(), nullable=True))
        t.add_column(sa.Column('failed_on', sa.Date(), nullable=True))
        t.add_column(sa.Column('paid_on', sa.Date(), nullable=True))
        t.add_column(sa.Column('refunded_cents', sa.BigInteger(), nullable=False, server_default='0'))
    op.create_index('ix_invoices_next_attempt_on', 'invoices', ['next_attempt_on'])
    with op.batch_alter_table('invoice_counters') as t:
        t.add_column(sa.Column('last_credit_note', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('memberships') as t:
        t.add_column(sa.Column('standing', sa.String(length=20), nullable=True))
    op.create_table(
        'payment_methods',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('gateway', sa.String(length=20), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('brand', sa.String(length=20), nullable=False),
        sa.Column('last4', sa.String(length=4), nullable=False),
        sa.Column('exp_month', sa.Integer(), nullable=False),
        sa.Column('exp_year', sa.Integer(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
    )
    op.create_index('ix_payment_methods_company_id', 'payment_methods', ['company_id'])
    op.create_index('ix_payment_methods_customer_id', 'payment_methods', ['customer_id'])
    op.create_table(
        'payments',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('invoice_id', BIG, nullable=False),
        sa.Column('payment_method_id', sa.String(length=40), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=True),
        sa.Column('decline_code', sa.String(length=40), nullable=True),
        sa.Column('retryable', sa.Boolean(), nullable=False),
        sa.Column('attempted_on', sa.Date(), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.UniqueConstraint('company_id', 'key', name='uq_payments_company_key'),
    )
    op.create_index('ix_payments_invoice_id', 'payments', ['invoice_id'])
    op.create_table(
        'credit_notes',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('invoice_id', BIG, nullable=False),
        sa.Column('membership_id', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('issued_on', sa.Date(), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('refunded_cents', sa.BigInteger(), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.UniqueConstraint('company_id', 'number', name='uq_credit_notes_company_number'),
        sa.UniqueConstraint('company_id', 'key', name='uq_credit_notes_company_key'),
    )
    op.create_index('ix_credit_notes_invoice_id', 'credit_notes', ['invoice_id'])
    op.create_index('ix_credit_notes_membership_id', 'credit_notes', ['membership_id'])
    op.create_table(
        'sandbox_charges',
        sa.Column('key', sa.String(length=240), primary_key=True),
        sa.Column('reference', sa.String(length=60), nullable=False, unique=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('token', sa.String(length=200), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decline_code', sa.String(length=40), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('sandbox_charges')
    op.drop_index('ix_credit_notes_membership_id', 'credit_notes')
    op.drop_index('ix_credit_notes_invoice_id', 'credit_notes')
    op.drop_table('credit_notes')
    op.drop_index('ix_payments_invoice_id', 'payments')
    op.drop_table('payments')
    op.drop_index('ix_payment_methods_customer_id', 'payment_methods')
    op.drop_index('ix_payment_methods_company_id', 'payment_methods')
    op.drop_table('payment_methods')
    with op.batch_alter_table('memberships') as t:
        t.drop_column('standing')
    with op.batch_alter_table('invoice_counters') as t:
        t.drop_column('last_credit_note')
    op.drop_index('ix_invoices_next_attempt_on', 'invoices')
    with op.batch_alter_table('invoices') as t:
        for c in ('refunded_cents', 'paid_on', 'failed_on', 'next_attempt_on', 'attempts'):
            t.drop_column(c)
    with op.batch_alter_table('billing_schedules') as t:
        for c in ('replaces', 'ends_refund', 'ends_on', 'change_to_tier', 'payment_method_id'):
            t.drop_column(c)
