"""a company's previous webhook secret, valid until a moment (rotation)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('webhook_secret_previous', sa.String(length=100), nullable=True))
        t.add_column(sa.Column('webhook_secret_previous_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.drop_column('webhook_secret_previous_until')
        t.drop_column('webhook_secret_previous')
