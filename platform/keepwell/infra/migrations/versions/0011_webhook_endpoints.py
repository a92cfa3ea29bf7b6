"""webhook endpoints: companies subscribe URLs to event types; outbox messages name theirs

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True),
        sa.Column('company_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  sa.ForeignKey('companies.id'), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('event_types', sa.JSON(), nullable=False),
        sa.Column('description', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('disabled_reason', sa.String(length=300), nullable=True),
    )
    op.create_index('ix_webhook_endpoints_company_id', 'webhook_endpoints', ['company_id'])
    with op.batch_alter_table('outbox') as t:
        t.add_column(sa.Column('endpoint_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('webhook_event_types', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.drop_column('webhook_event_types')
    with op.batch_alter_table('outbox') as t:
        t.drop_column('endpoint_id')
    op.drop_index('ix_webhook_endpoints_company_id', 'webhook_endpoints')
    op.drop_table('webhook_endpoints')
