"""visit requests: what members ask for from the portal

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'visit_requests',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('company_id', BIG, nullable=False),
        sa.Column('customer_id', sa.String(length=40), nullable=False),
        sa.Column('membership_id', sa.String(length=40), nullable=True),
        sa.Column('service_code', sa.String(length=64), nullable=True),
        sa.Column('service_name', sa.String(length=200), nullable=False),
        sa.Column('included', sa.Boolean(), nullable=False),
        sa.Column('preferred', sa.String(length=200), nullable=True),
        sa.Column('notes', sa.String(length=1000), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', NOW, nullable=False),
        sa.Column('changed_at', NOW, nullable=True),
    )
    op.create_index('ix_visit_requests_company_id', 'visit_requests', ['company_id'])
    op.create_index('ix_visit_requests_customer_id', 'visit_requests', ['customer_id'])


def downgrade() -> None:
    op.drop_index('ix_visit_requests_customer_id', 'visit_requests')
    op.drop_index('ix_visit_requests_company_id', 'visit_requests')
    op.drop_table('visit_requests')
