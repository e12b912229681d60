"""The database schema: SQLModel tables, the engine, and the schema version.

SQLite is the default (WAL mode, foreign keys on, a busy timeout); the same
code runs on PostgreSQL.  Datetimes go in and come out timezone-aware, in UTC.
Tables are singular nouns; ``store`` holds the writes and ``series`` the reads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, UniqueConstraint, event
from sqlalchemy.engine import make_url
from sqlmodel import Field, SQLModel, create_engine

SCHEMA_VERSION = 3  # the number of the Alembic head revision (monitor/migrations/versions)
LABEL_COLUMNS = {
    "attack": "score_attack",
    "retaliation": "score_retaliation",
    "de-escalation": "score_de_escalation",
    "other": "score_other",
}


class Meta(SQLModel, table=True):
    key: str = Field(primary_key=True)
    value: str


class Feed(SQLModel, table=True):
    id: str = Field(primary_key=True)
    url: str
    name: str
    enabled: bool = True
    parked: bool = False
    interval_s: int = 900
    etag: str | None = None
    last_modified: str | None = None
    next_check_at: datetime | None = Field(default=None, index=True)
    last_checked_at: datetime | None = None
    last_success_at: datetime | None = None
    error_count: int = 0
    last_error_kind: str | None = None
    last_error: str | None = None
    ttl_s: int | None = None
    claimed_by: str | None = None  # "host:pid" of the process that took the feed for its current poll


class Item(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=64)
    feed_id: str | None = Field(default=None, foreign_key="feed.id", index=True)
    source: str
    guid: str | None = None
    link: str | None = None
    title: str
    summary: str = ""
    published_at: datetime = Field(index=True)
    fetched_at: datetime


class Label(SQLModel, table=True):
    item_id: int = Field(primary_key=True, foreign_key="item.id", ondelete="CASCADE")
    label: str = Field(index=True)
    score_attack: float
    score_retaliation: float
    score_de_escalation: float
    score_other: float
    evidence: str = ""
    note: str = ""
    model_version: str
    labelled_at: datetime


class Correction(SQLModel, table=True):
    item_id: int = Field(primary_key=True, foreign_key="item.id", ondelete="CASCADE")
    label: str
    created_at: datetime


class ItemTheatre(SQLModel, table=True):
    __tablename__ = "item_theatre"
    item_id: int = Field(primary_key=True, foreign_key="item.id", ondelete="CASCADE")
    theatre_id: str = Field(primary_key=True, index=True)


class Story(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(index=True)
    first_at: datetime = Field(index=True)
    last_at: datetime
    n_items: int = 1
    title: str = ""
    generation: int = Field(default=0, index=True)  # story-building round that last changed it


class StoryItem(SQLModel, table=True):
    __tablename__ = "story_item"
    item_id: int = Field(primary_key=True, foreign_key="item.id", ondelete="CASCADE")
    story_id: int = Field(foreign_key="story.id", index=True, ondelete="CASCADE")
    generation: int = Field(default=0, index=True)  # story-building round that wrote (or relabelled) it


class StoryTheatre(SQLModel, table=True):
    __tablename__ = "story_theatre"
    story_id: int = Field(primary_key=True, foreign_key="story.id", ondelete="CASCADE")
    theatre_id: str = Field(primary_key=True, index=True)


class TallyRow(SQLModel, table=True):
    __tablename__ = "tally"
    item_id: int = Field(primary_key=True, foreign_key="item.id", ondelete="CASCADE")
    number: int
    what: str
    target: str = ""
    since: str = ""
    ordinal: bool = False
    published_at: datetime = Field(index=True)


class ChainLink(SQLModel, table=True):
    __tablename__ = "chain_link"
    retaliation_id: int = Field(primary_key=True, foreign_key="story.id", ondelete="CASCADE")
    attack_id: int = Field(primary_key=True, foreign_key="story.id", ondelete="CASCADE")
    lag_hours: float
    score: float


class AlertRow(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("theatre", "label", "day", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    theatre: str = ""  # "" for the global series
    label: str
    day: date = Field(index=True)
    kind: str
    observed: float
    expected: float
    upper: float
    p_value: float
    severity: str
    created_at: datetime
    delivered_at: datetime | None = None


class AlertDelivery(SQLModel, table=True):
    __tablename__ = "alert_delivery"
    alert_id: int = Field(primary_key=True, foreign_key="alert.id", ondelete="CASCADE")
    channel: str = Field(primary_key=True)  # "log", "webhook", "email"
    delivered_at: datetime
    attempts: int = 1


class ReportRun(SQLModel, table=True):
    """One row per weekly report written: with several processes, the first to insert it writes it."""

    __tablename__ = "report_run"
    week: str = Field(primary_key=True)  # ISO week, "2024-W05"
    path: str
    made_by: str
    created_at: datetime


class PollLog(SQLModel, table=True):
    __tablename__ = "poll_log"
    id: int | None = Field(default=None, primary_key=True)
    feed_id: str = Field(foreign_key="feed.id", index=True)
    at: datetime = Field(index=True)
    status: int | None = None
    new: int = 0
    seen: int = 0
    not_modified: bool = False
    error_kind: str | None = None
    error: str | None = None
    bozo: str | None = None
    duration_ms: int = 0


def as_utc(value: datetime) -> datetime:
    """The form datetimes take in the database: aware, in UTC (naive input is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and their pragmas set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Create the schema in an empty database; refuse one that is behind or ahead of this program.

    Changes to an existing schema go through ``monitor migrate`` (Alembic, ``monitor.migrate``).
    """
    from monitor.migrate import ensure_current

    ensure_current(engine)
