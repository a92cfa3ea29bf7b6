"""member portal: one-time sign-in links emailed to customers

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'member_links',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, sa.ForeignKey('companies.id'), nullable=False),
        sa.Column('customer_id', sa.String(length=40), sa.ForeignKey('customers.id'), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False, unique=True),
        sa.Column('created_at', NOW, nullable=False),
        sa.Column('expires_at', NOW, nullable=False),
        sa.Column('used_at', NOW, nullable=True),
    )
    op.create_index('ix_member_links_company_id', 'member_links', ['company_id'])
    op.create_index('ix_member_links_customer_id', 'member_links', ['customer_id'])


def downgrade() -> None:
    op.drop_index('ix_member_links_customer_id', 'member_links')
    op.drop_index('ix_member_links_company_id', 'member_links')
    op.drop_table('member_links')
