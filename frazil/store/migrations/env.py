"""Alembic environment: migrations run on a connection that ``Database.migrate`` passes in."""

from alembic import context

from frazil.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through frazil.store.Database.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
