"""Several ``monitor run`` processes on one real PostgreSQL: feeds shared, once-only jobs done once.

Three service processes poll 300 feeds on a local server. The first cycle must fetch every feed
exactly once; the weekly report and the alerts must be produced once; after one process is killed in
the middle of the second cycle the other two must finish its feeds within one interval. Also: two
processes ingesting the same event at once make one story, not two.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from conftest import POSTGRES_URL, FeedServer, Hook, Route, both_backends, run_cli, start_service, wait_for
from sqlalchemy import text

from monitor import parse, schema, service, store
from monitor.ingest import ingest, make_toolkit

ROOT = Path(__file__).resolve().parents[1]
FEEDS = 300
INTERVAL = 40  # seconds between two polls of a feed
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL server: set MONITOR_TEST_POSTGRES_URL")


def seed_items() -> list[parse.ParsedItem]:
    """Items the team wrote for the demo feeds, parsed from the bundled snapshots."""
    now = datetime(2024, 3, 1, tzinfo=UTC)
    found = []
    for path in sorted((ROOT / "seeds" / "feeds").glob("*.xml")):
        found.extend(parse.parse(path.read_bytes(), f"https://{path.stem}.example/", {}, now).items)
    return found


def rss(items: list[parse.ParsedItem], published: datetime) -> bytes:
    entries = "".join(
        f"<item><title>{escape(i.title)}</title><description>{escape(i.summary)}</description>"
        f"<link>{escape(i.link or '')}</link><guid>{escape(i.key)}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for i in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'.encode()


def history(items: list[parse.ParsedItem], today: datetime, path: Path) -> Path:
    """Eight quiet weeks before today, ten items a day, for the detectors' baseline."""
    lines = [
        json.dumps({"title": i.title, "summary": i.summary, "link": i.link, "source": "archive",
                    "published": (today - timedelta(days=1 + n // 10, hours=n % 10)).isoformat()})
        for n, i in enumerate(items)
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def undelivered(url: str) -> int:
    engine = schema.make_engine(url)
    try:
        with engine.connect() as c:
            sql = (
                "SELECT count(*) FROM alert a WHERE NOT EXISTS (SELECT 1 FROM alert_delivery d WHERE d.alert_id = a.id)"
            )
            return int(c.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def feed_hits(server: FeedServer) -> Counter[str]:
    return Counter(p for p, _ in list(server.requests) if p.startswith("/f"))


@pytest.mark.slow
@needs_postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_three_processes_share_300_feeds_on_postgresql(
    server: FeedServer, post_server: FeedServer, write_config, database_url: str, tmp_path: Path, classifier
) -> None:
    from monitor.classify import Document

    seeds = seed_items()
    quiet = {i.key for i, p in zip(seeds, classifier.predict([Document(i.title, i.summary) for i in seeds]))
             if p.label == "other"}  # fmt: skip
    # eight weeks of unrelated news, then today a surge of conflict news among the rest: an escalation
    past = [i for i in seeds if i.key in quiet][:560]
    items = [i for i in seeds if i.key not in {p.key for p in past}]
    assert len(past) == 560 and len(items) >= 2 * FEEDS
    now = datetime.now(UTC)
    for i in range(FEEDS):
        server.routes[f"/f{i:03d}.xml"] = Route(
            body=rss(items[2 * i : 2 * i + 2], now - timedelta(minutes=30)), delay=0.02
        )
    hook = Hook()
    server.routes["/hook"] = Route(handler=hook)
    config = write_config(
        feeds=[{"id": f"f{i:03d}", "url": server.url(f"/f{i:03d}.xml")} for i in range(FEEDS)],
        poll={"interval": f"{INTERVAL}s", "tick": "1s", "batch": 16, "per_host": 16, "max_concurrency": 8,
              "claim_lease": "8s", "jitter": 0},
        report={"dir": str(tmp_path / "reports"), "schedule": "* * * * *"},
        alerts={"webhook_url": server.url("/hook")},
    )  # fmt: skip
    archive = history(past, now, tmp_path / "archive.jsonl")
    assert run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path).returncode == 0

    logs = [tmp_path / f"service-{n}.log" for n in range(3)]
    processes = [start_service(config, tmp_path, log=log) for log in logs]
    try:
        assert wait_for(lambda: len(feed_hits(server)) == FEEDS, INTERVAL - 5), f"cycle 1: {len(feed_hits(server))}"
        first = feed_hits(server)
        assert set(first.values()) == {1}, "a feed was fetched twice in one cycle"
        assert wait_for(lambda: sum(feed_hits(server).values()) >= FEEDS + 100, INTERVAL + 30)
        processes[0].send_signal(signal.SIGKILL)  # dies in the middle of the second cycle
        killed_at = time.monotonic()
        assert wait_for(lambda: min(feed_hits(server).values()) >= 2, INTERVAL + 5), "its feeds were not taken over"
        assert time.monotonic() - killed_at < INTERVAL
        assert wait_for(lambda: len(list((tmp_path / "reports").glob("*.pdf"))) >= 1, 75), "no weekly report"
        assert wait_for(lambda: len(hook.bodies) >= 1, 30), "no alert delivered"
        assert wait_for(lambda: undelivered(database_url) == 0, 30), "alerts left undelivered"
    except AssertionError:
        for log in logs:  # what the services said, for the failure report
            print(log.name, log.read_text()[-3000:])
        raise
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)

    engine = schema.make_engine(database_url)
    try:
        with engine.connect() as c:
            scalar = lambda sql: c.execute(text(sql)).scalar()  # noqa: E731
            assert scalar("SELECT count(*) FROM item WHERE feed_id IS NOT NULL") == 2 * FEEDS  # each served item once
            assert scalar("SELECT count(DISTINCT guid) FROM item WHERE feed_id IS NOT NULL") == 2 * FEEDS
            assert scalar("SELECT count(*) FROM item i LEFT JOIN story_item s ON s.item_id = i.id "
                          "WHERE s.item_id IS NULL") == 0  # fmt: skip
            assert scalar("SELECT count(*) FROM story s WHERE s.n_items <> "
                          "(SELECT count(*) FROM story_item m WHERE m.story_id = s.id)") == 0  # fmt: skip
            assert scalar("SELECT count(*) FROM report_run") == 1
            alerts = scalar("SELECT count(*) FROM alert")
            assert scalar("SELECT count(*) FROM alert_delivery WHERE channel = 'webhook'") == alerts
            runs = {r[0] for r in c.execute(text("SELECT made_by FROM report_run"))}
    finally:
        engine.dispose()
    assert len(list((tmp_path / "reports").glob("*-W*.pdf"))) == 1, runs  # besides the latest.pdf copy
    delivered = Counter((b["theatre"], b["label"], b["date"], b["kind"]) for b in hook.bodies)
    assert len(delivered) == alerts and set(delivered.values()) == {1}, "an alert was delivered twice"


@both_backends
def test_two_processes_ingesting_one_event_make_one_story(settings, engine, classifier) -> None:
    """Process B's clusters were loaded before process A stored the event: B must still join A's story."""
    published = datetime(2024, 1, 20, 9, tzinfo=UTC)
    first = parse.build_item("a1", None, "Drone strike hits Tower 22 base in Jordan, three soldiers killed",
                             "Militants launched the drone overnight.", published, published)  # fmt: skip
    second = parse.build_item("b1", None, "Three US soldiers killed in drone strike on Jordan base Tower 22",
                              "The drone struck the base overnight, officials said.", published, published)  # fmt: skip
    early = parse.build_item("b0", None, "Harbour authority reopens the northern quay", "", published, published)
    assert first and second and early
    service.sync_config(settings, engine, published)
    kit_a, kit_b = make_toolkit(settings, classifier), make_toolkit(settings, classifier)
    from sqlmodel import Session

    with Session(engine) as session, session.begin():
        ingest(session, kit_b, None, "outlet-b", [early], published)  # B loads its clusters now
    with Session(engine) as session, session.begin():
        ingest(session, kit_a, None, "outlet-a", [first], published)
    with Session(engine) as session, session.begin():
        ingest(session, kit_b, None, "outlet-b", [second], published)
    with engine.connect() as c:
        rows = c.execute(text("SELECT i.title, s.story_id FROM item i JOIN story_item s ON s.item_id = i.id")).all()
    stories = {title: story for title, story in rows}
    assert stories[first.title] == stories[second.title] != stories[early.title]


@both_backends
def test_processes_starting_together_on_a_new_database_all_come_up(make_settings, database_url: str) -> None:
    """Schema creation and the feed sync are serialised: no start-up loses a race and crashes."""
    import threading

    settings = make_settings(
        feeds=[{"id": f"f{i}", "url": f"https://f{i}.example/rss"} for i in range(50)],
        theatres=[{"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["iraq"]}],
    )
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        engine = schema.make_engine(database_url)
        try:
            barrier.wait()
            service.sync_config(settings, engine, datetime(2024, 1, 1, tzinfo=UTC))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = schema.make_engine(database_url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM feed")).scalar() == 50
    engine.dispose()


@both_backends
def test_a_story_grown_by_another_process_replaces_the_cached_copy(settings, engine, classifier) -> None:
    """B made a story, A added to it, B's next item joins it: B's index holds one copy, with A's item."""
    from sqlmodel import Session

    published = datetime(2024, 1, 20, 9, tzinfo=UTC)
    texts = [
        ("b1", "Drone strike hits Tower 22 base in Jordan, three soldiers killed", "Militants launched it overnight."),
        ("a1", "Three US soldiers killed in drone strike on Jordan base Tower 22", "The drone struck overnight."),
        (
            "b2",
            "Drone strike on Jordan base Tower 22 kills three US soldiers",
            "It hit the base overnight, officials said.",
        ),
    ]
    items = [parse.build_item(key, None, title, summary, published, published) for key, title, summary in texts]
    assert all(items)
    service.sync_config(settings, engine, published)
    kit_a, kit_b = make_toolkit(settings, classifier), make_toolkit(settings, classifier)
    for kit, item in zip((kit_b, kit_a, kit_b), items):
        with Session(engine) as session, session.begin():
            ingest(session, kit, None, "outlet", [item], published)
    with engine.connect() as c:
        stories = {row[0] for row in c.execute(text("SELECT story_id FROM story_item"))}
    assert len(stories) == 1
    index = kit_b.cache["index"]
    copies = [cl for cl in index.clusters if cl.story_id in stories]  # type: ignore[attr-defined]
    assert len(copies) == 1 and len(copies[0].members) == 3


def _as_loaded(clusters: Any) -> dict[int, tuple[Any, ...]]:
    return {
        int(c.story_id): (
            c.group,
            c.first,
            sorted(c.theatres),
            sorted((m.item_id, m.label, m.theatres) for m in c.members),
        )
        for c in clusters
        if c.story_id is not None
    }


@both_backends
def test_a_cached_window_caught_up_matches_a_fresh_load(make_settings, engine, classifier) -> None:
    """B's cache after catching up with A's stories, an analyst's relabel and new theatre terms holds
    exactly what a fresh load of the window holds (members, labels, theatres, story groups)."""
    from sqlmodel import Session

    from monitor import story_store

    theatres = [{"id": "jordan", "name": "Jordan", "terms": ["jordan"]}]
    settings = make_settings(theatres=theatres)
    published = datetime(2024, 1, 20, 9, tzinfo=UTC)
    texts = [
        ("b1", "Drone strike hits Tower 22 base in Jordan, three soldiers killed", "Militants launched it overnight."),
        ("a1", "Three US soldiers killed in drone strike on Jordan base Tower 22", "The drone struck overnight."),
        ("a2", "Harbour authority in Aqaba reopens the northern quay after storm repairs", ""),
        ("b2", "Drone strike on Jordan base Tower 22 kills three US soldiers", "It hit the base overnight."),
        ("a3", "US strikes militia sites in Iraq and Syria in answer to the Tower 22 attack", "Dozens of targets."),
        ("b3", "Aqaba port traffic back to normal as northern quay reopens", ""),
    ]
    items = [parse.build_item(key, None, title, summary, published, published) for key, title, summary in texts]
    assert all(items)
    service.sync_config(settings, engine, published)
    kit_a, kit_b = make_toolkit(settings, classifier), make_toolkit(settings, classifier)

    def put(kit: Any, item: Any) -> None:
        with Session(engine) as session, session.begin():
            ingest(session, kit, None, "outlet", [item], published)

    for kit, item in zip((kit_b, kit_a, kit_a, kit_b, kit_a), items):
        put(kit, item)
    with engine.connect() as c:
        first_id = c.execute(text("SELECT id FROM item WHERE title LIKE 'Drone strike hits%'")).scalar_one()
    with Session(engine) as session, session.begin():  # an analyst relabels one member of B's cached story
        store.add_correction(session, first_id, "other", published)
        story_store.refresh_story_of_item(session, first_id)

    def assert_cache_is_current() -> dict[int, Any]:
        index = kit_b.cache["index"]
        with Session(engine) as session:
            fresh = story_store.load_clusters(session, index.start, index.end)  # type: ignore[attr-defined]
        assert _as_loaded(index.clusters) == _as_loaded(fresh)  # type: ignore[attr-defined]
        return {m.item_id: m for c in index.clusters for m in c.members}  # type: ignore[attr-defined]

    put(kit_b, items[5])  # B catches up before placing this one
    members = assert_cache_is_current()
    assert members[first_id].label == "other" and members[first_id].confidence == 1.0
    aqaba = make_settings(theatres=[*theatres, {"id": "aqaba", "name": "Aqaba", "terms": ["aqaba"]}])
    service.sync_config(aqaba, engine, published)  # new theatre terms re-place the stored items
    put(
        kit_b,
        parse.build_item("b4", None, "Aqaba quay reopening draws cruise operators back", "", published, published),
    )
    assert_cache_is_current()
    assert any("aqaba" in m.theatres for m in assert_cache_is_current().values())
