"""Detector benchmark: false alarms, probability of detection and delay on simulated NB series, against
EARS C2 and a Poisson GLM at matched false-alarm rates; the real outbreak-labelled weekly series; speed.

Simulation (Noufaily-style): daily NB counts with day-of-week effects, means 0.3 to 30 a day, two
dispersions, three years each (the first year is history only). Injections in the third year:
one-day spikes, outbreaks of k standard deviations spread over several days, level shifts of x1.5,
x2, x3 lasting 14 and 28 days, and four-week ramps to x2.

Prints tables. Run: .venv/bin/python benchmarks/bench_detect.py [--reps 100] [--workers 2]
[--only shift-x2/28,outbreak-k5] (injection kinds; the clean series always run).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from monitor.detect import DetectParams, Series, detect
from monitor.hygiene import apply_hygiene

START = date(2021, 1, 4)
DAYS = 3 * 365
SCORED_FROM = 365 + 182  # the last 1.5 years are scored; injections fall in the last year
MEANS = (0.3, 1.0, 3.0, 10.0, 30.0)
ALPHAS = (0.1, 0.5)
REFIT = 28  # refit the baseline every four weeks in the benchmark (the service refits weekly)


@dataclass(frozen=True)
class Case:
    name: str
    mean: float
    alpha: float
    seed: int


def simulate(mean: float, alpha: float, seed: int, shape: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS)
    mu = mean * np.exp(0.25 * np.isin(t % 7, [0, 1, 2]) - 0.3 * np.isin(t % 7, [5, 6]))
    if shape is not None:
        mu = mu * shape
    return rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))


def injection(kind: str, mean: float, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, int, int, str]:
    """(multiplier shape, start, end) of one injection in the last year, plus its label."""
    shape = np.ones(DAYS)
    start = int(rng.integers(2 * 365 + 30, 3 * 365 - 60))
    sd = math.sqrt(mean + alpha * mean**2)
    if kind.startswith("spike"):
        k = float(kind.rsplit("-k", 1)[1])
        shape[start] = 1 + k * sd / mean
        return shape, start, start, kind
    if kind.startswith("outbreak"):
        k = float(kind.rsplit("-k", 1)[1])
        days = 5
        weights = np.diff(np.array([0.0, *[1 - math.exp(-(i + 1) / 1.5) for i in range(days)]]))
        weights /= weights.sum()
        shape[start : start + days] += k * sd * days * weights / mean / 2
        return shape, start, start + days - 1, kind
    if kind.startswith("shift"):
        factor, length = float(kind.split("x")[1].split("/")[0]), int(kind.split("/")[1])
        shape[start : start + length] = factor
        return shape, start, start + length - 1, kind
    shape[start : start + 28] = np.linspace(1, 2, 28)  # ramp
    return shape, start, start + 27, kind


def series(counts: np.ndarray) -> Series:
    return Series(tuple(START + timedelta(days=i) for i in range(len(counts))), tuple(int(c) for c in counts))


def ours(counts: np.ndarray, since: int) -> list[int]:
    result = detect(series(counts), DetectParams(), since=START + timedelta(days=since), refit=REFIT)
    return sorted({(a.date - START).days for a in apply_hygiene(result.alerts)})


def ears_c2(counts: np.ndarray, since: int) -> np.ndarray:
    """EARS C2 statistic per day: (x - mean) / sd of days t-9..t-3."""
    stats = np.full(len(counts), -np.inf)
    for t in range(max(since, 9), len(counts)):
        window = counts[t - 9 : t - 2]
        stats[t] = (counts[t] - window.mean()) / max(window.std(ddof=1), 0.5)
    return stats


def poisson_glm(counts: np.ndarray, since: int) -> np.ndarray:
    """-log10 upper-tail p of a Poisson GLM (trend + day of week, trailing year, refit every four weeks)."""
    import statsmodels.api as sm
    from scipy import stats

    out = np.full(len(counts), -np.inf)
    t_all = np.arange(len(counts))
    design = np.column_stack([np.ones(len(counts)), t_all / 365] + [(t_all % 7 == k) * 1.0 for k in range(1, 7)])
    for block in range(since, len(counts), REFIT):
        history = slice(max(0, block - 2 - 365), block - 2)
        fit = sm.GLM(counts[history], design[history], family=sm.families.Poisson()).fit()
        span = slice(block, min(block + REFIT, len(counts)))
        mu = fit.predict(design[span])
        out[span] = -np.log10(np.maximum(stats.poisson.sf(counts[span] - 1, mu), 1e-300))
    return out


def clean_run(case: Case) -> tuple[Case, list[int], np.ndarray, np.ndarray]:
    counts = simulate(case.mean, case.alpha, case.seed)
    return case, ours(counts, SCORED_FROM), ears_c2(counts, SCORED_FROM), poisson_glm(counts, SCORED_FROM)


def injected_run(args: tuple[Case, str]) -> tuple[Case, str, int, int, list[int], np.ndarray, np.ndarray]:
    case, kind = args
    rng = np.random.default_rng(case.seed + 99)
    shape, start, end, _ = injection(kind, case.mean, case.alpha, rng)
    counts = simulate(case.mean, case.alpha, case.seed, shape)
    since = start - 60
    return (case, kind, start, end, ours(counts, since), ears_c2(counts, since), poisson_glm(counts, since))


def first_alarm(days: list[int] | np.ndarray, start: int, end: int) -> int | None:
    hits = [d for d in days if start <= d <= end + 7]
    return min(hits) - start if hits else None


def threshold_for(stats: list[np.ndarray], alarms_per_year: float) -> float:
    """The threshold giving a baseline the same false alarms per series-year on clean series (by quantile)."""
    values = np.concatenate([s[np.isfinite(s)] for s in stats])
    years = sum(np.isfinite(s).sum() for s in stats) / 365
    wanted = max(round(alarms_per_year * years), 1)
    return float(np.sort(values)[-wanted]) if wanted < len(values) else float(values.min())


def weekly_outbreaks(path: Path) -> tuple[int, int, int, float]:
    """Real RKI series (weekly mode): outbreaks detected, outbreaks, false alarm weeks, series-years."""
    rows: dict[str, list[tuple[int, int, int]]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["series"], []).append((int(row["week"]), int(row["count"]), int(row["outbreak"])))
    detected = outbreaks = false = 0
    years = 0.0
    params = DetectParams(period=7, seasonal=False, min_history=52, min_days=8, window=365 * 5)
    for values in rows.values():
        values.sort()
        counts = tuple(c for _, c, _ in values)
        flags = [o for _, _, o in values]
        dates = tuple(START + timedelta(weeks=i) for i in range(len(counts)))
        since = dates[52]
        alerts = apply_hygiene(detect(Series(dates, counts), params, since=since, refit=4).alerts, 0, 14)
        alarm_weeks = {(a.date - START).days // 7 for a in alerts}
        episodes = _episodes(flags, 52)
        outbreaks += len(episodes)
        detected += sum(1 for s, e in episodes if any(s <= w <= e for w in alarm_weeks))
        false += sum(1 for w in alarm_weeks if not flags[w])
        years += (len(counts) - 52) / 52
    return detected, outbreaks, false, years


def _episodes(flags: list[int], first: int) -> list[tuple[int, int]]:
    found, start = [], None
    for i, flag in enumerate(flags):
        if i < first:
            continue
        if flag and start is None:
            start = i
        if not flag and start is not None:
            found.append((start, i - 1))
            start = None
    if start is not None:
        found.append((start, len(flags) - 1))
    return found


def speed(n_series: int = 200) -> float:
    """Seconds to score the last four weeks of n three-year series, as the service does after a poll."""
    started = time.perf_counter()
    for i in range(n_series):
        counts = simulate(MEANS[i % len(MEANS)], ALPHAS[i % 2], 10_000 + i)
        detect(series(counts), DetectParams(), since=START + timedelta(days=DAYS - 28), refit=28)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated injection kinds to run (default: all)")
    args = parser.parse_args()
    cases = [
        Case(f"mu{m}-a{a}", m, a, 1000 * i + r)
        for i, (m, a) in enumerate((m, a) for m in MEANS for a in ALPHAS)
        for r in range(args.reps)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        clean = list(pool.map(clean_run, cases, chunksize=4))
        scored_years = (DAYS - SCORED_FROM) / 365
        print(f"clean series: {len(cases)} x {scored_years:.1f} scored years")
        print(f"{'mean':>6}{'alpha':>7}{'ours FA/yr':>12}")
        fa_ours = {}
        for m in MEANS:
            for a in ALPHAS:
                runs = [c for c in clean if c[0].mean == m and c[0].alpha == a]
                fa_ours[(m, a)] = sum(len(r[1]) for r in runs) / (len(runs) * scored_years)
                print(f"{m:>6}{a:>7}{fa_ours[(m, a)]:>12.2f}")
        overall = sum(fa_ours.values()) / len(fa_ours)
        ears_h = threshold_for([c[2][SCORED_FROM:] for c in clean], overall)
        glm_h = threshold_for([c[3][SCORED_FROM:] for c in clean], overall)
        print(
            f"overall false alarms per series-year: {overall:.2f}; baselines matched to it "
            f"(EARS C2 threshold {ears_h:.2f}, Poisson GLM -log10 p threshold {glm_h:.2f})"
        )
        kinds = [
            "spike-k5",
            "outbreak-k3",
            "outbreak-k5",
            "shift-x1.5/14",
            "shift-x1.5/28",
            "shift-x2/14",
            "shift-x2/28",
            "shift-x3/14",
            "shift-x3/28",
            "ramp",
        ]
        kinds = [k for k in kinds if not args.only or k in args.only.split(",")]
        jobs = [(c, k) for c in cases[:: max(1, args.reps // 50)] if c.mean >= 1.0 for k in kinds]
        results = list(pool.map(injected_run, jobs, chunksize=4))
    print(f"\ninjections ({len(results)} runs, means >= 1; POD = alarm from start to 7 days after the end)")
    print(f"{'injection':<15}{'mean':>6}{'POD ours':>10}{'delay':>7}{'POD EARS C2':>13}{'POD Pois GLM':>14}")
    for kind in kinds:
        for m in (1.0, 3.0, 10.0, 30.0):
            runs = [r for r in results if r[1] == kind and r[0].mean == m]
            if not runs:
                continue
            delays = [first_alarm(r[4], r[2], r[3]) for r in runs]
            found = [d for d in delays if d is not None]
            ears = sum(1 for r in runs if first_alarm(np.where(r[5] > ears_h)[0], r[2], r[3]) is not None)
            glm = sum(1 for r in runs if first_alarm(np.where(r[6] > glm_h)[0], r[2], r[3]) is not None)
            median = f"{np.median(found):.0f}" if found else "-"
            print(
                f"{kind:<15}{m:>6}{len(found) / len(runs):>10.2f}{median:>7}{ears / len(runs):>13.2f}"
                f"{glm / len(runs):>14.2f}"
            )
    path = Path(__file__).resolve().parents[2] / "shared" / "eval" / "outbreaks" / "rki_weekly_outbreaks.csv"
    if path.exists():
        detected, outbreaks, false, years = weekly_outbreaks(path)
        print(
            f"\nreal weekly outbreak series (weekly mode): detected {detected}/{outbreaks} outbreaks, "
            f"{false} false alarm weeks in {years:.1f} series-years ({false / years:.2f} per series-year)"
        )
    print(f"\nspeed (50 theatres x 4 labels): 200 three-year daily series, last 4 weeks scored: {speed():.1f} s")


if __name__ == "__main__":
    main()
