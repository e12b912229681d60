"""Who does the once-only jobs when several service processes share one database.

Polling is shared feed by feed (``store.claim_due_feeds``); detection, alert delivery, the weekly
report and maintenance must each run in one process at a time. ``exclusive(engine, job)`` takes a
lock that only one process can hold and says whether this process got it; it never waits, so a
process that did not get it simply skips the job (the holder is doing it).

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection held for the
  job's duration. If the holder dies, PostgreSQL drops the lock with its connection.
- SQLite: an ``flock`` on a file beside the database (one machine only, as SQLite itself), released
  by the kernel when the holder exits.
- Anything else (an in-memory database): always granted.
"""

from __future__ import annotations

import fcntl
import os
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

LOCK_SPACE = 7311  # first key of the two-key advisory locks: "ours" among other users of the database


def lock_key(job: str) -> int:
    """A stable signed 32-bit key for a job name."""
    value = zlib.crc32(job.encode())
    return value - 2**32 if value >= 2**31 else value


def process_name() -> str:
    """How this process names itself in claims and report records: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def exclusive(engine: Engine, job: str) -> Iterator[bool]:
    """Yield True if this process now holds ``job``'s lock (released on exit), False if another does."""
    if engine.dialect.name == "postgresql":
        with _advisory(engine, job) as held:
            yield held
    elif (path := _lock_file(engine, job)) is not None:
        with _file_lock(path) as held:
            yield held
    else:
        yield True


def hold_until_commit(connection: Any, job: str) -> None:
    """On PostgreSQL, wait for ``job``'s transaction advisory lock (released when the caller's transaction
    ends), so processes take turns at ``job``; a no-op on other databases. ``connection``: a Connection or
    Session."""
    dialect = connection.dialect if isinstance(connection, Connection) else connection.get_bind().dialect
    if dialect.name == "postgresql":
        key = {"space": LOCK_SPACE, "key": lock_key(job)}
        connection.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"), key)


def _lock_file(engine: Engine, job: str) -> Path | None:
    """``<database>.<job>.lock`` beside a SQLite database file; None for other databases."""
    database = str(engine.url.database or "")
    if engine.dialect.name != "sqlite" or database in ("", ":memory:"):
        return None
    path = Path(database)
    return path.with_name(f"{path.name}.{job}.lock")


@contextmanager
def _advisory(engine: Engine, job: str) -> Iterator[bool]:
    key = {"space": LOCK_SPACE, "key": lock_key(job)}
    with engine.connect() as connection:
        held = bool(connection.execute(text("SELECT pg_try_advisory_lock(:space, :key)"), key).scalar())
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:space, :key)"), key)
                connection.commit()


@contextmanager
def sqlite_turn(engine: Engine, job: str) -> Iterator[None]:
    """Wait for ``job``'s file lock beside a SQLite database file (no-op for other databases): for work
    that must not interleave between processes even before the database has any table to lock."""
    path = _lock_file(engine, job)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path, wait=True):
        yield


@contextmanager
def _file_lock(path: Path, wait: bool = False) -> Iterator[bool]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
