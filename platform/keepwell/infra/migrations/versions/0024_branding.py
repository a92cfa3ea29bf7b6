"""the member portal's look: a company's brand colour and logo

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.add_column(sa.Column('brand_color', sa.String(length=7), nullable=True))
        t.add_column(sa.Column('logo', sa.LargeBinary(), nullable=True))
        t.add_column(sa.Column('logo_type', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('companies') as t:
        t.drop_column('logo_type')
        t.drop_column('logo')
        t.drop_column('brand_color')
