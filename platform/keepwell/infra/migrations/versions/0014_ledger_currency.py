"""the ledger's currency: money accounts hold one currency, money entries name theirs

Existing money accounts are in the plans' default, USD. Entries are append-only (the database
refuses UPDATE on them): those written before this migration keep no currency of their own, and
their account's applies.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as t:
        t.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
    op.execute("UPDATE accounts SET currency = 'USD' WHERE unit IN ('allowance', 'overdraft')")
    op.add_column('ledger_entries', sa.Column('currency', sa.String(length=3), nullable=True))


def downgrade() -> None:
    op.drop_column('ledger_entries', 'currency')
    with op.batch_alter_table('accounts') as t:
        t.drop_column('currency')
