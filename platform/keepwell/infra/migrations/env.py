"""Alembic environment: the engine is handed in by keepwell.infra.database.upgrade, never read from a file."""

from alembic import context

from keepwell.infra.tables import Base

config = context.config
engine = config.attributes["engine"]


def _sqlite_foreign_keys(connection, on: bool) -> None:  # type: ignore[no-untyped-def]
    # SQLite rebuilds a table to alter it (batch mode): dropping the old copy would cascade-check
    # the tables that refer to it. The switch only works outside a transaction, so it goes
    # straight to the driver's connection before Alembic's transaction begins.
    connection.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=sqlite)
    if sqlite:
        _sqlite_foreign_keys(connection, False)
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows that refer to nothing: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, True)
