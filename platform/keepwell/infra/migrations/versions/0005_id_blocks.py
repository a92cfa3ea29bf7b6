"""ids in blocks on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

The sequences of the tables the event pipeline writes in bulk step by 1000: each `nextval`
reserves a block of 1000 ids for the process that drew it (keepwell.infra.unit.IdBlocks), so a
process asks the database for ids once per thousand rows instead of once per transaction. A row
inserted with the column's default simply takes a block's first id. SQLite is unchanged.
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = ("events", "accounts", "ledger_entries", "points_lots", "lot_draws", "outbox")
BLOCK = 1000


def _step(n: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                   f"GREATEST((SELECT coalesce(max(id), 0) FROM {table}), 1))")
        op.execute(f"DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s INCREMENT BY {n}', "
                   f"pg_get_serial_sequence('{table}', 'id')); END $$")


def upgrade() -> None:
    _step(BLOCK)


def downgrade() -> None:
    _step(1)
