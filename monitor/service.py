"""The jobs, sequenced in one place, and the scheduler that runs them.

Each job is a plain function taking the settings, an engine, the classifier
and ``now``; the CLI calls the same functions.  ``run_service`` wires them to
APScheduler.  Nothing here parses, classifies or queries by itself: it hands
values between the rooms that do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from monitor import fetch, parse, schema, series, store, story_store
from monitor.backfill import BadRecord, Record
from monitor.classify import Classifier
from monitor.config import Settings
from monitor.detect import DetectParams, Result, Series, detect
from monitor.fetch import ErrorKind, FetchResult, Validators
from monitor.hygiene import apply_hygiene, with_series
from monitor.ingest import Ingested, Toolkit, forget_clusters, ingest, make_toolkit
from monitor.theatres import matcher_from_config

log = logging.getLogger("monitor")


@dataclass(frozen=True)
class FeedRef:
    """What a fetch needs to know of a stored feed (safe to pass between threads)."""

    id: str
    url: str
    validators: Validators
    interval_s: int
    error_count: int


@dataclass(frozen=True)
class FeedOutcome:
    feed_id: str
    status: str  # "ok" | "not_modified" | "error"
    new: int = 0
    seen: int = 0
    http_status: int | None = None
    error_kind: str | None = None
    message: str = ""
    bozo: str = ""
    seconds: float = 0.0
    stories: int = 0


@dataclass
class ImportSummary:
    read: int = 0
    new: int = 0
    duplicate: int = 0
    bad: list[BadRecord] = field(default_factory=list)


def feed_ref(feed: schema.Feed) -> FeedRef:
    return FeedRef(feed.id, feed.url, Validators(feed.etag, feed.last_modified), feed.interval_s, feed.error_count)


def claim_due(settings: Settings, engine: Engine, now: datetime, claimer: str) -> list[FeedRef]:
    """Due feeds for this tick, reserved for this process (see ``store.claim_due_feeds``)."""
    poll = settings.poll
    with Session(engine) as session, session.begin():
        feeds = store.claim_due_feeds(session, now, poll.batch, poll.per_host, poll.claim_lease, claimer)
        return [feed_ref(f) for f in feeds]


def feed_refs(engine: Engine) -> list[FeedRef]:
    with Session(engine) as session:
        return [feed_ref(f) for f in store.active_feeds(session)]


def sync_config(settings: Settings, engine: Engine, now: datetime) -> None:
    """Create the schema if needed, make stored feeds match the config, re-place items if theatres changed."""
    schema.init_db(engine)
    with Session(engine) as session, session.begin():
        store.lock_config(session)  # several processes may start at once
        store.sync_feeds(session, settings.feeds, settings.poll.interval, now)
        fingerprint = theatre_fingerprint(settings)
        if store.get_meta(session, "theatres") != fingerprint:
            matcher = matcher_from_config(settings.theatres)
            changed = story_store.reassign_theatres(session, matcher.match)
            store.set_meta(session, "theatres", fingerprint)
            log.info("event=theatres_reassigned items_changed=%d", changed)


def theatre_fingerprint(settings: Settings) -> str:
    """A digest of the theatre definitions: when it changes, stored items are re-placed."""
    text = json.dumps([[t.id, sorted(t.terms)] for t in settings.theatres])
    return hashlib.sha256(text.encode()).hexdigest()


def fetch_all(settings: Settings, feeds: Sequence[FeedRef], now: datetime) -> Iterator[tuple[FeedRef, FetchResult]]:
    """Fetch concurrently (bounded overall and per host); yield results as they complete."""
    hosts: dict[str, threading.Semaphore] = {}
    for feed in feeds:
        hosts.setdefault(store.host_of(feed.url), threading.Semaphore(settings.poll.per_host))

    def one(client: object, feed: FeedRef) -> FetchResult:
        with hosts[store.host_of(feed.url)]:
            return fetch.fetch(client, feed.url, feed.validators, settings.fetch, now)  # type: ignore[arg-type]

    with fetch.make_client(settings.fetch) as client:
        pool = ThreadPoolExecutor(settings.poll.max_concurrency)
        finished = False
        try:
            futures: dict[Future[FetchResult], FeedRef] = {pool.submit(one, client, f): f for f in feeds}
            for future in as_completed(futures):
                yield futures[future], future.result()
            finished = True
        finally:  # a consumer that stops early (shutdown) abandons the fetches still queued or in flight
            pool.shutdown(wait=finished, cancel_futures=True)


def plan_next_check(
    settings: Settings, feed: FeedRef, result: FetchResult, ttl: int | None, now: datetime, rng: random.Random
) -> tuple[datetime, int]:
    """When to poll next and the new consecutive-error count (pure)."""
    wait: float
    if result.error is None:
        wait = max(feed.interval_s, ttl or 0, _max_age(result.headers.get("cache-control", "")))
        errors = 0
    else:
        errors = feed.error_count + 1
        wait = min(feed.interval_s * 2 ** min(errors, 16), settings.poll.backoff_max)
    wait = max(wait, result.retry_after or 0)
    wait += wait * settings.poll.jitter * rng.random()
    return now + timedelta(seconds=wait), errors


def _max_age(cache_control: str) -> int:
    for part in cache_control.lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "max-age" and value.strip().isdigit():
            return min(int(value), 24 * 3600)
    return 0


def _parse_result(result: FetchResult, now: datetime) -> tuple[parse.ParsedFeed | None, FetchResult]:
    if result.error is not None or result.not_modified:
        return None, result
    parsed = parse.parse(result.body, result.final_url, result.headers, now)
    if not parsed.is_feed:
        failed = FetchResult(
            result.url,
            result.final_url,
            result.status,
            b"",
            result.headers,
            error=ErrorKind.NOT_A_FEED,
            message=parsed.bozo_message,
            elapsed=result.elapsed,
        )
        return None, failed
    return parsed, result


def process_result(
    settings: Settings,
    engine: Engine,
    kit: Toolkit,
    feed: FeedRef,
    result: FetchResult,
    now: datetime,
    rng: random.Random,
) -> FeedOutcome:
    """Parse, label and store one feed's fetch, all in one transaction."""
    parsed, result = _parse_result(result, now)
    next_check, errors = plan_next_check(settings, feed, result, parsed.ttl if parsed else None, now, rng)
    with Session(engine) as session, session.begin():
        done = ingest(session, kit, feed.id, feed.id, parsed.items, now) if parsed else Ingested(0, 0, 0)
        outcome = _outcome(feed, result, parsed, done)
        _update_feed(session, settings, feed, result, outcome, next_check, errors, now)
    return outcome


