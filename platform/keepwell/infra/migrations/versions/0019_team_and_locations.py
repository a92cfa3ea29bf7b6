"""team and locations: emailed invitations and password-reset links for admin users; a
location's address and time zone; whether POS receipts print the remaining allowance

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

NOW = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('users') as t:
        t.add_column(sa.Column('link_digest', sa.String(length=64), nullable=True))
        t.add_column(sa.Column('link_expires_at', NOW, nullable=True))
        t.add_column(sa.Column('invited_at', NOW, nullable=True))
        t.add_column(sa.Column('joined_at', NOW, nullable=True))
    op.create_index('ix_users_link_digest', 'users', ['link_digest'], unique=True)
    with op.batch_alter_table('locations') as t:
        t.add_column(sa.Column('address', sa.String(length=300), nullable=True))
        t.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('receipt_shows_balance', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_index('ix_customers_location_id', 'customers', ['company_id', 'location_id'])
    op.create_index('ix_outbox_customer', 'outbox', ['company_id', 'customer_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_outbox_customer', 'outbox')
    op.drop_index('ix_customers_location_id', 'customers')
    with op.batch_alter_table('companies') as t:
        t.drop_column('receipt_shows_balance')
    with op.batch_alter_table('locations') as t:
        t.drop_column('timezone')
        t.drop_column('address')
    op.drop_index('ix_users_link_digest', 'users')
    with op.batch_alter_table('users') as t:
        t.drop_column('joined_at')
        t.drop_column('invited_at')
        t.drop_column('link_expires_at')
        t.drop_column('link_digest')
