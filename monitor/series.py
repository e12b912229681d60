"""Reads: the count series (stories and mentions per theatre, label and day), tallies and chains.

Days are calendar days in the configured time zone; weeks are ISO weeks
(dated by their Monday). Series are zero-filled between ``since`` and
``until``. The global series (theatre ``None``) counts every story once,
whatever theatres it names; a theatre's series counts the stories naming it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from monitor.classify import LABELS
from monitor.schema import (
    LABEL_COLUMNS,
    ChainLink,
    Correction,
    Item,
    ItemTheatre,
    Label,
    Story,
    StoryTheatre,
    TallyRow,
    as_utc,
)


@dataclass(frozen=True)
class Point:
    theatre: str | None
    label: str
    date: date
    stories: int
    mentions: int

    def as_json(self) -> dict[str, object]:
        return {
            "theatre": self.theatre,
            "label": self.label,
            "date": self.date.isoformat(),
            "stories": self.stories,
            "mentions": self.mentions,
        }


def bucket(day: date, by: str) -> date:
    """The day itself, or the Monday of its ISO week."""
    return day - timedelta(days=day.weekday()) if by == "week" else day


def _bounds(since: date | None, until: date | None, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(since, time.min, zone) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, zone) if until else None
    return start, end


def _story_rows(session: Session, start: datetime | None, end: datetime | None) -> list[tuple[int, str, datetime]]:
    statement = select(Story.id, Story.label, Story.first_at)
    if start:
        statement = statement.where(col(Story.first_at) >= as_utc(start))
    if end:
        statement = statement.where(col(Story.first_at) < as_utc(end))
    return [(int(i), str(lbl), as_utc(at)) for i, lbl, at in session.execute(statement)]


def _item_rows(session: Session, start: datetime | None, end: datetime | None) -> list[tuple[int, str, datetime]]:
    label = func.coalesce(Correction.label, Label.label)
    statement = (
        select(Item.id, label, Item.published_at)
        .join(Label, col(Label.item_id) == col(Item.id))
        .outerjoin(Correction, col(Correction.item_id) == col(Item.id))
    )
    if start:
        statement = statement.where(col(Item.published_at) >= as_utc(start))
    if end:
        statement = statement.where(col(Item.published_at) < as_utc(end))
    return [(int(i), str(lbl), as_utc(at)) for i, lbl, at in session.execute(statement)]


def _places(session: Session, table: type[StoryTheatre] | type[ItemTheatre]) -> dict[int, list[str]]:
    key = StoryTheatre.story_id if table is StoryTheatre else ItemTheatre.item_id
    found: dict[int, list[str]] = {}
    for owner, theatre in session.execute(select(key, table.theatre_id)):  # type: ignore[call-overload]
        found.setdefault(int(owner), []).append(str(theatre))
    return found


def _tally(
    rows: Iterable[tuple[int, str, datetime]],
    places: dict[int, list[str]],
    zone: ZoneInfo,
    by: str,
    wanted: set[str | None],
) -> Counter[tuple[str | None, str, date]]:
    counts: Counter[tuple[str | None, str, date]] = Counter()
    for owner, label, at in rows:
        day = bucket(at.astimezone(zone).date(), by)
        for theatre in [None, *places.get(owner, [])]:
            if theatre in wanted:
                counts[(theatre, label, day)] += 1
    return counts


def count_series(
    session: Session,
    theatres: Sequence[str | None],
    zone: ZoneInfo,
    since: date | None = None,
    until: date | None = None,
    by: str = "day",
) -> list[Point]:
    """Zero-filled stories and mentions per (theatre, label, day or week)."""
    start, end = _bounds(since, until, zone)
    wanted = set(theatres)
    stories = _tally(_story_rows(session, start, end), _places(session, StoryTheatre), zone, by, wanted)
    mentions = _tally(_item_rows(session, start, end), _places(session, ItemTheatre), zone, by, wanted)
    days = [d for _, _, d in stories] + [d for _, _, d in mentions]
    first = bucket(since, by) if since else min(days, default=None)
    last = bucket(until, by) if until else max(days, default=None)
    if first is None or last is None:
        return []
    step = timedelta(days=7 if by == "week" else 1)
    points = []
    for theatre in theatres:
        for label in LABELS:
            day = first
            while day <= last:
                key = (theatre, label, day)
                points.append(Point(theatre, label, day, stories[key], mentions[key]))
                day += step
    return points


@dataclass(frozen=True)
class ChainView:
    retaliation_id: int
    retaliation_title: str
    retaliation_at: datetime
    attack_id: int
    attack_title: str
    attack_at: datetime
    lag_hours: float
    theatres: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "retaliation": {
                "story": self.retaliation_id,
                "title": self.retaliation_title,
                "first_reported": self.retaliation_at.isoformat(),
            },
            "attack": {
                "story": self.attack_id,
                "title": self.attack_title,
                "first_reported": self.attack_at.isoformat(),
            },
            "lag_hours": self.lag_hours,
            "theatres": list(self.theatres),
        }


def chains(
    session: Session, since: datetime | None = None, until: datetime | None = None, theatre: str | None = None
) -> list[ChainView]:
    """Retaliation -> attack links, newest retaliation first."""
    places = _places(session, StoryTheatre)
    views = []
    for link in session.exec(select(ChainLink)):
        retaliation, attack = session.get(Story, link.retaliation_id), session.get(Story, link.attack_id)
        if retaliation is None or attack is None:
            continue
        at = as_utc(retaliation.first_at)
        if (since and at < since) or (until and at >= until):
            continue
        where = tuple(sorted(places.get(link.retaliation_id, [])))
        if theatre and theatre not in where:
            continue
        views.append(
            ChainView(
                link.retaliation_id,
                retaliation.title,
                at,
                link.attack_id,
                attack.title,
                as_utc(attack.first_at),
                link.lag_hours,
                where,
            )
        )
    return sorted(views, key=lambda v: (-v.retaliation_at.timestamp(), v.lag_hours))


@dataclass(frozen=True)
class TallyView:
    date: datetime
    number: int
    what: str
    target: str
    since: str
    theatres: tuple[str, ...]
    title: str


def tallies(session: Session, theatre: str | None = None) -> list[TallyView]:
    """Running tallies reported by items, oldest first."""
    places = _places(session, ItemTheatre)
    rows = session.execute(select(TallyRow, Item.title).join(Item, col(Item.id) == col(TallyRow.item_id)))
    views = []
    for tally, title in rows:
        where = tuple(sorted(places.get(tally.item_id, [])))
        if theatre is None or theatre in where:
            views.append(
                TallyView(
                    as_utc(tally.published_at), tally.number, tally.what, tally.target, tally.since, where, str(title)
                )
            )
    return sorted(views, key=lambda v: (v.date, v.number))


def effective_label_column() -> Any:
    """The analyst's correction where there is one, else the model's label."""
    return func.coalesce(Correction.label, Label.label)


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


@dataclass(frozen=True)
class StoryView:
    story_id: int
    label: str
    title: str
    outlet: str
    first_at: datetime
    confidence: float
    link: str | None
    mentions: int


def top_stories(
    session: Session, theatre: str | None, start: datetime, end: datetime, label: str, limit: int = 4
) -> list[StoryView]:
    """The week's stories of one label in one theatre (None: all), most mentioned first."""
    statement = select(Story).where(
        col(Story.label) == label, col(Story.first_at) >= as_utc(start), col(Story.first_at) < as_utc(end)
    )
    if theatre is not None:
        statement = statement.join(StoryTheatre, col(StoryTheatre.story_id) == col(Story.id)).where(
            col(StoryTheatre.theatre_id) == theatre
        )
    stories = session.exec(statement.order_by(col(Story.n_items).desc(), col(Story.first_at)).limit(limit)).all()
    return [_story_view(session, story) for story in stories]