def _outcome(feed: FeedRef, result: FetchResult, parsed: parse.ParsedFeed | None, done: Ingested) -> FeedOutcome:
    status = "error" if result.error else ("not_modified" if result.not_modified else "ok")
    return FeedOutcome(
        feed.id,
        status,
        done.new,
        done.seen,
        result.status,
        result.error.value if result.error else None,
        result.message,
        parsed.bozo_message if parsed else "",
        round(result.elapsed, 3),
        done.stories,
    )


def _update_feed(
    session: Session,
    settings: Settings,
    feed: FeedRef,
    result: FetchResult,
    outcome: FeedOutcome,
    next_check: datetime,
    errors: int,
    now: datetime,
) -> None:
    row = session.get(schema.Feed, feed.id)
    if row is None:  # removed meanwhile; keep the items, skip the bookkeeping
        return
    row.last_checked_at, row.next_check_at, row.error_count = schema.as_utc(now), schema.as_utc(next_check), errors
    row.claimed_by = None
    if result.error is None:
        row.last_success_at, row.last_error_kind, row.last_error = schema.as_utc(now), None, None
        if not result.not_modified:
            row.etag, row.last_modified = result.validators.etag, result.validators.last_modified
        if result.permanent_url:
            row.url = result.permanent_url
    else:
        row.last_error_kind, row.last_error = result.error.value, result.message[:1000]
        row.parked = result.error is ErrorKind.GONE or errors >= settings.poll.park_after
    session.add(row)
    store.record_poll(
        session,
        schema.PollLog(
            feed_id=feed.id,
            at=schema.as_utc(now),
            status=result.status,
            new=outcome.new,
            seen=outcome.seen,
            not_modified=result.not_modified,
            error_kind=outcome.error_kind,
            error=outcome.message[:1000] or None,
            bozo=outcome.bozo or None,
            duration_ms=int(result.elapsed * 1000),
        ),
    )


