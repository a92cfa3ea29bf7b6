"""marketing consent (each agreement and withdrawal, when and where) and members' own quiet hours

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'marketing_consents',
        sa.Column('id', BIG, primary_key=True, autoincrement=True),
        sa.Column('company_id', BIG, sa.ForeignKey('companies.id'), nullable=False),
        sa.Column('customer_id', sa.String(length=40), sa.ForeignKey('customers.id'), nullable=False),
        sa.Column('granted', sa.Boolean(), nullable=False),
        sa.Column('at', NOW, nullable=False),
        sa.Column('source', sa.String(length=60), nullable=False),
    )
    op.create_index('ix_marketing_consents_company_id', 'marketing_consents', ['company_id'])
    op.create_index('ix_marketing_consents_customer_id', 'marketing_consents', ['customer_id'])
    with op.batch_alter_table('customers') as t:
        t.add_column(sa.Column('quiet_start', sa.String(length=5), nullable=True))
        t.add_column(sa.Column('quiet_end', sa.String(length=5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customers') as t:
        t.drop_column('quiet_end')
        t.drop_column('quiet_start')
    op.drop_index('ix_marketing_consents_customer_id', 'marketing_consents')
    op.drop_index('ix_marketing_consents_company_id', 'marketing_consents')
    op.drop_table('marketing_consents')
