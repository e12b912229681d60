"""The weekly report job: gather a week's data from the store and the detectors, then render it.

``report.py`` draws from plain values only; this module is where those
values come from (stories, alerts, chains, tallies, feed health, the model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from monitor import __version__, series
from monitor.config import Settings, data_path
from monitor.detect import Alert
from monitor.hygiene import benjamini_hochberg, escalation_index
from monitor.report import render
from monitor.report_data import LABELS, AlertLine, ChainLine, FeedLine, ReportData, StoryLine, TheatreData
from monitor.service import SeriesDetection, detect_now

WINDOW_DAYS = 90
SCORED_DAYS = 180  # scored before the window too, so CUSUM evidence and hygiene carry into it


def last_complete_week(now: datetime, zone: ZoneInfo) -> tuple[int, int]:
    """The ISO (year, week) of the last full week before ``now``."""
    today = now.astimezone(zone).date()
    year, week, _ = (today - timedelta(days=today.weekday() + 1)).isocalendar()
    return year, week


def parse_week(text: str) -> tuple[int, int]:
    """``2024-W05`` -> (2024, 5); raises ValueError naming the problem."""
    try:
        year, week = text.upper().split("-W")
        date.fromisocalendar(int(year), int(week), 1)
        return int(year), int(week)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO week like 2024-W05") from None


def _status(alerts: Sequence[Alert], has_data: bool) -> str:
    """escalating / de-escalating / steady, from the week's alerts (not a fixed percentage)."""
    if not has_data:
        return "no data"
    hostile = [a for a in alerts if a.label in ("attack", "retaliation")]
    calming = [a for a in alerts if a.label == "de-escalation"]
    if hostile:
        return "escalating"
    return "de-escalating" if calming else "steady"


def _window(detections: Sequence[SeriesDetection], days: list[date], label: str) -> tuple[int, ...]:
    found = next((d for d in detections if d.label == label), None)
    if found is None:
        return (0,) * len(days)
    values = dict(zip(found.series.dates, found.series.counts))
    return tuple(values.get(d, 0) for d in days)


def _volume(detections: Sequence[SeriesDetection], days: list[date]) -> list[float]:
    found = detections[0] if detections else None
    if found is None or found.series.volume is None:
        return [0.0] * len(days)
    values = dict(zip(found.series.dates, found.series.volume))
    return [values.get(d, 0.0) for d in days]


def control_discoveries(
    found: Sequence[SeriesDetection], start: date, end: date, q: float = 0.05
) -> list[SeriesDetection]:
    """Benjamini-Hochberg across every series' alerts of the week: a report that scores hundreds of
    series at once keeps only the alerts that survive false-discovery control at level ``q``."""
    week = [a for d in found for a in d.result.alerts if start <= a.date <= end]
    kept = {id(a) for a in benjamini_hochberg(week, q)}
    return [
        replace(
            d,
            result=replace(
                d.result, alerts=[a for a in d.result.alerts if not start <= a.date <= end or id(a) in kept]
            ),
        )
        for d in found
    ]


def _week_alerts(detections: Sequence[SeriesDetection], start: date, end: date) -> list[Alert]:
    return [a for d in detections for a in d.result.alerts if start <= a.date <= end and a.label != "other"]


