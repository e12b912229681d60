"""``monitor run`` as a real subprocess against a local feed server; ``monitor status``."""

from __future__ import annotations

import json
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from conftest import FeedServer, Route, both_backends, feed_bytes, run_cli, session_on, start_service, wait_for
from sqlmodel import Session, select

from monitor import runner, schema, service, store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_polls_then_stops_cleanly_on_sigterm(server: FeedServer, write_config, tmp_path: Path) -> None:
    server.routes["/rss.xml"] = Route(body=feed_bytes("rss2.xml"))
    server.routes["/dead.xml"] = Route(status=500)
    port = free_port()
    config = write_config(
        feeds=[{"id": "desk", "url": server.url("/rss.xml")}, {"id": "dead", "url": server.url("/dead.xml")}],
        poll={"tick": "1s"},
        metrics={"enabled": True, "port": port},
    )
    process = start_service(config, tmp_path)
    try:
        wait_for(lambda: server.hits("/rss.xml") > 0, 60)
        time.sleep(1.5)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "event=poll feeds=2 new=4 errors=1" in stderr and "event=shutdown signal=SIGTERM" in stderr
    assert server.hits("/rss.xml") == 1  # next check is 15 minutes away, not every tick
    assert "monitor_items_total 4.0" in scraped and 'monitor_fetch_errors_total{kind="server_error"} 1.0' in scraped
    assert 'monitor_job_seconds_count{job="poll"} 1.0' in scraped
    status = json.loads(run_cli("status", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert status["feeds"]["ok"] == ["desk"]
    assert [f["id"] for f in status["feeds"]["failing"]] == ["dead"]
    assert status["items_today"] == 4 and status["last_poll"]


def test_shutdown_abandons_a_hanging_fetch_within_ten_seconds(
    server: FeedServer, write_config, tmp_path: Path, database_url: str
) -> None:
    server.routes["/hang.xml"] = Route(body=feed_bytes("rss2.xml"), delay=40)
    config = write_config(
        feeds=[{"id": "hang", "url": server.url("/hang.xml")}],
        poll={"tick": "1s"},
        fetch={"timeout": "60s", "connect_timeout": "5s"},
    )
    process = start_service(config, tmp_path)
    try:
        wait_for(lambda: server.hits("/hang.xml") > 0, 60)
        time.sleep(0.5)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert took < 12, took
    assert "abandoned_threads=" in stderr
    with session_on(database_url) as session:
        assert session.exec(select(schema.Item)).all() == []  # nothing half-written


@both_backends
def test_claim_due_feeds_writes_the_next_check_first(settings, engine) -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        for i in range(5):
            host = "a.example" if i < 3 else f"b{i}.example"
            session.add(schema.Feed(id=f"f{i}", url=f"https://{host}/rss", name=f"f{i}", next_check_at=now))
    with Session(engine) as session, session.begin():
        taken = store.claim_due_feeds(session, now, limit=10, per_host=2, lease=120, claimer="box:1")
        assert sorted(f.id for f in taken) == ["f0", "f1", "f3", "f4"]  # at most two from a.example
    with Session(engine) as session, session.begin():
        assert [f.id for f in store.claim_due_feeds(session, now, 10, 2, 120, "box:2")] == ["f2"]
    assert service.claim_due(settings, engine, now, "box:3") == []
    with Session(engine) as session:  # reserved for the lease (not the whole 900 s interval), by name
        feeds = store.all_feeds(session)
        assert {f.claimed_by for f in feeds} == {"box:1", "box:2"}
        assert {f.next_check_at for f in feeds} == {now + timedelta(seconds=120)}
    # the claimant died: after the lease the feeds are due again for another process
    later = now + timedelta(seconds=121)
    assert len(service.claim_due(settings, engine, later, "box:3")) == 4


@both_backends
def test_maintenance_applies_retention(settings, engine) -> None:
    from datetime import timedelta

    from monitor.runner import Runtime, maintenance

    now = datetime(2024, 6, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        for age, key in ((400, "old"), (10, "new")):
            session.add(
                schema.Item(
                    key=key,
                    source="s",
                    title=f"{key} title",
                    summary=f"{key} text",
                    published_at=now - timedelta(days=age),
                    fetched_at=now,
                )
            )
    kept = settings.model_copy(update={"storage": settings.storage.model_copy(update={"retention_days": 365})})
    maintenance(kept, engine, Runtime(clock=lambda: now))
    with Session(engine) as session:
        items = {i.key: i for i in session.exec(select(schema.Item))}
    assert (items["old"].summary, items["old"].title) == ("", "old title")
    assert items["new"].summary == "new text"


@both_backends
def test_detection_scores_once_per_interval_across_processes(settings, engine, classifier) -> None:
    """Two processes' detection jobs: the second finds the series scored moments ago and skips; it scores
    again only when new items arrived and the interval has passed."""
    from monitor.backfill import Record

    def add(title: str, when: datetime) -> None:
        record = Record(1, title, "", f"https://w.example/{title}", when, "wire", None)
        assert service.import_items(settings, engine, classifier, [record], when).new == 1

    now = datetime(2024, 3, 1, 12, tzinfo=UTC)
    service.sync_config(settings, engine, now)
    add("Rockets hit a base near the airport", now)
    first, second = runner.Runtime(clock=lambda: now), runner.Runtime(clock=lambda: now + timedelta(seconds=3))
    assert runner.detect_job(settings, engine, first) is True
    assert runner.detect_job(settings, engine, second) is False  # scored 3 s ago by the other process
    add("Drone strike on a convoy in the north", now)
    assert runner.detect_job(settings, engine, second) is False  # new item, but within the interval
    later = runner.Runtime(clock=lambda: now + timedelta(seconds=runner.every(settings) + 1))
    assert runner.detect_job(settings, engine, later) is True
    assert runner.detect_job(settings, engine, later) is False  # nothing new since
