"""a company's webhook endpoint turned off after it answered 410 Gone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('webhook_disabled_at', sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column('webhook_disabled_reason', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.drop_column('webhook_disabled_reason')
        t.drop_column('webhook_disabled_at')
