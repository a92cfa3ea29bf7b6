"""the event pipeline's tables without foreign keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every event writes rows to these tables in bulk, and checking each row's foreign keys was about
three quarters of the database's time for a COPY of them. Only the pipeline writes them, always
inside the transaction that writes the rows they point to, so the keys never caught anything the
code could do; `keepwell audit` checks the same references (keepwell.reporting.integrity) and reports
any row that points nowhere or into another company.
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

DROPPED = {  # table: [(column, referred table)]
    "events": [("company_id", "companies")],
    "accounts": [("company_id", "companies")],
    "ledger_entries": [("account_id", "accounts"), ("company_id", "companies"), ("event_id", "events")],
    "points_lots": [("account_id", "accounts"), ("company_id", "companies"), ("entry_id", "ledger_entries")],
    "lot_draws": [("entry_id", "ledger_entries"), ("lot_id", "points_lots")],
    "outbox": [("company_id", "companies"), ("event_id", "events")],
}
APPEND_ONLY = ("ledger_entries", "lot_draws")  # SQLite rebuilds the table, and its triggers with it


def _name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def _sqlite_append_only(table: str) -> None:
    for action in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action.lower()}")
        op.execute(
            f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'append-only table {table}: {action} refused'); END"
        )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, keys in DROPPED.items():
        with op.batch_alter_table(table) as batch:
            for column, referred in keys:
                batch.drop_constraint(_name(table, column, referred), type_="foreignkey")
        if sqlite and table in APPEND_ONLY:
            _sqlite_append_only(table)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, keys in DROPPED.items():
        with op.batch_alter_table(table) as batch:
            for column, referred in keys:
                batch.create_foreign_key(_name(table, column, referred), referred, [column], ["id"])
        if sqlite and table in APPEND_ONLY:
            _sqlite_append_only(table)
