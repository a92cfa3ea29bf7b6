"""billing: schedules, invoices with their lines, and the counter that numbers them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'billing_schedules',
        sa.Column('membership_id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('cadence', sa.String(length=20), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('anchor_on', sa.Date(), nullable=False),
        sa.Column('anchor_day', sa.Integer(), nullable=False),
        sa.Column('price_cents', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('proration', sa.String(length=20), nullable=False),
        sa.Column('next_bill_on', sa.Date(), nullable=False),
        sa.Column('ruleset', sa.String(length=120), nullable=False),
    )
    op.create_index('ix_billing_schedules_company_id', 'billing_schedules', ['company_id'])
    op.create_index('ix_billing_schedules_next_bill_on', 'billing_schedules', ['next_bill_on'])
    op.create_table(
        'invoices',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('number', sa.Integer(), nullable=True),
        sa.Column('membership_id', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('issued_on', sa.Date(), nullable=True),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('subtotal_cents', sa.BigInteger(), nullable=False),
        sa.Column('tax_cents', sa.BigInteger(), nullable=False),
        sa.Column('total_cents', sa.BigInteger(), nullable=False),
        sa.Column('amount_due_cents', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('company_id', 'number', name='uq_invoices_company_number'),
        sa.UniqueConstraint('company_id', 'key', name='uq_invoices_company_key'),
    )
    op.create_index('ix_invoices_membership_id', 'invoices', ['membership_id'])
    op.create_index('ix_invoices_customer_id', 'invoices', ['customer_id'])
    op.create_table(
        'invoice_lines',
        sa.Column('id', BIG, primary_key=True),
        sa.Column('invoice_id', BIG, sa.ForeignKey('invoices.id'), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('description', sa.String(length=300), nullable=False),
        sa.Column('amount_cents', sa.BigInteger(), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
    )
    op.create_index('ix_invoice_lines_invoice_id', 'invoice_lines', ['invoice_id'])
    op.create_table(
        'invoice_counters',
        sa.Column('company_id', BIG, primary_key=True),
        sa.Column('last_number', sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('invoice_counters')
    op.drop_index('ix_invoice_lines_invoice_id', 'invoice_lines')
    op.drop_table('invoice_lines')
    op.drop_index('ix_invoices_customer_id', 'invoices')
    op.drop_index('ix_invoices_membership_id', 'invoices')
    op.drop_table('invoices')
    op.drop_index('ix_billing_schedules_next_bill_on', 'billing_schedules')
    op.drop_index('ix_billing_schedules_company_id', 'billing_schedules')
    op.drop_table('billing_schedules')
