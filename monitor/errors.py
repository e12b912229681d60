"""The small exception hierarchy of Escalation Monitor.

Expected failures are data, not exceptions: a feed that times out or sends
garbage yields a ``FetchResult`` with an ``ErrorKind`` and a ``ParsedFeed``
with ``bozo`` set, and is recorded against that feed.  The exceptions below
are for the rest, and the CLI turns each into one line on stderr:

- ``MonitorError``: base class; exit code 1.
- ``ConfigError``: the configuration is invalid (names the key); exit 2.
- ``InputError``: a user-supplied file is unusable (names file and line); exit 2.
- ``SchemaError``: the database schema is older or newer than this code; exit 1.
- ``ModelError``: the classifier artifact is missing, corrupt or incompatible; exit 1.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the CLI reports as one line."""

    exit_code = 1


class ConfigError(MonitorError):
    """The configuration is invalid; the message names the key path."""

    exit_code = 2

    def __init__(self, key: str, problem: str, source: str = "config") -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


class InputError(MonitorError):
    """A file the user handed us is unusable as a whole (names file and line)."""

    exit_code = 2


class SchemaError(MonitorError):
    """The database was made by another schema version."""


class ModelError(MonitorError):
    """The classifier artifact cannot be used."""
