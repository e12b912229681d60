"""Writes and lookups: feeds, items with labels, theatres, tallies, stories and chains.

Items are written with ``INSERT ... ON CONFLICT DO NOTHING`` on their unique
key, so a re-poll, a re-import or a crash between two writes never double
counts; everything one poll or one import batch writes is in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, text, update
from sqlmodel import Session, col, select

from monitor.leader import hold_until_commit
from monitor.schema import (
    LABEL_COLUMNS,
    AlertRow,
    Correction,
    Feed,
    Item,
    ItemTheatre,
    Label,
    Meta,
    PollLog,
    ReportRun,
    TallyRow,
    as_utc,
)


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


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def lock_config(session: Session) -> None:
    """Serialise config synchronisation (feeds, theatre placements) between processes starting together,
    until this transaction ends: an advisory lock on PostgreSQL, SQLite's write lock taken up front."""
    if session.get_bind().dialect.name == "postgresql":
        hold_until_commit(session, "config")
    else:
        session.execute(text("UPDATE meta SET value = value WHERE key = 'schema_version'"))


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


def save_items(
    session: Session, feed_id: str | None, source: str, items: Sequence[NewItem], now: datetime
) -> list[tuple[int, NewItem]]:
    """Insert the items not stored yet, with their labels; return the new ones with their ids."""
    if not items:
        return []
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
    return [(item_id, by_key[key]) for item_id, key in inserted]


def insert_ignoring(session: Session, table: Any, unique: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (unique) DO NOTHING`` in the session's dialect (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(table).on_conflict_do_nothing(index_elements=list(unique))


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    table = Item.__table__  # type: ignore[attr-defined]
    statement = insert_ignoring(session, table, ["key"]).returning(table.c.id, table.c.key)
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


def newest_item_id(session: Session) -> int:
    return int(session.execute(select(func.max(Item.id))).scalar_one() or 0)


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Meta, key) or Meta(key=key, value=value)
    row.value = value
    session.add(row)


def record_poll(session: Session, log: PollLog) -> None:
    session.add(log)


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


def save_theatres(session: Session, rows: Sequence[tuple[int, str]]) -> None:
    if rows:
        session.execute(
            ItemTheatre.__table__.insert(),  # type: ignore[attr-defined]
            [{"item_id": item_id, "theatre_id": theatre} for item_id, theatre in rows],
        )


def save_tallies(session: Session, rows: Sequence[TallyRow]) -> None:
    session.add_all(rows)


def save_alerts(session: Session, alerts: Sequence[Any], now: datetime) -> int:
    """Insert alerts not stored yet (unique per series, day and kind); return how many were new."""
    table = AlertRow.__table__  # type: ignore[attr-defined]
    rows = [
        {
            "theatre": a.theatre or "",
            "label": a.label or "",
            "day": a.date,
            "kind": a.kind,
            "observed": a.observed,
            "expected": a.expected,
            "upper": a.upper,
            "p_value": a.p_value,
            "severity": a.severity,
            "created_at": as_utc(now),
        }
        for a in alerts
    ]
    if not rows:
        return 0
    statement = insert_ignoring(session, table, ["theatre", "label", "day", "kind"])
    return len(session.execute(statement.returning(table.c.id), rows).all())


def claim_due_feeds(
    session: Session, now: datetime, limit: int, per_host: int, lease: float, claimer: str
) -> list[Feed]:
    """Take due feeds, oldest first, at most ``per_host`` per host, and reserve them for ``lease`` seconds.

    The reservation is written in the claiming transaction, before fetching: the poll then writes the
    real next check, and a feed whose process dies before that is due again when the lease (at most
    one interval) runs out. On PostgreSQL the rows are locked with SKIP LOCKED, so several processes
    claiming at the same moment never take the same feed.
    """
    statement = (
        select(Feed)
        .where(col(Feed.enabled), col(Feed.parked).is_(False), col(Feed.next_check_at) <= as_utc(now))
        .order_by(col(Feed.next_check_at), col(Feed.id))
        .limit(limit * 4)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    taken: list[Feed] = []
    hosts: dict[str, int] = {}
    for feed in session.exec(statement):
        host = host_of(feed.url)
        if hosts.get(host, 0) >= per_host or len(taken) >= limit:
            continue
        hosts[host] = hosts.get(host, 0) + 1
        feed.next_check_at = as_utc(now) + timedelta(seconds=min(lease, feed.interval_s))
        feed.claimed_by = claimer
        session.add(feed)
        taken.append(feed)
    return taken


def enable_feed(session: Session, feed_id: str, now: datetime) -> bool:
    """Un-park a feed: clear its errors and make it due now; False if there is no such feed."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        return False
    feed.parked, feed.error_count, feed.next_check_at = False, 0, as_utc(now)
    session.add(feed)
    return True


def all_feeds(session: Session) -> list[Feed]:
    return list(session.exec(select(Feed).order_by(col(Feed.id))))


def forget_old_text(session: Session, now: datetime, days: int) -> int:
    """Retention: blank the summaries of items older than ``days`` (titles, labels and counts stay)."""
    if days <= 0:
        return 0
    cutoff = as_utc(now) - timedelta(days=days)
    statement = (
        update(Item)
        .where(col(Item.published_at) < cutoff, col(Item.summary) != "")
        .values(summary="")
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]


def report_made(session: Session, week: str) -> ReportRun | None:
    return session.get(ReportRun, week)


def record_report(session: Session, week: str, path: str, made_by: str, now: datetime) -> None:
    session.add(ReportRun(week=week, path=path, made_by=made_by, created_at=as_utc(now)))
