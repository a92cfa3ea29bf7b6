"""companies: a test clock (test mode): business time frozen at a moment until moved on

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('clock_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.drop_column('clock_at')