def poll_feeds(
    settings: Settings,
    engine: Engine,
    classifier: Classifier,
    now: datetime,
    on_result: Callable[[FeedOutcome], None] | None = None,
    rng: random.Random | None = None,
    feeds: Sequence[FeedRef] | None = None,
    stop: threading.Event | None = None,
    kit: Toolkit | None = None,
) -> list[FeedOutcome]:
    """Poll every active feed (or ``feeds``) once; a failing feed is recorded and the rest go on.

    When ``stop`` is set (shutdown), no further result is stored: each feed's transaction is whole, so
    what was stored stays consistent and the abandoned feeds are simply due again.
    """
    rng = rng or random.Random()
    kit = kit or make_toolkit(settings, classifier)  # the service keeps one, with its story cache, across ticks
    outcomes = []
    for feed, result in fetch_all(settings, feed_refs(engine) if feeds is None else feeds, now):
        if stop is not None and stop.is_set():
            break
        try:
            outcome = process_result(settings, engine, kit, feed, result, now, rng)
        except Exception as exc:  # a bug or a database fault on one feed must not stop the others
            log.exception("event=feed_failed feed=%s", feed.id)
            forget_clusters(kit)
            outcome = FeedOutcome(feed.id, "error", error_kind="internal", message=f"{type(exc).__name__}: {exc}")
        outcomes.append(outcome)
        if on_result:
            on_result(outcome)
    return sorted(outcomes, key=lambda o: o.feed_id)


def import_items(
    settings: Settings,
    engine: Engine,
    classifier: Classifier,
    records: Iterable[Record | BadRecord],
    now: datetime,
    batch: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Backfill archived records through the same dedup and labelling path as polling."""
    summary = ImportSummary()
    kit = make_toolkit(settings, classifier)
    pending: list[Record] = []
    for record in records:
        if isinstance(record, BadRecord):
            summary.bad.append(record)
            continue
        pending.append(record)
        if len(pending) >= batch:
            _import_batch(engine, kit, pending, now, summary, progress)
            pending = []
    _import_batch(engine, kit, pending, now, summary, progress)
    return summary


def _import_batch(
    engine: Engine,
    kit: Toolkit,
    records: list[Record],
    now: datetime,
    summary: ImportSummary,
    progress: Callable[[int], None] | None,
) -> None:
    if not records:
        return
    by_source: dict[str, list[parse.ParsedItem]] = {}
    for record in records:
        item = parse.build_item(record.guid, record.link, record.title, record.summary, record.published, now)
        if item is not None:  # backfill rejects records without text, so this always holds
            by_source.setdefault(record.source, []).append(item)
    with Session(engine) as session, session.begin():
        for source, items in by_source.items():
            summary.new += ingest(session, kit, None, source, items, now).new
    summary.read += len(records)
    summary.duplicate = summary.read - summary.new
    if progress:
        progress(len(records))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SeriesDetection:
    """One (theatre, label) series with its detector output, for alerts and reports."""

    theatre: str | None
    label: str
    series: Series
    result: Result


def stored_series(
    settings: Settings, engine: Engine, theatres: Sequence[str | None], until: date | None = None
) -> list[tuple[str | None, str, Series]]:
    """Daily story counts per (theatre, label) with the day's total ingested volume."""
    zone = ZoneInfo(settings.timezone)
    with Session(engine) as session:
        points = series.count_series(session, list(dict.fromkeys([None, *theatres])), zone, until=until)
    volume: dict[date, float] = {}
    for p in points:
        if p.theatre is None:
            volume[p.date] = volume.get(p.date, 0.0) + p.mentions
    grouped: dict[tuple[str | None, str], list[tuple[date, int]]] = {}
    for p in points:
        if p.theatre in theatres:
            grouped.setdefault((p.theatre, p.label), []).append((p.date, p.stories))
    return [
        (
            theatre,
            label,
            Series(tuple(d for d, _ in rows), tuple(c for _, c in rows), tuple(volume.get(d, 0.0) for d, _ in rows)),
        )
        for (theatre, label), rows in grouped.items()
    ]


def detect_now(
    settings: Settings,
    engine: Engine,
    now: datetime,
    theatres: Sequence[str | None] | None = None,
    since: date | None = None,
    until: date | None = None,
    params: DetectParams | None = None,
    refit: int = 28,
) -> list[SeriesDetection]:
    """Run the detectors on every stored series and store new alerts (idempotent).

    By default the last four weeks are scored with one baseline fit (``refit`` days per fit): cheap
    enough to run after every poll cycle; reports score longer windows with weekly refits.
    """
    theatres = [None, *(t.id for t in settings.theatres)] if theatres is None else theatres
    params = params or DetectParams()
    until = until or now.astimezone(ZoneInfo(settings.timezone)).date()
    since = since or until - timedelta(days=27)
    found = []
    for theatre, label, counts in stored_series(settings, engine, theatres, until):
        result = detect(counts, params, since=since, refit=refit)
        alerts = with_series(apply_hygiene(result.alerts), theatre, label)
        found.append(SeriesDetection(theatre, label, counts, replace(result, alerts=alerts)))
    with Session(engine) as session, session.begin():
        store.save_alerts(session, [a for d in found for a in d.result.alerts], now)
    return found
