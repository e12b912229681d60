"""``monitor run``: the scheduler wiring around the service jobs, and clean shutdown.

APScheduler 3's ``BlockingScheduler`` runs in the foreground (systemd
supervises it): a poll tick that takes due feeds; detection, which scores the
series when any process stored items since the last scoring, then delivers
alerts; alert delivery retries; the weekly report on the configured cron;
daily maintenance. With several processes on one database, each once-only
job runs where ``leader.exclusive`` grants it. Every job has ``max_instances=1``, ``coalesce=True`` and a
misfire grace time; a job that raises is logged and the scheduler goes on.
SIGTERM and SIGINT stop taking work and let the running job finish.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from monitor import leader, service
from monitor.classify import Classifier
from monitor.config import Settings

log = logging.getLogger("monitor")


def configure_logging(settings: Settings) -> None:
    """One event per line: key=value text or JSON, at the configured level."""
    fmt = (
        '{"time": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", "message": "%(message)s"}'
        if settings.log.format == "json"
        else "time=%(asctime)s level=%(levelname)s %(message)s"
    )
    logging.basicConfig(level=settings.log.level, format=fmt, force=True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" each tick while a long poll runs is expected
    # (ticks coalesce by design); job failures come from apscheduler.executors and still show.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@dataclass
class Runtime:
    """What the jobs of one running service share: the clock, the stop flag, the optional metrics."""

    clock: Callable[[], datetime] = service.utcnow
    stop: threading.Event = field(default_factory=threading.Event)
    metrics: Any = None
    name: str = field(default_factory=leader.process_name)  # "host:pid", recorded on claims and reports
    kit: Any = None  # the labelling and clustering toolkit, kept across ticks for its story cache

    def timed(self, job: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.job_seconds.labels(job=job).observe(seconds)


def poll_tick(settings: Settings, engine: Engine, classifier: Classifier, runtime: Runtime) -> int:
    """Poll the feeds due and free to take. Returns the number of new items (detection is its own job)."""
    if runtime.stop.is_set():
        return 0
    due = service.claim_due(settings, engine, runtime.clock(), runtime.name)
    return _poll(settings, engine, classifier, runtime, due) if due else 0


def _poll(settings: Settings, engine: Engine, classifier: Classifier, runtime: Runtime, due: list[Any]) -> int:
    from monitor.ingest import make_toolkit

    started = time.monotonic()
    runtime.kit = runtime.kit or make_toolkit(settings, classifier)
    outcomes = service.poll_feeds(
        settings, engine, classifier, runtime.clock(), feeds=due, stop=runtime.stop, kit=runtime.kit
    )
    new = sum(o.new for o in outcomes)
    errors = sum(1 for o in outcomes if o.status == "error")
    log.info("event=poll feeds=%d new=%d errors=%d seconds=%.2f", len(due), new, errors, time.monotonic() - started)
    runtime.timed("poll", time.monotonic() - started)
    if runtime.metrics is not None:
        runtime.metrics.record_poll(outcomes, sum(o.stories for o in outcomes))
    return new


def every(settings: Settings) -> int:
    """Seconds between two scorings: the poll tick, at least 10 s (scoring reads every stored count)."""
    return max(10, settings.poll.tick)


def detect_job(settings: Settings, engine: Engine, runtime: Runtime) -> bool:
    """Score the stored series when items arrived since the last scoring (by any process), then deliver
    new alerts. One process at a time; returns False when there was nothing new or another held it."""
    from sqlmodel import Session

    from monitor import store

    with leader.exclusive(engine, "detect") as mine:
        if not mine or runtime.stop.is_set():
            return False
        now = runtime.clock()
        with Session(engine) as session:
            newest, scored = store.newest_item_id(session), int(store.get_meta(session, "detected_item_id") or 0)
            last = store.get_meta(session, "detected_at")
        if newest <= scored or (last and now - datetime.fromisoformat(last) < timedelta(seconds=every(settings))):
            return False  # nothing new, or another process scored less than one detection interval ago
        started = time.monotonic()
        found = service.detect_now(settings, engine, now)
        with Session(engine) as session, session.begin():
            store.set_meta(session, "detected_item_id", str(newest))
            store.set_meta(session, "detected_at", now.isoformat())
        log.info("event=detect series=%d alerts=%d", len(found), sum(len(d.result.alerts) for d in found))
        runtime.timed("detect", time.monotonic() - started)
    deliver_alerts(settings, engine, runtime)
    return True


def report_job(settings: Settings, engine: Engine, runtime: Runtime) -> list[Path]:
    """The scheduled weekly report: written once per week, by whichever process gets there first."""
    from zoneinfo import ZoneInfo

    from sqlmodel import Session

    from monitor import store
    from monitor.weekly import last_complete_week, write_report

    now = runtime.clock()
    year, number = last_complete_week(now, ZoneInfo(settings.timezone))
    week = f"{year}-W{number:02d}"
    with leader.exclusive(engine, "report") as mine:
        with Session(engine) as session:
            done = store.report_made(session, week) if mine else None
        if not mine or done is not None:
            log.info("event=report_skipped week=%s by=%s", week, done.made_by if done else "another process")
            return []
        started = time.monotonic()
        paths = write_report(settings, engine, now, (year, number))
        with Session(engine) as session, session.begin():
            store.record_report(session, week, str(paths[-1]), runtime.name, runtime.clock())
    runtime.timed("report", time.monotonic() - started)
    log.info("event=report week=%s path=%s", week, paths[-1])
    return paths


def deliver_alerts(settings: Settings, engine: Engine, runtime: Runtime) -> int:
    """Its own job, so a slow or dead alert endpoint never delays a poll."""
    from monitor.alerts import deliver_pending

    with leader.exclusive(engine, "alerts") as mine:
        made = deliver_pending(settings, engine, runtime.clock()) if mine else 0
    if made:
        log.info("event=alerts_delivered count=%d", made)
        if runtime.metrics is not None:
            runtime.metrics.alerts.inc(made)
    return made


def maintenance(settings: Settings, engine: Engine, runtime: Runtime) -> None:
    """Retention of raw item text per config; SQLite: checkpoint the WAL and refresh planner statistics."""
    from sqlmodel import Session

    from monitor import store

    with leader.exclusive(engine, "maintenance") as mine:
        if not mine:
            return
        with Session(engine) as session, session.begin():
            blanked = store.forget_old_text(session, runtime.clock(), settings.storage.retention_days)
    if blanked:
        log.info("event=retention items_blanked=%d", blanked)
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            connection.execute(text("PRAGMA optimize"))
    log.info("event=maintenance")


def build_scheduler(settings: Settings, engine: Engine, classifier: Classifier, runtime: Runtime) -> Any:
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    defaults = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
    scheduler = BlockingScheduler(timezone=UTC, job_defaults=defaults)
    tick = IntervalTrigger(seconds=settings.poll.tick)
    scheduler.add_job(
        poll_tick,
        tick,
        args=(settings, engine, classifier, runtime),
        id="poll",
        name="poll due feeds",
        next_run_time=runtime.clock(),
    )
    scheduler.add_job(  # scores only when items arrived since the last scoring, so a backlog is scored once
        detect_job,
        IntervalTrigger(seconds=every(settings)),
        args=(settings, engine, runtime),
        id="detect",
        name="detect escalation",
    )
    weekly = CronTrigger.from_crontab(settings.report.schedule, timezone=settings.timezone)
    scheduler.add_job(report_job, weekly, args=(settings, engine, runtime), id="report", name="weekly report")
    scheduler.add_job(  # also right after each detection; this picks up retries and skipped turns
        deliver_alerts,
        IntervalTrigger(seconds=max(5, min(60, settings.poll.tick))),
        args=(settings, engine, runtime),
        id="alerts",
        name="deliver alerts",
    )
    scheduler.add_job(
        maintenance,
        CronTrigger(hour=3, minute=17, timezone=UTC),
        args=(settings, engine, runtime),
        id="maintenance",
        name="daily maintenance",
    )
    return scheduler


def run(settings: Settings, engine: Engine, classifier: Classifier, grace: float = 10.0) -> None:
    """Run until SIGTERM or SIGINT: stop taking work, let the running job finish or abandon it within
    ``grace`` seconds (every feed is stored in one transaction, so nothing half-written remains)."""
    runtime = Runtime()
    if settings.metrics.enabled:
        from monitor.metrics_endpoint import start

        runtime.metrics = start(settings.metrics.port)
    scheduler = build_scheduler(settings, engine, classifier, runtime)

    def stop(signum: int, _frame: Any) -> None:
        if not runtime.stop.is_set():
            runtime.stop.set()
            log.info("event=shutdown signal=%s", signal.Signals(signum).name)
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "event=start feeds=%d tick=%ds report=%r", len(settings.feeds), settings.poll.tick, settings.report.schedule
    )
    scheduler.start()
    _drain(grace)


def _drain(grace: float) -> None:
    """Wait up to ``grace`` seconds for job threads; then leave without them (exit code 0)."""
    deadline = time.monotonic() + grace
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    for thread in others:
        thread.join(max(0.0, deadline - time.monotonic()))
    abandoned = sum(1 for t in others if t.is_alive())
    log.info("event=stopped abandoned_threads=%d", abandoned)
    if abandoned:
        logging.shutdown()
        os._exit(0)
