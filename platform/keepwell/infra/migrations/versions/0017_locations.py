"""locations with their sales tax; customers' service address and location; tax per invoice line

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'locations',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('tax_rate', sa.String(length=12), nullable=False),
        sa.Column('tax_name', sa.String(length=60), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('company_id', 'name', name='uq_locations_company_name'),
    )
    op.create_index('ix_locations_company_id', 'locations', ['company_id'])
    with op.batch_alter_table('customers') as t:
        t.add_column(sa.Column('location_id', sa.String(length=40), nullable=True))
        t.add_column(sa.Column('service_address', sa.String(length=300), nullable=True))
    with op.batch_alter_table('invoice_lines') as t:
        t.add_column(sa.Column('tax_cents', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('invoices') as t:
        t.add_column(sa.Column('tax_rate', sa.String(length=12), nullable=True))
        t.add_column(sa.Column('tax_name', sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invoices') as t:
        t.drop_column('tax_name')
        t.drop_column('tax_rate')
    with op.batch_alter_table('invoice_lines') as t:
        t.drop_column('tax_cents')
    with op.batch_alter_table('customers') as t:
        t.drop_column('service_address')
        t.drop_column('location_id')
    op.drop_index('ix_locations_company_id', 'locations')
    op.drop_table('locations')
