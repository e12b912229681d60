"""``monitor run``: the scheduler wiring around the service jobs, and clean shutdown.

APScheduler 3's ``BlockingScheduler`` runs in the foreground (systemd
supervises it): a poll tick that takes due feeds and, when a tick stored new
items, runs detection; the weekly report on the configured cron; daily
maintenance. Every job has ``max_instances=1``, ``coalesce=True`` and a
misfire grace time; a job that raises is logged and the scheduler goes on.
SIGTERM and SIGINT stop taking work and let the running job finish.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from monitor import service
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
    logging.getLogger("httpx").setLevel(logging.WARNING)


def poll_tick(settings: Settings, engine: Engine, classifier: Classifier, clock: Callable[[], datetime]) -> int:
    """Poll the due feeds; run detection when new items arrived. Returns the number of new items."""
    now = clock()
    due = service.claim_due(settings, engine, now)
    if not due:
        return 0
    started = time.monotonic()
    outcomes = service.poll_feeds(settings, engine, classifier, now, feeds=due)
    new = sum(o.new for o in outcomes)
    errors = sum(1 for o in outcomes if o.status == "error")
    log.info("event=poll feeds=%d new=%d errors=%d seconds=%.2f", len(due), new, errors, time.monotonic() - started)
    if new:
        found = service.detect_now(settings, engine, clock())
        log.info("event=detect series=%d alerts=%d", len(found), sum(len(d.result.alerts) for d in found))
    return new


def report_job(settings: Settings, engine: Engine, clock: Callable[[], datetime]) -> list[Path]:
    from monitor.weekly import write_report

    paths = write_report(settings, engine, clock())
    log.info("event=report path=%s", paths[-1])
    return paths


def deliver_alerts(settings: Settings, engine: Engine, clock: Callable[[], datetime]) -> int:
    """Its own job, so a slow or dead alert endpoint never delays a poll."""
    from monitor.alerts import deliver_pending

    made = deliver_pending(settings, engine, clock())
    if made:
        log.info("event=alerts_delivered count=%d", made)
    return made


def maintenance(engine: Engine) -> None:
    """SQLite: checkpoint the WAL and let the planner refresh its statistics."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            connection.execute(text("PRAGMA optimize"))
    log.info("event=maintenance")


def build_scheduler(
    settings: Settings, engine: Engine, classifier: Classifier, clock: Callable[[], datetime] = service.utcnow
) -> Any:
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    defaults = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
    scheduler = BlockingScheduler(timezone=UTC, job_defaults=defaults)
    scheduler.add_job(
        poll_tick,
        IntervalTrigger(seconds=settings.poll.tick),
        args=(settings, engine, classifier, clock),
        id="poll",
        name="poll due feeds",
        next_run_time=clock(),
    )
    scheduler.add_job(
        report_job,
        CronTrigger.from_crontab(settings.report.schedule, timezone=settings.timezone),
        args=(settings, engine, clock),
        id="report",
        name="weekly report",
    )
    scheduler.add_job(
        maintenance,
        CronTrigger(hour=3, minute=17, timezone=UTC),
        args=(engine,),
        id="maintenance",
        name="daily maintenance",
    )
    return scheduler


def run(settings: Settings, engine: Engine, classifier: Classifier) -> None:
    """Run until SIGTERM or SIGINT; the running job is allowed to finish."""
    scheduler = build_scheduler(settings, engine, classifier)
    stopping = threading.Event()

    def stop(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("event=shutdown signal=%s", signal.Signals(signum).name)
            scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "event=start feeds=%d tick=%ds report=%r", len(settings.feeds), settings.poll.tick, settings.report.schedule
    )
    scheduler.start()
    log.info("event=stopped")
