"""Alembic environment: migrations always run on the connection ``monitor.migrate`` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import monitor.schema  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
