"""Alembic environment: the engine is handed in by keepwell.infra.database.upgrade, never read from a file."""

from alembic import context

from keepwell.infra.tables import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