def _theatre(
    session: Session,
    settings: Settings,
    theatre: str | None,
    name: str,
    detections: Sequence[SeriesDetection],
    start: date,
    end: date,
) -> TheatreData:
    zone = ZoneInfo(settings.timezone)
    days = [end - timedelta(days=i) for i in range(WINDOW_DAYS - 1, -1, -1)]
    stories = {label: _window(detections, days, label) for label in LABELS}
    week = {label: sum(v for d, v in zip(days, stories[label]) if start <= d <= end) for label in LABELS}
    before = {
        label: sum(v for d, v in zip(days, stories[label]) if start - timedelta(7) <= d < start) for label in LABELS
    }
    attack = next((d for d in detections if d.label == "attack"), None)
    alerts = _week_alerts(detections, start, end)
    recent = _week_alerts(detections, start - timedelta(days=21), start - timedelta(days=1))
    begin, finish = datetime.combine(start, time.min, zone), datetime.combine(end + timedelta(1), time.min, zone)
    return TheatreData(
        id=theatre,
        name=name,
        days=tuple(days),
        stories=stories,
        expected={d: v for d, v in (attack.result.expected.items() if attack else []) if d in set(days)},
        upper={d: v for d, v in (attack.result.upper.items() if attack else []) if d in set(days)},
        index=tuple(
            escalation_index(
                stories["attack"], stories["retaliation"], stories["de-escalation"], _volume(detections, days)
            )
        ),
        week_counts=week,
        last_week_counts=before,
        status=_status(alerts, any(sum(v) for v in stories.values())),
        alerts=tuple(_line(theatre, a) for a in alerts),
        recent=tuple(_line(theatre, a) for a in recent),
        tallies=tuple(
            (t.date.astimezone(zone).date(), t.number)
            for t in series.tallies(session, theatre)
            if days[0] <= t.date.astimezone(zone).date() <= end
        ),
        top={
            label: tuple(
                StoryLine(s.title, s.outlet, s.first_at.astimezone(zone).date(), s.confidence, s.link, s.mentions)
                for s in series.top_stories(session, theatre, begin, finish, label)
            )
            for label in LABELS[:3]
        },
        chains=tuple(
            ChainLine(c.retaliation_title, c.attack_title, c.lag_hours, c.retaliation_at.astimezone(zone).date())
            for c in series.chains(session, begin, finish, theatre)
        ),
    )


def _line(theatre: str | None, alert: Alert) -> AlertLine:
    return AlertLine(
        theatre, alert.label or "", alert.date, alert.kind, alert.observed, alert.expected, alert.upper, alert.p_value
    )


def model_summary(settings: Settings) -> str:
    """The classifier's version and held-out scores, from its model card."""
    card = data_path(settings.classifier.model_dir) / "CARD.md"
    if not card.exists():
        return "No model card found."
    lines = card.read_text(encoding="utf-8").splitlines()
    version = next((line.split("`")[1] for line in lines if line.startswith("- version:") and "`" in line), "?")
    held = next((line for line in lines if line.startswith("| held-out")), "")
    cells = [c.strip() for c in held.strip("|").split("|")]
    scores = f"held-out macro-F1 {cells[2]}, accuracy {cells[3]} on {cells[1]} items" if len(cells) > 3 else ""
    return f"Classifier {version}: {scores}. Full metrics in models/CARD.md."


def gather(
    settings: Settings, engine: Engine, now: datetime, year: int, week: int, theatres: Sequence[str] | None = None
) -> ReportData:
    start = date.fromisocalendar(year, week, 1)
    end = start + timedelta(days=6)
    chosen = [t for t in settings.theatres if theatres is None or t.id in theatres]
    scope: list[str | None] = [None, *(t.id for t in chosen)]
    found = control_discoveries(
        detect_now(settings, engine, now, scope, since=end - timedelta(days=SCORED_DAYS), until=end, refit=7),
        start,
        end,
    )
    zone = ZoneInfo(settings.timezone)
    names: dict[str | None, str] = {None: "All theatres", **{t.id: t.name for t in chosen}}
    with Session(engine) as session:
        data = [
            _theatre(session, settings, theatre, names[theatre], [d for d in found if d.theatre == theatre], start, end)
            for theatre in scope
        ]
        health = series.feed_health(
            session, datetime.combine(start, time.min, zone), datetime.combine(end + timedelta(1), time.min, zone)
        )
    feeds = tuple(FeedLine(h.feed, h.items, h.last_success, h.errors, h.last_error) for h in health)
    return ReportData(
        year,
        week,
        start,
        end,
        tuple(data),
        feeds,
        model_summary(settings),
        now.astimezone(UTC),
        settings.name,
        __version__,
    )


def write_report(
    settings: Settings,
    engine: Engine,
    now: datetime,
    week: tuple[int, int] | None = None,
    out_dir: Path | None = None,
    theatres: Sequence[str] | None = None,
) -> list[Path]:
    """Write the week's PDF and PNGs; return the paths, the PDF last."""
    year, number = week or last_complete_week(now, ZoneInfo(settings.timezone))
    data = gather(settings, engine, now, year, number, theatres)
    return render(data, out_dir or Path(settings.report.dir))
