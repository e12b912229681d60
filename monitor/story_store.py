"""Stored stories: loading the clusters of a time window, writing memberships, refreshing a story,
re-placing items when theatre terms change, and the retaliation-chain links.

Writes happen in the caller's transaction (``ingest`` for polls and imports).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy import select as sql_select  # sqlmodel's select takes at most four columns
from sqlmodel import Session, col, select

from monitor.leader import hold_until_commit
from monitor.schema import (
    LABEL_COLUMNS,
    ChainLink,
    Correction,
    Item,
    ItemTheatre,
    Label,
    Story,
    StoryItem,
    StoryTheatre,
    as_utc,
)
from monitor.store import get_meta, save_theatres, set_meta
from monitor.stories import Cluster, Link, Member, StorySketch, label_group, lead_member, signature


def _members(session: Session, story_ids: Sequence[int]) -> dict[int, list[Member]]:
    """The members of the given stories as clustering sees them (effective labels)."""
    members: dict[int, list[Member]] = {}
    for start in range(0, len(story_ids), 500):
        for story_id, found in _member_rows(session, _member_query(story_ids[start : start + 500])).items():
            members.setdefault(story_id, []).extend(found)
    return members


def _member_query(story_ids: Sequence[int]) -> Any:
    """Just the columns a member needs (whole ORM rows cost several times more to build)."""
    scores = [getattr(Label, column) for column in LABEL_COLUMNS.values()]
    columns = [col(c) for c in (StoryItem.story_id, Item.id, Item.published_at, Item.title, Item.summary)]
    statement = (
        sql_select(*columns, col(Label.label), col(Correction.label), *scores)
        .join(Item, col(Item.id) == col(StoryItem.item_id))
        .join(Label, col(Label.item_id) == col(Item.id))
        .outerjoin(Correction, col(Correction.item_id) == col(Item.id))
    )
    return statement.where(col(StoryItem.story_id).in_(story_ids)) if story_ids else statement


def _member_rows(session: Session, statement: Any) -> dict[int, list[Member]]:
    rows = session.execute(statement).all()
    places = _theatres_of(session, [int(row[1]) for row in rows])
    members: dict[int, list[Member]] = {}
    for story_id, item_id, published, title, summary, label, corrected, *scores in rows:
        members.setdefault(int(story_id), []).append(
            Member(
                int(item_id),
                as_utc(published),
                corrected or label,
                1.0 if corrected else max(scores),
                places.get(int(item_id), ()),
                signature(title, summary),
            )
        )
    return members


def _theatres_of(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for start in range(0, len(item_ids), 500):
        statement = select(ItemTheatre).where(col(ItemTheatre.item_id).in_(item_ids[start : start + 500]))
        for row in session.exec(statement):
            found.setdefault(row.item_id, []).append(row.theatre_id)
    return {item_id: tuple(sorted(ts)) for item_id, ts in found.items()}


def lock_stories(session: Session) -> int:
    """Hold the story-building lock until this transaction ends; return the story generation.

    Several processes ingesting at once must not each start a story for the same event: on PostgreSQL
    they take turns here (SQLite's single writer does this already). The generation counts story
    writes; a process whose cached clusters are of an older generation reloads the stories written
    since (each story records the generation that last changed it).
    """
    hold_until_commit(session, "stories")
    return story_generation(session)


def story_generation(session: Session) -> int:
    return int(get_meta(session, "story_generation") or 0)


def set_generation(session: Session, generation: int) -> None:
    set_meta(session, "story_generation", str(generation))


def load_clusters(session: Session, start: datetime, end: datetime) -> list[Cluster]:
    """Stored stories first reported between ``start`` and ``end``, with their members."""
    statement = select(Story).where(col(Story.first_at) >= as_utc(start), col(Story.first_at) <= as_utc(end))
    return _clusters(session, session.exec(statement.order_by(col(Story.first_at), col(Story.id))).all())


def load_stories(session: Session, story_ids: Sequence[int]) -> list[Cluster]:
    """The given stories, with their members."""
    return _clusters(session, session.exec(select(Story).where(col(Story.id).in_(story_ids))).all())


def _clusters(session: Session, stories: Sequence[Story]) -> list[Cluster]:
    members = _members(session, [int(s.id or 0) for s in stories])
    clusters = []
    for story in stories:
        own = sorted(members.get(int(story.id or 0), []), key=lambda m: (m.published, m.item_id))
        theatres = {t for m in own for t in m.theatres}
        clusters.append(Cluster(story.id, as_utc(story.first_at), label_group(story.label), theatres, own))
    return clusters


@dataclass(frozen=True)
class Changes:
    """What other processes wrote to the stories of a window since a story-building round."""

    labels: dict[int, str]  # story id -> its label now, for every story changed
    members: dict[int, list[Member]]  # story id -> only the memberships written (or relabelled) since


def load_changes(session: Session, start: datetime, end: datetime, changed_after: int) -> Changes:
    """Stories first reported between ``start`` and ``end`` and changed after round ``changed_after``,
    with just the memberships written since: catching up costs what others added, not story size."""
    window = (col(Story.first_at) >= as_utc(start), col(Story.first_at) <= as_utc(end))
    changed = session.execute(select(Story.id, Story.label).where(*window, col(Story.generation) > changed_after))
    labels = {int(story_id): str(label) for story_id, label in changed}
    statement = (
        _member_query(())
        .join(Story, col(Story.id) == col(StoryItem.story_id))
        .where(*window, col(StoryItem.generation) > changed_after)
    )
    return Changes(labels, _member_rows(session, statement) if labels else {})


def save_clusters(session: Session, placed: dict[int, Cluster], generation: int = 0) -> list[Story]:
    """Write new stories and memberships, refresh the touched stories (marked with ``generation``);
    return the touched stories."""
    touched: dict[int, Cluster] = {}
    for item_id, cluster in placed.items():
        if cluster.story_id is None:
            story = Story(label=cluster.members[0].label, first_at=cluster.first, last_at=cluster.first)
            session.add(story)
            session.flush()
            cluster.story_id = story.id
        story_id = int(cluster.story_id or 0)
        session.add(StoryItem(item_id=item_id, story_id=story_id, generation=generation))
        touched[story_id] = cluster
    return _refresh_stories(session, touched, generation)


def _refresh_stories(session: Session, touched: dict[int, Cluster], generation: int) -> list[Story]:
    """Bring the touched stories' label, times, size, title and theatres up to date (three queries in all)."""
    ids = sorted(touched)
    stories = {int(s.id or 0): s for s in session.exec(select(Story).where(col(Story.id).in_(ids)))}
    lead = {sid: lead_member(c.members) for sid, c in touched.items()}
    lead_ids = [m.item_id for m in lead.values()]
    titles = dict(session.execute(select(Item.id, Item.title).where(col(Item.id).in_(lead_ids))).all())
    known: dict[int, set[str]] = {}
    for sid, theatre in session.execute(
        select(StoryTheatre.story_id, StoryTheatre.theatre_id).where(col(StoryTheatre.story_id).in_(ids))
    ):
        known.setdefault(int(sid), set()).add(str(theatre))
    refreshed = []
    for sid in ids:
        story, cluster = stories[sid], touched[sid]
        story.generation = generation
        story.label = lead[sid].label
        story.first_at = min(m.published for m in cluster.members)
        story.last_at = max(m.published for m in cluster.members)
        story.n_items = len(cluster.members)
        story.title = titles.get(lead[sid].item_id, story.title)
        session.add(story)
        session.add_all(
            StoryTheatre(story_id=sid, theatre_id=t) for t in sorted(cluster.theatres - known.get(sid, set()))
        )
        refreshed.append(story)
    return refreshed


def story_sketches(
    session: Session, start: datetime, end: datetime, label: str, ids: Sequence[int] | None = None
) -> list[StorySketch]:
    """Stories of ``label`` first reported in [start, end] (only ``ids`` if given), with theatres and words."""
    statement = select(Story).where(
        col(Story.label) == label, col(Story.first_at) >= as_utc(start), col(Story.first_at) <= as_utc(end)
    )
    if ids is not None:
        statement = statement.where(col(Story.id).in_(ids))
    stories = session.exec(statement).all()
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
    generation = lock_stories(session) + 1  # so running services reload this story and this membership
    link.generation = generation
    session.add(link)
    _refresh_stories(session, {link.story_id: cluster}, generation)
    set_generation(session, generation)


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
    if changed:  # running services hold these items' old theatres in their cached stories: make them re-read
        generation = lock_stories(session) + 1
        session.execute(update(StoryItem).values(generation=generation))
        session.execute(update(Story).values(generation=generation))
        set_generation(session, generation)
    return changed
