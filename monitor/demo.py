"""``monitor demo``: the whole pipeline on the bundled offline feeds.

The feed files under ``seeds/feeds/`` are served by a real HTTP server on
127.0.0.1, so the demo exercises fetch, parse, classify and store exactly as
a live deployment does, into a fresh SQLite database in the demo folder.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from monitor import schema, series, service
from monitor.classify import LABELS
from monitor.config import Settings, find_config, project_dir, read_yaml, settings_from_mapping
from monitor.errors import InputError
from monitor.schema import Item, Story
from monitor.training import load_or_train
from monitor.weekly import write_report

FEED_SUFFIXES = (".xml", ".rss", ".atom")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free loopback port; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def feed_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix in FEED_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise InputError(f"{folder}: no demo feed files (*.xml)")
    return files


def demo_settings(base: dict[str, Any], files: list[Path], base_url: str, out_dir: Path) -> Settings:
    """The user's (or the example) config, with the demo's feeds, database and report folder."""
    data = dict(base)
    data["name"] = "demo"
    data["feeds"] = [{"id": p.stem, "url": f"{base_url}/{p.name}"} for p in files]
    data["database"] = f"sqlite:///{(out_dir / 'demo.db').as_posix()}"
    data["report"] = {**(base.get("report") or {}), "dir": str(out_dir / "reports")}
    # one fetch at a time: feeds are then stored in config order, so every run numbers items and
    # groups stories alike (a live poll takes feeds as they arrive)
    data["poll"] = {**(base.get("poll") or {}), "max_concurrency": 1}
    return settings_from_mapping(data, "demo")


def _base_config(config_path: Path | None) -> dict[str, Any]:
    import os

    example = project_dir("config.yaml")
    path = find_config(config_path, os.environ) or (example if example.exists() else None)
    raw = read_yaml(path) if path else {}
    return dict(raw) if isinstance(raw, dict) else {}


def run_demo(out_dir: Path, config_path: Path | None, say: Callable[[str], None]) -> None:
    folder = project_dir("seeds") / "feeds"
    files = feed_files(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("demo.db*"):
        stale.unlink()
    with serve_folder(folder) as base_url:
        settings = demo_settings(_base_config(config_path), files, base_url, out_dir)
        say(f"demo: {len(files)} offline feeds served at {base_url}, database {out_dir / 'demo.db'}")
        engine = schema.make_engine(settings.database)
        now = service.utcnow()
        service.sync_config(settings, engine, now)
        classifier = load_or_train(settings, say)
        outcomes = service.poll_feeds(
            settings,
            engine,
            classifier,
            now,
            on_result=lambda o: say(
                f"  {o.feed_id:<20} {o.status:<12} {o.new:>5} new"
                + (f"  ({o.error_kind}: {o.message})" if o.error_kind else "")
            ),
        )
    failed = [o.feed_id for o in outcomes if o.status == "error"]
    if failed:
        raise InputError(f"demo feeds failed: {', '.join(failed)}")
    for line in summary_lines(settings, engine):
        say(line)
    week = data_week(engine, ZoneInfo(settings.timezone))
    say(f"writing the report for {week[0]}-W{week[1]:02d}, the last week of the demo data …")
    paths = write_report(settings, engine, now, week)
    for path in paths:
        say(str(path.resolve()))


def data_week(engine: Any, zone: ZoneInfo) -> tuple[int, int]:
    """The ISO week of the newest stored item."""
    with Session(engine) as session:
        newest = session.exec(select(func.max(Item.published_at))).one()
    if newest is None:
        raise InputError("the demo stored no items")
    year, week, _ = schema.as_utc(newest).astimezone(zone).isocalendar()
    return year, week


def summary_lines(settings: Settings, engine: Any) -> list[str]:
    """Totals, and the weekly global series: stories (mentions) per label."""
    with Session(engine) as session:
        total = series.count_items(session)
        totals = series.label_totals(session)
        points = series.count_series(session, [None], ZoneInfo(settings.timezone), by="week")
        stories = session.exec(select(func.count()).select_from(Story)).one()
    lines = [
        f"items stored: {total}, stories: {stories}",
        "items by label: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())),
    ]
    weeks: dict[str, dict[str, str]] = {}
    for p in points:
        weeks.setdefault(p.date.isoformat(), {})[p.label] = f"{p.stories} ({p.mentions})"
    lines.append("week of      " + "".join(f"{label:>16}" for label in LABELS))
    lines += [
        f"{week}  " + "".join(f"{cells.get(label, '0 (0)'):>16}" for label in LABELS)
        for week, cells in sorted(weeks.items())
    ]
    lines.append("(stories, with mentions in brackets)")
    return lines