def _story_view(session: Session, story: Story) -> StoryView:
    from monitor.schema import StoryItem

    statement = (
        select(Item, Label)
        .join(StoryItem, col(StoryItem.item_id) == col(Item.id))
        .join(Label, col(Label.item_id) == col(Item.id))
        .where(col(StoryItem.story_id) == story.id)
    )
    members = session.execute(statement).all()
    column = LABEL_COLUMNS[story.label]
    item, label = max(members, key=lambda row: getattr(row[1], column))
    confidence = float(getattr(label, column))
    return StoryView(
        int(story.id or 0),
        story.label,
        item.title,
        item.source,
        as_utc(story.first_at),
        confidence,
        item.link,
        story.n_items,
    )


@dataclass(frozen=True)
class FeedHealth:
    feed: str
    items: int
    last_success: datetime | None
    errors: int
    last_error: str


def feed_health(session: Session, start: datetime, end: datetime) -> list[FeedHealth]:
    """Per feed: new items, last success, failed polls in the period, the last error."""
    from monitor.schema import Feed, PollLog

    logs = session.exec(select(PollLog).where(col(PollLog.at) >= as_utc(start), col(PollLog.at) < as_utc(end))).all()
    rows = []
    for feed in session.exec(select(Feed).order_by(col(Feed.id))):
        own = [log for log in logs if log.feed_id == feed.id]
        rows.append(
            FeedHealth(
                feed.id,
                sum(log.new for log in own),
                as_utc(feed.last_success_at) if feed.last_success_at else None,
                sum(1 for log in own if log.error_kind),
                feed.last_error or "",
            )
        )
    return rows


