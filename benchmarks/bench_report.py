"""Report rendering time: 10 theatres over a year of daily data, PDF and PNGs.

Prints a table. Run: .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from monitor.report import render
from monitor.report_data import LABELS, AlertLine, ChainLine, ReportData, StoryLine, TheatreData


def theatre(number: int, end: date, rng: np.random.Generator) -> TheatreData:
    days = tuple(end - timedelta(days=89 - i) for i in range(90))  # a report draws the last 90 days of the year
    stories = {label: tuple(int(v) for v in rng.poisson(3.0, len(days))) for label in LABELS}
    top = {
        label: tuple(
            StoryLine(f"Story {i} about theatre {number}", "wire", end, 0.8, "https://example.org", 3) for i in range(4)
        )
        for label in LABELS[:3]
    }
    alerts = tuple(AlertLine(f"t{number}", "attack", end - timedelta(days=i), "spike", 9, 2, 6, 1e-4) for i in (1, 3))
    return TheatreData(
        f"t{number}",
        f"Theatre number {number}",
        days,
        stories,
        {d: 3.0 for d in days},
        {d: 8.0 for d in days},
        tuple(float(v) for v in rng.normal(0, 5, len(days))),
        {"attack": 20},
        {"attack": 15},
        "escalating",
        alerts,
        (),
        tuple((days[i], 10 + i) for i in range(0, 90, 10)),
        top,
        (ChainLine("Jets strike depots", "Drone hits base", 30.0, end),),
    )


def main() -> None:
    rng = np.random.default_rng(1)
    end = date(2024, 2, 4)
    data = ReportData(
        2024,
        5,
        end - timedelta(days=6),
        end,
        tuple(theatre(i, end, rng) for i in range(10)),
        (),
        "Classifier (benchmark)",
        datetime.now(UTC),
        "bench",
        "0.1.0",
    )
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        paths = render(data, Path(folder))
        seconds = time.perf_counter() - started
        size = paths[-1].stat().st_size / 1e6
    print(f"{'report':<40}{'seconds':>10}{'files':>7}{'PDF MB':>8}")
    print(f"{'10 theatres, 90-day pages, PDF + PNGs':<40}{seconds:>10.1f}{len(paths):>7}{size:>8.1f}")


if __name__ == "__main__":
    main()
