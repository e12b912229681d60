"""Schema versions with Alembic: create a new database, check an existing one, upgrade an old one.

Revision ``000N`` is schema version N (``schema.SCHEMA_VERSION`` is the head). A new, empty database
is created from the table definitions and stamped at the head; an existing one must be at the head,
else start-up stops with a message saying which way it differs and what to do. ``monitor migrate``
applies the missing revisions, in one transaction where the database allows (PostgreSQL and SQLite
both run DDL transactionally). Databases made before Alembic was adopted (schema version 1 recorded
only in the ``meta`` table) are recognised and stamped first. On PostgreSQL an advisory lock makes
concurrent starts of several processes create or upgrade the schema once (on SQLite, a file lock
beside the database does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from monitor.errors import SchemaError
from monitor.leader import hold_until_commit, sqlite_turn

OUR_TABLES = {"meta", "feed", "item"}


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # revision the database is at; None for an empty database
    head: str  # this program's revision
    stamped: bool  # False for an empty database or one made before Alembic

    @property
    def empty(self) -> bool:
        return self.current is None

    def describe(self) -> str:
        if self.current is None:
            return "empty"
        return f"version {int(self.current)}" if self.current.isdigit() else f"revision {self.current!r}"


def _config(connection: Connection | None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "monitor:migrations")
    config.attributes["connection"] = connection
    return config


def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(None))


def head_revision() -> str:
    return str(_scripts().get_current_head())


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def read_state(connection: Connection) -> SchemaState:
    from alembic.migration import MigrationContext

    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None:
        return SchemaState(current, head, True)
    if not OUR_TABLES & set(inspect(connection).get_table_names()):
        return SchemaState(None, head, False)
    version = connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    if version is None or not str(version).isdigit():
        raise SchemaError("the database holds monitor tables but no schema version: it cannot be checked")
    return SchemaState(f"{int(version):04d}", head, False)


def _create(connection: Connection, head: str) -> None:
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from monitor.schema import Meta

    SQLModel.metadata.create_all(connection)
    connection.execute(Meta.__table__.insert().values(key="schema_version", value=str(int(head))))  # type: ignore[attr-defined]
    MigrationContext.configure(connection).stamp(_scripts(), head)


def _refusal(state: SchemaState) -> SchemaError:
    if state.current in known_revisions():
        return SchemaError(
            f"the database schema is at {state.describe()}, older than this program's version {int(state.head)}: "
            "back it up, then run `monitor migrate`"
        )
    return SchemaError(
        f"the database schema is at {state.describe()}, newer than this program's version {int(state.head)}: "
        "it was written by a newer escalation-monitor; upgrade the program (pip install -U escalation-monitor)"
    )


def ensure_current(engine: Engine) -> SchemaState:
    """Create the schema in an empty database; raise ``SchemaError`` unless it is at this program's head."""
    with sqlite_turn(engine, "schema"), engine.begin() as connection:
        hold_until_commit(connection, "schema")
        state = read_state(connection)
        if state.empty:
            _create(connection, state.head)
        elif state.current != state.head:
            raise _refusal(state)
    return state


def upgrade(engine: Engine) -> tuple[SchemaState, SchemaState]:
    """Bring the schema to this program's head; return the states before and after."""
    from alembic import command

    with sqlite_turn(engine, "schema"), engine.begin() as connection:
        hold_until_commit(connection, "schema")
        before = read_state(connection)
        if before.empty:
            _create(connection, before.head)
        elif before.current not in known_revisions():
            raise _refusal(before)
        elif before.current != before.head:
            config = _config(connection)
            if not before.stamped:
                command.stamp(config, before.current)
            command.upgrade(config, "head")
        after = read_state(connection)
    return before, after
