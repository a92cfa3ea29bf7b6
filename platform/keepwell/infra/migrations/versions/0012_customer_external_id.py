"""customers: the id another system knows each by (unique per company)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customers') as t:
        t.add_column(sa.Column('external_id', sa.String(length=100), nullable=True))
        t.create_unique_constraint('uq_customers_external_id', ['company_id', 'external_id'])


def downgrade() -> None:
    with op.batch_alter_table('customers') as t:
        t.drop_constraint('uq_customers_external_id', type_='unique')
        t.drop_column('external_id')
