"""One batch of parsed items -> labelled, placed and clustered rows, in the caller's transaction.

Polling and importing share this path, so both deduplicate, label, assign
theatres, record running tallies, build stories and link retaliation chains
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from monitor import store, story_store
from monitor.classify import Classifier, Document
from monitor.config import Settings
from monitor.parse import ParsedItem
from monitor.schema import Story, TallyRow
from monitor.stories import (
    ClusterIndex,
    Idf,
    Member,
    StoryParams,
    StorySketch,
    assign,
    chain_links,
    find_tally,
    is_tally_item,
    label_group,
    signature,
)
from monitor.theatres import TheatreMatcher, matcher_from_config

CHAIN_HORIZON = timedelta(days=14)
CACHE_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Toolkit:
    """Everything labelling and clustering need, built once per run."""

    classifier: Classifier
    matcher: TheatreMatcher
    idf: Idf
    params: StoryParams
    cache: dict[str, object] = field(default_factory=dict)  # this run's stories of the current window


@dataclass(frozen=True)
class Ingested:
    new: int
    seen: int
    stories: int  # stories created or grown by this batch


def make_toolkit(settings: Settings, classifier: Classifier, params: StoryParams | None = None) -> Toolkit:
    counts = classifier.word_counts()
    idf = Idf.from_counts(counts, int(classifier.meta.get("n_docs", len(counts) or 1)))
    return Toolkit(classifier, matcher_from_config(settings.theatres), idf, params or StoryParams())


def label_items(classifier: Classifier, items: Sequence[ParsedItem]) -> list[store.NewItem]:
    """Classify items; a headline that is a running tally reports no new act, so it counts as other."""
    predictions = classifier.predict([Document(i.title, i.summary) for i in items])
    labelled = []
    for item, p in zip(items, predictions):
        label, note, evidence = p.label, p.note, p.evidence
        if label in ("attack", "retaliation") and is_tally_item(find_tally(item.title, "")):
            label, note, evidence = "other", "running tally: a cumulative count, not a new act", ("running tally",)
        labelled.append(
            store.NewItem(
                item.key,
                item.title,
                item.summary,
                item.published,
                item.guid,
                item.link,
                label,
                p.scores,
                evidence,
                note,
                classifier.version,
            )
        )
    return labelled


def ingest(
    session: Session, kit: Toolkit, feed_id: str | None, source: str, items: Sequence[ParsedItem], now: datetime
) -> Ingested:
    """Store the new items of a batch with labels, theatres, tallies, stories and chains."""
    unique = list({i.key: i for i in items}.values())
    new = store.save_items(session, feed_id, source, label_items(kit.classifier, unique), now)
    if not new:
        return Ingested(0, len(unique), 0)
    places = {item_id: kit.matcher.match(item.title, item.summary) for item_id, item in new}
    store.save_theatres(session, [(item_id, t) for item_id, ts in places.items() for t in ts])
    store.save_tallies(session, _tallies(new))
    members = [_member(item_id, item, places[item_id]) for item_id, item in new]
    attacks = _attack_sketches(session, kit, members)  # read before the story lock: other processes wait on it
    touched = _cluster(session, kit, members)
    _link_chains(session, kit, touched, attacks)
    return Ingested(len(new), len(unique) - len(new), len(touched))


@dataclass(frozen=True)
class AttackWindow:
    start: datetime
    sketches: list[StorySketch]


def _attack_sketches(session: Session, kit: Toolkit, members: Sequence[Member]) -> AttackWindow | None:
    """The attack stories a retaliation in this batch may answer (None when the batch has none)."""
    published = [m.published for m in members if m.label == "retaliation"]
    if not published:
        return None
    start = min(published) - CHAIN_HORIZON - kit.params.window - kit.params.lead
    return AttackWindow(start, story_store.story_sketches(session, start, max(published), "attack"))


def _member(item_id: int, item: store.NewItem, theatres: tuple[str, ...]) -> Member:
    return Member(
        item_id,
        item.published,
        item.label,
        max(item.scores.values(), default=0.0),
        theatres,
        signature(item.title, item.summary),
    )


def _tallies(new: Sequence[tuple[int, store.NewItem]]) -> list[TallyRow]:
    rows = []
    for item_id, item in new:
        tally = find_tally(item.title, item.summary)
        if tally is not None and tally.cumulative and not tally.ordinal:
            rows.append(
                TallyRow(
                    item_id=item_id,
                    number=tally.number,
                    what=tally.what,
                    target=tally.target,
                    since=tally.since,
                    ordinal=tally.ordinal,
                    published_at=item.published,
                )
            )
    return rows


def _cluster(session: Session, kit: Toolkit, members: list[Member]) -> list[Story]:
    start = min(m.published for m in members) - kit.params.window - kit.params.lead
    end = max(m.published for m in members) + kit.params.lead
    index, seen = kit.cache.get("index"), kit.cache.get("generation")
    if not isinstance(index, ClusterIndex) or not isinstance(seen, int) or not index.covers(start, end):
        # the slow full load happens before the story lock; what changes meanwhile is caught up below
        seen = story_store.story_generation(session)
        wide_start, wide_end = start - CACHE_MARGIN, end + CACHE_MARGIN
        loaded = story_store.load_clusters(session, wide_start, wide_end)
        index = kit.cache["index"] = ClusterIndex(loaded, kit.idf, kit.params, wide_start, wide_end)
        kit.cache["generation"] = seen
    generation = story_store.lock_stories(session)
    if seen != generation:  # another process wrote stories since: take in just what it wrote
        _catch_up(session, index, seen)
    placed = assign(members, index)
    touched = story_store.save_clusters(session, placed, generation + 1)
    for cluster in placed.values():
        index.register(cluster)
    story_store.set_generation(session, generation + 1)
    kit.cache["generation"] = generation + 1
    return touched


def _catch_up(session: Session, index: ClusterIndex, seen: int) -> None:
    changes = story_store.load_changes(session, index.start, index.end, seen)
    unknown = [
        sid
        for sid, label in changes.labels.items()
        if not index.update(sid, label_group(label), changes.members.get(sid, []))
    ]
    for cluster in story_store.load_stories(session, unknown) if unknown else []:
        index.replace(cluster)


def forget_clusters(kit: Toolkit) -> None:
    """Drop the in-memory clusters (after a failed transaction they may differ from the database)."""
    kit.cache.clear()


def _link_chains(session: Session, kit: Toolkit, touched: Sequence[Story], prefetched: AttackWindow | None) -> None:
    """Link this batch's retaliation stories to the attacks they answer (attack stories read before the
    story lock, plus the ones this batch touched, read now)."""
    retaliations = [s for s in touched if s.label == "retaliation"]
    if not retaliations:
        return
    first = min(s.first_at for s in retaliations)
    last = max(s.first_at for s in retaliations)
    if prefetched is not None and prefetched.start <= first - CHAIN_HORIZON:
        own = [int(s.id or 0) for s in touched if s.label == "attack"]
        fresh = story_store.story_sketches(session, prefetched.start, last, "attack", own) if own else []
        attacks = [a for a in prefetched.sketches if a.first <= last and a.story_id not in own] + fresh
    else:
        attacks = story_store.story_sketches(session, first - CHAIN_HORIZON, last, "attack")
    ids = [int(s.id or 0) for s in retaliations]
    for sketch in story_store.story_sketches(session, first, last, "retaliation", ids):
        story_store.save_links(session, sketch.story_id, chain_links(sketch, attacks, kit.idf, CHAIN_HORIZON))
