"""Alarm hygiene over detector output, and the escalation index.  Pure.

- ``apply_hygiene``: one alert per episode and kind (hysteresis), then a cooldown.
- ``benjamini_hochberg``: false-discovery control across many series (the weekly report).
- ``escalation_index``: the per-day index the report draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from monitor.detect import Alert


def apply_hygiene(alerts: Sequence[Alert], hysteresis: int = 3, cooldown: int = 7) -> list[Alert]:
    """One alert per episode and kind: alerts within ``hysteresis`` days continue an open episode;
    after an episode closes, the same kind stays quiet for ``cooldown`` days."""
    kept: list[Alert] = []
    open_until: dict[str, date] = {}
    for alert in sorted(alerts, key=lambda a: (a.date, a.kind)):
        last = open_until.get(alert.kind)
        if last is not None and alert.date <= last:
            open_until[alert.kind] = alert.date + timedelta(days=hysteresis + cooldown)
            continue
        kept.append(alert)
        open_until[alert.kind] = alert.date + timedelta(days=hysteresis + cooldown)
    return kept


def benjamini_hochberg(alerts: Sequence[Alert], q: float = 0.05) -> list[Alert]:
    """The alerts that survive false-discovery-rate control at level ``q`` across all series."""
    ordered = sorted(alerts, key=lambda a: a.p_value)
    cutoff = 0
    for rank, alert in enumerate(ordered, start=1):
        if alert.p_value <= q * rank / len(ordered):
            cutoff = rank
    return ordered[:cutoff]


def escalation_index(
    attack: Sequence[float], retaliation: Sequence[float], de_escalation: Sequence[float], volume: Sequence[float]
) -> list[float]:
    """Per day: (attack + 1.5 x retaliation - de-escalation) stories per 100 items ingested that day.

    Retaliation weighs more because it marks an exchange (two acts) rather than one; de-escalation
    lowers the index. Normalising by volume keeps news-heavy days from looking like escalation.
    """
    return [
        100.0 * (a + 1.5 * r - d) / v if v > 0 else 0.0
        for a, r, d, v in zip(attack, retaliation, de_escalation, volume)
    ]


def with_series(alerts: Sequence[Alert], theatre: str | None, label: str | None) -> list[Alert]:
    return [replace(a, theatre=theatre, label=label) for a in alerts]
