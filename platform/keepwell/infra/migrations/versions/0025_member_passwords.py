"""members' own portal passwords

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'member_passwords',
        sa.Column('customer_id', sa.String(length=40), sa.ForeignKey('customers.id'), primary_key=True),
        sa.Column('company_id', BIG, sa.ForeignKey('companies.id'), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('session_version', sa.Integer(), nullable=False),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_member_passwords_company_id', 'member_passwords', ['company_id'])


def downgrade() -> None:
    op.drop_index('ix_member_passwords_company_id', table_name='member_passwords')
    op.drop_table('member_passwords')
