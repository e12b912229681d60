"""SQLModel tables, the engine, and every query the rest of the program needs.

SQLite is the default (WAL mode, foreign keys on, a busy timeout); the same
code runs on PostgreSQL.  Datetimes go in and come out timezone-aware, in UTC.  Items are
written with ``INSERT ... ON CONFLICT DO NOTHING`` on their unique key, so a
re-poll, a re-import or a crash between two writes never double counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, event, func, text
from sqlalchemy.engine import make_url
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from monitor.errors import SchemaError

SCHEMA_VERSION = 1
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


@dataclass(frozen=True)
class NewItem:
    """An item ready to store: parsed fields plus its label."""

    key: str
    title: str
    summary: str
    published: datetime
    guid: str | None
    link: str | None
    label: str
    scores: dict[str, float]
    evidence: tuple[str, ...]
    note: str
    model_version: str


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
    """Create missing tables and record the schema version; refuse a foreign one."""
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        row = session.get(Meta, "schema_version")
        if row is None:
            session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(row.value) != SCHEMA_VERSION:
            relation = "newer" if int(row.value) > SCHEMA_VERSION else "older"
            raise SchemaError(
                f"database schema version {row.value} is {relation} than this program's ({SCHEMA_VERSION})"
            )


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def sync_feeds(session: Session, feeds: Iterable[Any], default_interval: int, now: datetime) -> None:
    """Make the feed table match the config: add new, update changed, disable removed."""
    configured = {f.id: f for f in feeds}
    stored = {f.id: f for f in session.exec(select(Feed))}
    for feed_id, conf in configured.items():
        row = stored.get(feed_id)
        interval = conf.interval or default_interval
        if row is None:
            session.add(
                Feed(
                    id=feed_id,
                    url=conf.url,
                    name=conf.name or feed_id,
                    enabled=conf.enabled,
                    interval_s=interval,
                    next_check_at=as_utc(now),
                )
            )
            continue
        if row.url != conf.url:
            row.url, row.etag, row.last_modified = conf.url, None, None
        row.name, row.enabled, row.interval_s = conf.name or feed_id, conf.enabled, interval
        session.add(row)
    for feed_id, row in stored.items():
        if feed_id not in configured and row.enabled:
            row.enabled = False
            session.add(row)


def active_feeds(session: Session) -> list[Feed]:
    statement = select(Feed).where(col(Feed.enabled), col(Feed.parked).is_(False)).order_by(col(Feed.id))
    return list(session.exec(statement))


def save_items(session: Session, feed_id: str | None, source: str, items: Sequence[NewItem], now: datetime) -> int:
    """Insert the items not stored yet, with their labels; return how many were new."""
    if not items:
        return 0
    rows = [
        {
            "key": i.key,
            "feed_id": feed_id,
            "source": source,
            "guid": i.guid,
            "link": i.link,
            "title": i.title,
            "summary": i.summary,
            "published_at": as_utc(i.published),
            "fetched_at": as_utc(now),
        }
        for i in items
    ]
    inserted = _insert_new(session, rows)
    by_key = {i.key: i for i in items}
    labels = [_label_row(item_id, by_key[key], now) for item_id, key in inserted]
    if labels:
        session.execute(Label.__table__.insert(), labels)  # type: ignore[attr-defined]
    return len(inserted)


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    table = Item.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id, table.c.key)
    inserted: list[tuple[int, str]] = []
    for start in range(0, len(rows), 500):
        inserted.extend((r[0], r[1]) for r in session.execute(statement, rows[start : start + 500]).all())
    return inserted


def _label_row(item_id: int, item: NewItem, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {column: float(item.scores.get(label, 0.0)) for label, column in LABEL_COLUMNS.items()}
    row.update(
        item_id=item_id,
        label=item.label,
        evidence="; ".join(item.evidence),
        note=item.note,
        model_version=item.model_version,
        labelled_at=as_utc(now),
    )
    return row


def record_poll(session: Session, log: PollLog) -> None:
    session.add(log)


def effective_label_column() -> Any:
    """The analyst's correction where there is one, else the model's label."""
    return func.coalesce(Correction.label, Label.label)


def daily_label_counts(
    session: Session, since: date | None = None, until: date | None = None
) -> list[tuple[date, str, int]]:
    """Items per UTC day and effective label."""
    day = func.date(Item.published_at)
    label = effective_label_column()
    statement = (
        select(day, label, func.count())
        .select_from(Item)
        .join(Label, col(Label.item_id) == col(Item.id))
        .outerjoin(Correction, col(Correction.item_id) == col(Item.id))
        .group_by(day, label)
        .order_by(day, label)
    )
    if since:
        statement = statement.where(col(Item.published_at) >= datetime.combine(since, datetime.min.time(), UTC))
    if until:
        statement = statement.where(func.date(Item.published_at) <= until.isoformat())
    return [(_as_date(d), str(lbl), int(n)) for d, lbl, n in session.execute(statement)]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def count_items(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Item)).scalar_one())


def label_totals(session: Session) -> dict[str, int]:
    label = effective_label_column()
    statement = (
        select(label, func.count())
        .select_from(Item)
        .join(Label, col(Label.item_id) == col(Item.id))
        .outerjoin(Correction, col(Correction.item_id) == col(Item.id))
        .group_by(label)
    )
    return {str(lbl): int(n) for lbl, n in session.execute(statement)}


def feed_item_counts(session: Session) -> dict[str, int]:
    statement = select(Item.feed_id, func.count()).group_by(col(Item.feed_id))
    return {str(feed_id): int(n) for feed_id, n in session.execute(statement) if feed_id}


def integrity_ok(engine: Engine) -> bool:
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        return connection.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"


def add_correction(session: Session, item_id: int, label: str, now: datetime) -> bool:
    """Store an analyst's label for an item (replacing an earlier one); False if no such item."""
    if session.get(Item, item_id) is None:
        return False
    row = session.get(Correction, item_id) or Correction(item_id=item_id, label=label, created_at=as_utc(now))
    row.label, row.created_at = label, as_utc(now)
    session.add(row)
    return True


def corrections_with_text(session: Session) -> list[tuple[int, str, str, str]]:
    """(item id, title, summary, corrected label) for every correction, oldest item first."""
    statement = (
        select(Item.id, Item.title, Item.summary, Correction.label)
        .join(Correction, col(Correction.item_id) == col(Item.id))
        .order_by(col(Item.id))
    )
    return [(int(i), str(t), str(s), str(lbl)) for i, t, s, lbl in session.execute(statement)]
