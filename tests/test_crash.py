"""Crash safety: ``monitor run`` killed with SIGKILL at random moments and restarted loses nothing and
double counts nothing; the result equals an uninterrupted poll of the same feeds."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import FeedServer, Route, run_cli, start_service, wait_for

POLL = {"tick": "1s", "jitter": 0, "per_host": 16, "max_concurrency": 16}


def nonsense(rng: random.Random) -> str:
    """Six made-up words: every item is its own story, so story counts cannot depend on order."""
    return " ".join(
        "".join(rng.choice("bcdfghjklmnpqrstvwz") + rng.choice("aeiou") for _ in range(4)) for _ in range(6)
    )


def feed(number: int, rng: random.Random) -> bytes:
    items = "".join(
        f"<item><guid>f{number}-{j}</guid><title>{nonsense(rng)}</title>"
        f"<link>https://crash.example/{number}/{j}</link><pubDate>Mon, {1 + j:02d} Jan 2024 10:00:00 GMT</pubDate>"
        f"</item>"
        for j in range(5)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{number}</title>{items}</channel></rss>'.encode()


def counts(config: Path, cwd: Path) -> dict:
    result = run_cli("counts", "--json", "--config", str(config), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def database_totals(path: Path) -> tuple[int, int, str]:
    with sqlite3.connect(path) as connection:
        items = connection.execute("select count(*) from item").fetchone()[0]
        stories = connection.execute("select count(*) from story").fetchone()[0]
        integrity = connection.execute("pragma integrity_check").fetchone()[0]
    return items, stories, integrity


@pytest.mark.slow
def test_sigkill_and_restart_loses_nothing(server: FeedServer, write_config, tmp_path: Path) -> None:
    rng = random.Random(3)
    feeds = []
    for number in range(200):
        server.routes[f"/f{number}.xml"] = Route(body=feed(number, rng))
        feeds.append({"id": f"f{number}", "url": server.url(f"/f{number}.xml"), "interval": "2s"})
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    reference = write_config(feeds=feeds, database=f"sqlite:///{reference_dir / 'ref.db'}", poll=POLL)
    assert run_cli("poll", "--once", "--json", "--config", str(reference), cwd=tmp_path).returncode == 0
    expected = counts(reference, tmp_path)

    crash_db = tmp_path / "crash.db"
    config = write_config(feeds=feeds, database=f"sqlite:///{crash_db}", poll=POLL)
    killer = random.Random(11)
    for _ in range(4):
        process = start_service(config, tmp_path, quiet=True)
        time.sleep(killer.uniform(1.0, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    process = start_service(config, tmp_path)
    try:
        wait_for(lambda: crash_db.exists() and database_totals(crash_db)[0] >= 1000, 120, step=1.0)
        time.sleep(2.5)  # one more cycle: everything re-polled, nothing added
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    items, stories, integrity = database_totals(crash_db)
    assert (items, integrity) == (1000, "ok")
    assert stories == database_totals(reference_dir / "ref.db")[1] == 1000
    assert counts(config, tmp_path) == expected