@dataclass(frozen=True)
class Health:
    last_poll: datetime | None
    next_poll: datetime | None
    feeds_ok: list[str]
    feeds_failing: list[tuple[str, str, str]]  # id, error kind, message
    feeds_parked: list[tuple[str, str, str]]
    items_today: int
    stories_today: int
    open_alerts: int

    def as_json(self) -> dict[str, object]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "last_poll": when(self.last_poll),
            "next_poll": when(self.next_poll),
            "feeds": {
                "ok": self.feeds_ok,
                "failing": [{"id": i, "error_kind": k, "error": m} for i, k, m in self.feeds_failing],
                "parked": [{"id": i, "error_kind": k, "error": m} for i, k, m in self.feeds_parked],
            },
            "items_today": self.items_today,
            "stories_today": self.stories_today,
            "open_alerts": self.open_alerts,
        }


def health(session: Session, now: datetime, zone: ZoneInfo) -> Health:
    """Service and feed health for ``monitor status``."""
    from monitor.schema import AlertRow, Feed, PollLog

    feeds = session.exec(select(Feed).order_by(col(Feed.id))).all()
    last_poll = session.exec(select(func.max(PollLog.at))).one()
    next_poll = session.exec(
        select(func.min(Feed.next_check_at)).where(col(Feed.enabled), col(Feed.parked).is_(False))
    ).one()
    midnight = datetime.combine(now.astimezone(zone).date(), time.min, zone)
    items = session.exec(select(func.count()).select_from(Item).where(col(Item.fetched_at) >= as_utc(midnight))).one()
    stories = session.exec(select(func.count()).select_from(Story).where(col(Story.first_at) >= as_utc(midnight))).one()
    week_ago = (now - timedelta(days=7)).date()
    alerts = session.exec(select(func.count()).select_from(AlertRow).where(col(AlertRow.day) >= week_ago)).one()
    return Health(
        as_utc(last_poll) if last_poll else None,
        as_utc(next_poll) if next_poll else None,
        [f.id for f in feeds if f.enabled and not f.parked and not f.error_count],
        [
            (f.id, f.last_error_kind or "", f.last_error or "")
            for f in feeds
            if f.enabled and not f.parked and f.error_count
        ],
        [(f.id, f.last_error_kind or "", f.last_error or "") for f in feeds if f.parked],
        int(items),
        int(stories),
        int(alerts),
    )
