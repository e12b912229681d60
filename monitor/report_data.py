"""The plain values a weekly report is drawn from, and the sentences it prints.  Pure.

``weekly.py`` fills these from the store and the detectors; ``report.py`` draws them.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from datetime import date, datetime

LABELS = ("attack", "retaliation", "de-escalation", "other")
NAMES = {"attack": "Attacks", "retaliation": "Retaliation", "de-escalation": "De-escalation", "other": "Other"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class StoryLine:
    title: str
    outlet: str
    day: date
    confidence: float
    link: str | None
    mentions: int


@dataclass(frozen=True)
class ChainLine:
    retaliation: str
    attack: str
    lag_hours: float
    day: date


@dataclass(frozen=True)
class AlertLine:
    theatre: str | None
    label: str
    day: date
    kind: str
    observed: float
    expected: float
    upper: float
    p_value: float


@dataclass(frozen=True)
class TheatreData:
    id: str | None
    name: str
    days: tuple[date, ...]  # the 90-day window
    stories: dict[str, tuple[int, ...]]  # per label, aligned with days
    expected: dict[date, float]  # the hostile (attack) baseline
    upper: dict[date, float]
    index: tuple[float, ...]  # escalation index per day
    week_counts: dict[str, int]
    last_week_counts: dict[str, int]
    status: str
    alerts: tuple[AlertLine, ...] = ()
    recent: tuple[AlertLine, ...] = ()  # alerts of the three weeks before
    tallies: tuple[tuple[date, int], ...] = ()
    top: dict[str, tuple[StoryLine, ...]] = field(default_factory=dict)
    chains: tuple[ChainLine, ...] = ()

    @property
    def active(self) -> bool:
        return any(self.week_counts.get(label, 0) for label in LABELS[:3]) or bool(self.alerts)


@dataclass(frozen=True)
class FeedLine:
    feed: str
    items: int
    last_success: datetime | None
    errors: int
    last_error: str


@dataclass(frozen=True)
class ReportData:
    year: int
    week: int
    start: date
    end: date
    theatres: tuple[TheatreData, ...]
    feeds: tuple[FeedLine, ...]
    model: str
    generated: datetime
    config_name: str
    version: str

    @property
    def tag(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def empty(self) -> bool:
        return not any(sum(t.week_counts.values()) for t in self.theatres)


def clean(text: str, width: int | None = None) -> str:
    """Control characters out, whitespace folded, cut on a word at ``width``."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return textwrap.shorten(text, width, placeholder="…") if width and len(text) > width else text


def alert_sentence(alert: AlertLine, theatre_name: str) -> str:
    """One plain sentence, e.g. "Attacks, Iraq-Syria: 9 stories on Tue 24 Oct against 1.6 expected ..."."""
    p = "p < 0.001" if alert.p_value < 0.001 else f"p = {alert.p_value:.3f}"
    what = {"spike": "stories on", "shift": "stories in a sustained rise to", "trend": "stories in a rising trend to"}
    day = alert.day.strftime("%a %d %b")
    return (
        f"{NAMES.get(alert.label, alert.label)}, {theatre_name}: {alert.observed:g} {what.get(alert.kind, 'on')} "
        f"{day} against {alert.expected:.1f} expected (bound {alert.upper:g}), {p}"
    )
