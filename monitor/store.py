"""Writes and lookups: feeds, items with labels, theatres, tallies, stories and chains.

Items are written with ``INSERT ... ON CONFLICT DO NOTHING`` on their unique
key, so a re-poll, a re-import or a crash between two writes never double
counts; everything one poll or one import batch writes is in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, text, update
from sqlmodel import Session, col, select

from monitor.schema import (
    LABEL_COLUMNS,
    AlertRow,
    ChainLink,
    Correction,
    Feed,
    Item,
    ItemTheatre,
    Label,
    Meta,
    PollLog,
    Story,
    StoryItem,
    StoryTheatre,
    TallyRow,
    as_utc,
)
from monitor.stories import Cluster, Link, Member, StorySketch, label_group, signature, story_label


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


def _members(session: Session, story_ids: Sequence[int]) -> dict[int, list[Member]]:
    """The members of the given stories as clustering sees them (effective labels)."""
    members: dict[int, list[Member]] = {}
    for start in range(0, len(story_ids), 500):
        chunk = story_ids[start : start + 500]
        statement = (
            select(StoryItem.story_id, Item, Label, Correction.label)
            .join(Item, col(Item.id) == col(StoryItem.item_id))
            .join(Label, col(Label.item_id) == col(Item.id))
            .outerjoin(Correction, col(Correction.item_id) == col(Item.id))
            .where(col(StoryItem.story_id).in_(chunk))
        )
        rows = session.execute(statement).all()
        places = _theatres_of(session, [item.id for _, item, _, _ in rows])
        for story_id, item, label, corrected in rows:
            members.setdefault(story_id, []).append(_member(item, label, corrected, places.get(item.id, ())))
    return members


def _member(item: Item, label: Label, corrected: str | None, theatres: Sequence[str]) -> Member:
    confidence = 1.0 if corrected else max(getattr(label, column) for column in LABEL_COLUMNS.values())
    return Member(
        int(item.id or 0),
        as_utc(item.published_at),
        corrected or label.label,
        confidence,
        tuple(theatres),
        signature(item.title, item.summary),
    )


def _theatres_of(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for start in range(0, len(item_ids), 500):
        statement = select(ItemTheatre).where(col(ItemTheatre.item_id).in_(item_ids[start : start + 500]))
        for row in session.exec(statement):
            found.setdefault(row.item_id, []).append(row.theatre_id)
    return {item_id: tuple(sorted(ts)) for item_id, ts in found.items()}


def load_clusters(session: Session, start: datetime, end: datetime) -> list[Cluster]:
    """Stored stories first reported between ``start`` and ``end``, with their members."""
    stories = session.exec(
        select(Story)
        .where(col(Story.first_at) >= as_utc(start), col(Story.first_at) <= as_utc(end))
        .order_by(col(Story.first_at), col(Story.id))
    ).all()
    members = _members(session, [int(s.id or 0) for s in stories])
    clusters = []
    for story in stories:
        own = sorted(members.get(int(story.id or 0), []), key=lambda m: (m.published, m.item_id))
        theatres = {t for m in own for t in m.theatres}
        clusters.append(Cluster(story.id, as_utc(story.first_at), label_group(story.label), theatres, own))
    return clusters


def save_clusters(session: Session, placed: dict[int, Cluster]) -> list[Story]:
    """Write new stories and memberships, refresh the touched stories; return the touched stories."""
    touched: dict[int, Cluster] = {}
    for item_id, cluster in placed.items():
        if cluster.story_id is None:
            story = Story(label=cluster.members[0].label, first_at=cluster.first, last_at=cluster.first)
            session.add(story)
            session.flush()
            cluster.story_id = story.id
        story_id = int(cluster.story_id or 0)
        session.add(StoryItem(item_id=item_id, story_id=story_id))
        touched[story_id] = cluster
    return [_refresh_story(session, story_id, cluster) for story_id, cluster in sorted(touched.items())]


def _refresh_story(session: Session, story_id: int, cluster: Cluster) -> Story:
    story = session.get(Story, story_id)
    assert story is not None
    best = max(cluster.members, key=lambda m: (m.confidence, -m.published.timestamp(), -m.item_id))
    story.label = story_label(cluster.members)
    story.first_at = min(m.published for m in cluster.members)
    story.last_at = max(m.published for m in cluster.members)
    story.n_items = len(cluster.members)
    item = session.get(Item, best.item_id)
    story.title = item.title if item else story.title
    session.add(story)
    known = set(session.exec(select(StoryTheatre.theatre_id).where(col(StoryTheatre.story_id) == story_id)))
    for theatre in sorted(cluster.theatres - known):
        session.add(StoryTheatre(story_id=story_id, theatre_id=theatre))
    return story


def story_sketches(session: Session, start: datetime, end: datetime, label: str) -> list[StorySketch]:
    """Stories of ``label`` first reported in [start, end], with their theatres and words."""
    stories = session.exec(
        select(Story).where(
            col(Story.label) == label, col(Story.first_at) >= as_utc(start), col(Story.first_at) <= as_utc(end)
        )
    ).all()
    members = _members(session, [int(s.id or 0) for s in stories])
    sketches = []
    for story in stories:
        own = members.get(int(story.id or 0), [])
        words = frozenset().union(*(m.words for m in own)) if own else frozenset()
        theatres = frozenset(t for m in own for t in m.theatres)
        sketches.append(StorySketch(int(story.id or 0), as_utc(story.first_at), story.label, theatres, words))
    return sketches


def save_links(session: Session, retaliation_id: int, links: Sequence[Link]) -> None:
    """Replace the chain links of one retaliation story."""
    for old in session.exec(select(ChainLink).where(col(ChainLink.retaliation_id) == retaliation_id)):
        session.delete(old)
    session.flush()
    session.add_all(
        ChainLink(
            retaliation_id=link.retaliation_id, attack_id=link.attack_id, lag_hours=link.lag_hours, score=link.score
        )
        for link in links
    )


def refresh_story_of_item(session: Session, item_id: int) -> None:
    """Recompute the story an item belongs to (after an analyst correction changed its label)."""
    link = session.get(StoryItem, item_id)
    if link is None:
        return
    story = session.get(Story, link.story_id)
    members = _members(session, [link.story_id]).get(link.story_id, [])
    if story is None or not members:
        return
    cluster = Cluster(story.id, as_utc(story.first_at), label_group(story.label), set(), members)
    cluster.theatres = {t for m in members for t in m.theatres}
    _refresh_story(session, link.story_id, cluster)


def reassign_theatres(session: Session, match: Callable[[str, str], tuple[str, ...]]) -> int:
    """Re-place every stored item and story under the current theatre terms; return items whose set changed."""
    before = _theatres_of(session, [int(i or 0) for i in session.exec(select(Item.id))])
    changed = 0
    session.execute(delete(ItemTheatre))
    rows: list[tuple[int, str]] = []
    for item_id, title, summary in session.execute(select(Item.id, Item.title, Item.summary)):
        now_in = match(title, summary)
        changed += now_in != before.get(int(item_id), ())
        rows.extend((int(item_id), t) for t in now_in)
    save_theatres(session, rows)
    session.execute(delete(StoryTheatre))
    story_rows = session.execute(
        select(StoryItem.story_id, ItemTheatre.theatre_id)
        .join(ItemTheatre, col(ItemTheatre.item_id) == col(StoryItem.item_id))
        .distinct()
    ).all()
    if story_rows:
        session.execute(
            StoryTheatre.__table__.insert(),  # type: ignore[attr-defined]
            [{"story_id": s, "theatre_id": t} for s, t in story_rows],
        )
    return changed


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
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(table).on_conflict_do_nothing(index_elements=["theatre", "label", "day", "kind"])
    return len(session.execute(statement.returning(table.c.id), rows).all())


def claim_due_feeds(session: Session, now: datetime, limit: int, per_host: int) -> list[Feed]:
    """Take due feeds, oldest first, at most ``per_host`` per host, and push their next check forward.

    The next check is written before fetching, so a feed whose fetch crashes the process still moves
    on; the poll itself then writes the real next check. On PostgreSQL the rows are locked with
    SKIP LOCKED so several processes never take the same feed.
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
        feed.next_check_at = as_utc(now) + timedelta(seconds=feed.interval_s)  # due again if this poll dies
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
