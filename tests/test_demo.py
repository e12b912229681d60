"""``monitor demo`` end to end on the bundled offline feeds, through the real entry point."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import feedparser
from conftest import run_cli

FEEDS = Path(__file__).resolve().parents[1] / "seeds" / "feeds"


def test_demo_corpus_shape() -> None:
    files = sorted(FEEDS.glob("*.xml"))
    parsed = [feedparser.parse(f.read_bytes()) for f in files]
    assert len(files) >= 6
    assert {p.version for p in parsed} >= {"rss20", "atom10"}
    assert all(not p.bozo for p in parsed)
    days = [date(*e.published_parsed[:3]) for p in parsed for e in p.entries]
    assert len(days) >= 1500
    assert (max(days) - min(days)).days >= 12 * 7
    assert min(days) <= date(2023, 10, 7) and max(days) >= date(2024, 1, 30)


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_cli("demo", "--dir", str(out), cwd=tmp_path, env={"PYTHONHASHSEED": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr  # degenerate baseline fits stay quiet (detect.quiet)
    lines = result.stdout.splitlines()
    feed_lines = [line for line in lines if re.match(r"\s+[a-z-]+\s+ok\s+\d+ new", line)]
    assert len(feed_lines) == len(list(FEEDS.glob("*.xml")))
    stored = int(re.search(r"items stored: (\d+)", result.stdout).group(1))
    assert stored >= 1500
    assert (out / "demo.db").exists()
    # a fresh database each time, and the same numbers whatever the hash seed (set iteration order)
    again = run_cli("demo", "--dir", str(out), cwd=tmp_path, env={"PYTHONHASHSEED": "22"}, timeout=600)
    assert f"items stored: {stored}" in again.stdout
    numbers = [line for line in lines if re.match(r"(items|\d{4}-\d\d-\d\d) ", line)]
    assert len(numbers) >= 14 and numbers == [
        line for line in again.stdout.splitlines() if re.match(r"(items|\d{4}-\d\d-\d\d) ", line)
    ]
