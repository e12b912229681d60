"""Escalation detectors over a daily count series.  Pure: values in, alerts out.

Daily conflict-news counts are small, overdispersed, weekly-seasonal and
full of zeros, the problem disease-outbreak surveillance solves, so the
method follows it (Farrington/Noufaily; Hoehle & Paul's NB CUSUM):

- **Baseline**: negative-binomial regression
  (``statsmodels.discrete.discrete_model.NegativeBinomial``, dispersion
  estimated) on a trailing window (up to ``window`` days) with day-of-week
  terms, a linear trend if it is significant (``trend_keep_p``, as in
  Farrington et al. 1996), and the day's total ingested volume as
  exposure, so a news-heavy day is not an escalation. The ``guard`` days
  before the scored day are left out, so a rise does not teach the baseline
  to expect itself. Past outbreaks are down-weighted: days far above the
  first fit are capped at its upper bound and the model is refitted. With
  fewer than ``min_history`` days the baseline falls back to a constant-mean
  NB fitted by moments, which works from the first week.
- **Spike**: the upper-tail probability of the day's count under the fitted
  predictive distribution (``get_distribution``), with a minimum count and
  a minimum excess, so a 0 -> 1 day is never an alarm.
- **Shift** (sustained rise): an NB likelihood-ratio CUSUM for a ``shift``-
  fold rise in the mean, reset after each alarm; its threshold is found by
  simulating the known in-control model (``nbstats.cusum_threshold``) so
  that it raises ``false_alarms_per_year`` alarms a year. Expected counts
  below ``cusum_floor`` a day are raised to it in the CUSUM: below one event
  a day a doubling takes weeks to tell from noise, so the shift detector
  there looks for rises to a couple of events a day, and the false-alarm
  budget goes where a doubling can be found within days.
- **Trend**: a one-sided test of a positive slope over the last
  ``trend_days`` days, with the baseline as offset.
- **Outage**: days whose volume is below ``outage_ratio`` of the trailing
  median volume are not scored (and reported as such).

The false-alarm budget (``spike_p``, ``false_alarms_per_year``,
``cusum_floor``) is set end to end by ``benchmarks/calibrate_detect.py``:
with an estimated baseline the CUSUM raises about 1.4 times its nominal
rate at 3 or more a day, so the nominal 0.8 a year and spike_p 1e-4 give
0.83-0.88 false alarms per series-year in all (after hygiene, averaged over
mean counts of 0.3-30 a day; calibration and benchmark seeds), and x2
shifts at 3 a day are found after a median of 5-6 days (4 at 10 a day).

Severity comes from the p-value; ``hygiene`` adds hysteresis, a cooldown and
false-discovery control across series.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from monitor.nbstats import bucket, cusum_threshold, nb_llr, nb_ppf, nb_sf, run_cusum, sum_pvalue

SEVERITIES = ((1e-4, "high"), (1e-3, "medium"), (1.0, "low"))


@dataclass(frozen=True)
class DetectParams:
    window: int = 365
    guard: int = 2
    min_history: int = 56
    min_days: int = 7
    spike_p: float = 0.0001
    min_count: int = 3
    min_excess: float = 2.0
    shift: float = 2.0
    cusum_floor: float = 1.0  # expected counts below this per step are raised to it in the CUSUM
    false_alarms_per_year: float = 0.8  # nominal, for the known-baseline CUSUM; see calibrate_detect.py
    trend_keep_p: float = 0.05  # the baseline keeps its linear trend term only if significant at this level
    trend_days: int = 28
    trend_p: float = 0.001
    trend_min_total: int = 10
    outage_ratio: float = 0.3
    period: int = 1  # days per step: 1 for daily series, 7 for weekly
    seasonal: bool = True


@dataclass(frozen=True)
class Series:
    """A count series: one value per step, optional total volume per step."""

    dates: tuple[date, ...]
    counts: tuple[int, ...]
    volume: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.dates) != len(self.counts) or (self.volume is not None and len(self.volume) != len(self.counts)):
            raise ValueError("dates, counts and volume differ in length")


@dataclass(frozen=True)
class Alert:
    date: date
    kind: str  # "spike" | "shift" | "trend"
    observed: float
    expected: float
    upper: float
    p_value: float
    severity: str
    theatre: str | None = None
    label: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "theatre": self.theatre,
            "label": self.label,
            "date": self.date.isoformat(),
            "kind": self.kind,
            "observed": self.observed,
            "expected": round(self.expected, 3),
            "upper": round(self.upper, 3),
            "p_value": float(f"{self.p_value:.3g}"),
            "severity": self.severity,
        }


@dataclass(frozen=True)
class Baseline:
    """Expected counts for the scored steps, with their NB dispersion (variance = mu + alpha mu^2)."""

    mean: np.ndarray
    alpha: float
    fallback: bool


@dataclass(frozen=True)
class Result:
    alerts: list[Alert]
    expected: dict[date, float] = field(default_factory=dict)
    upper: dict[date, float] = field(default_factory=dict)
    unscored: list[date] = field(default_factory=list)


def severity(p_value: float) -> str:
    return next(name for limit, name in SEVERITIES if p_value < limit or limit == 1.0)


def _design(steps: np.ndarray, seasonal: bool, period: int, trend: bool = True) -> np.ndarray:
    columns = [np.ones(len(steps))] + ([steps / 365.0] if trend else [])
    if seasonal and period == 1:
        dow = steps % 7
        columns += [(dow == k).astype(float) for k in range(1, 7)]
    return np.column_stack(columns)


def _moment_fit(counts: np.ndarray, exposure: np.ndarray) -> tuple[float, float]:
    """Rate per unit exposure and NB dispersion by moments (the short-history fallback)."""
    rate = max(counts.sum() / max(exposure.sum(), 1e-9), 1e-3 / max(exposure.mean(), 1e-9))
    mean = rate * exposure
    excess = float(np.mean((counts - mean) ** 2 - mean))
    alpha = max(excess / max(float(np.mean(mean**2)), 1e-9), 0.0)
    return rate, min(alpha, 10.0)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the warnings statsmodels and numpy raise on degenerate fits: one with non-finite estimates falls
    back to the moment baseline, one that stops short of convergence with finite estimates is used.

    statsmodels puts "always" filters for its own warnings in front of the list when first imported; imported
    first inside this block, they would override the "ignore" (a fresh process printed the first fit's
    warnings), so it is imported before the filter goes on."""
    import statsmodels.tools.sm_exceptions  # noqa: F401  (its import-time filters, before ours)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _fallback(counts: np.ndarray, exposure: np.ndarray, target_exposure: np.ndarray) -> Baseline:
    """The constant-rate NB baseline by moments, for short histories and failed fits."""
    rate, alpha = _moment_fit(counts, exposure)
    return Baseline(np.maximum(rate * target_exposure, 1e-3), alpha, True)


def _nb_fit(counts: np.ndarray, design: np.ndarray, exposure: np.ndarray) -> Any:
    from statsmodels.discrete.discrete_model import NegativeBinomial

    result = NegativeBinomial(counts, design, exposure=exposure).fit(disp=0, maxiter=200)  # under quiet()
    if not np.all(np.isfinite(result.params)):
        raise ValueError("NB fit did not converge")
    return result


def fit_baseline(
    counts: np.ndarray,
    exposure: np.ndarray,
    steps: np.ndarray,
    target_steps: np.ndarray,
    target_exposure: np.ndarray,
    params: DetectParams,
) -> Baseline:
    """Fit on the history (counts at ``steps``) and predict the ``target_steps``."""
    if len(counts) < params.min_history or counts.sum() < 5:
        return _fallback(counts, exposure, target_exposure)
    design = _design(steps, params.seasonal, params.period)
    with quiet():  # only here: a short history above falls back without loading statsmodels
        try:
            first = _nb_fit(counts, design, exposure)
            trend = _trend_significant(first, params.trend_keep_p)
            if not trend:
                design = _design(steps, params.seasonal, params.period, trend=False)
                first = _nb_fit(counts, design, exposure)
            capped = _cap_outbreaks(counts, first, design, exposure)
            result = _nb_fit(capped, design, exposure) if not np.array_equal(capped, counts) else first
        except (ValueError, np.linalg.LinAlgError):
            return _fallback(counts, exposure, target_exposure)
        target_design = _design(target_steps, params.seasonal, params.period, trend)
        mean = np.asarray(result.predict(target_design, exposure=target_exposure))
    alpha = float(np.clip(result.params[-1], 0.0, 10.0))
    return Baseline(np.maximum(mean, 1e-3), alpha, False)


def _trend_significant(fitted: Any, level: float) -> bool:
    """Keep the linear trend only if its Wald p-value is below ``level`` (Farrington et al. 1996).

    An unneeded trend is extrapolated past the fitting window and makes the baseline wander from one
    refit to the next. On trend-free simulated series (calibrate_detect.py) dropping it cut the scatter
    of the baseline around the truth by about an eighth and the false alarms of all detectors by 13%.
    """
    p_value = float(np.asarray(fitted.pvalues)[1])
    return not math.isfinite(p_value) or p_value < level


def _cap_outbreaks(counts: np.ndarray, fitted: Any, design: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Past outbreaks down-weighted: counts beyond the 99.5% bound of the first fit are capped there."""
    mean = np.asarray(fitted.predict(design, exposure=exposure))
    alpha = float(np.clip(fitted.params[-1], 1e-6, 10.0))  # as the baseline's; a diverged fit can give 1e8
    bound = np.array([nb_ppf(0.995, m, alpha) for m in mean])
    return np.minimum(counts, bound)


def _exposure(series: Series) -> np.ndarray:
    if series.volume is None:
        return np.ones(len(series.counts))
    volume = np.asarray(series.volume, dtype=float)
    positive = volume[volume > 0]
    return np.where(volume > 0, volume, positive.mean() if len(positive) else 1.0) / (
        positive.mean() if len(positive) else 1.0
    )


def outage_days(series: Series, params: DetectParams) -> set[int]:
    """Indices of steps whose volume is far below the trailing median (feed outages)."""
    if series.volume is None:
        return set()
    volume = np.asarray(series.volume, dtype=float)
    out = set()
    for i in range(len(volume)):
        history = volume[max(0, i - 28) : i]
        if len(history) >= 7 and volume[i] < params.outage_ratio * float(np.median(history)):
            out.add(i)
    return out


def _scored_indices(series: Series, params: DetectParams, since: date | None) -> list[int]:
    first = params.min_days + params.guard
    return [i for i, d in enumerate(series.dates) if i >= first and (since is None or d >= since)]


def _baselines(
    series: Series, indices: list[int], skip: set[int], params: DetectParams, refit: int
) -> dict[int, tuple[float, float]]:
    """Expected value and dispersion for each scored index, refitting every ``refit`` steps."""
    counts = np.asarray(series.counts, dtype=float)
    exposure = _exposure(series)
    out: dict[int, tuple[float, float]] = {}
    for block_start in range(0, len(indices), refit):
        block = indices[block_start : block_start + refit]
        end = block[0] - params.guard
        history = [j for j in range(max(0, end - params.window // params.period), end) if j not in skip]
        h = np.array(history, dtype=int)
        base = fit_baseline(
            counts[h],
            exposure[h],
            h.astype(float) * params.period,
            np.array(block, float) * params.period,
            exposure[np.array(block)],
            params,
        )
        for i, mean in zip(block, base.mean):
            out[i] = (float(mean), base.alpha)
    return out


def _spikes(series: Series, fitted: dict[int, tuple[float, float]], params: DetectParams) -> list[Alert]:
    alerts = []
    for i, (mean, alpha) in fitted.items():
        observed = series.counts[i]
        if observed < params.min_count or observed - mean < params.min_excess:
            continue
        p = nb_sf(observed, mean, alpha)
        if p < params.spike_p:
            upper = nb_ppf(1 - params.spike_p, mean, alpha)
            alerts.append(Alert(series.dates[i], "spike", observed, mean, upper, p, severity(p)))
    return alerts


def _shifts(series: Series, fitted: dict[int, tuple[float, float]], params: DetectParams) -> list[Alert]:
    indices = sorted(fitted)
    if not indices:
        return []
    x = np.array([series.counts[i] for i in indices], dtype=float)
    expected = np.array([fitted[i][0] for i in indices])
    mean = np.maximum(expected, params.cusum_floor)
    alpha = float(np.median([fitted[i][1] for i in indices]))
    threshold = cusum_threshold(
        bucket(float(np.median(mean))),
        bucket(alpha) if alpha > 1e-3 else 0.0,
        params.shift,
        params.false_alarms_per_year,
        365 // params.period,
    )
    alerts = []
    for start, alarm in run_cusum(nb_llr(x, mean, alpha, params.shift), threshold):
        observed = float(x[start : alarm + 1].sum())
        if observed < params.min_count:
            continue
        p, total, upper = sum_pvalue(observed, expected[start : alarm + 1], alpha)  # against the unfloored baseline
        alerts.append(Alert(series.dates[indices[alarm]], "shift", observed, total, upper, p, severity(p)))
    return alerts


def trend_test(counts: np.ndarray, expected: np.ndarray, alpha: float) -> tuple[float, float]:
    """Slope of log(count/expected) over time and its one-sided p-value (NB GLM, baseline as offset)."""
    from scipy import stats

    with quiet():
        import statsmodels.api as sm

        design = sm.add_constant(np.arange(len(counts), dtype=float) / 7.0)
        family = sm.families.NegativeBinomial(alpha=max(alpha, 1e-6))
        result = sm.GLM(counts, design, family=family, offset=np.log(np.maximum(expected, 1e-6))).fit()
    slope, se = float(result.params[1]), float(result.bse[1])
    if not math.isfinite(se) or se <= 0:
        return slope, 1.0
    return slope, float(stats.norm.sf(slope / se))


def _trend(series: Series, fitted: dict[int, tuple[float, float]], params: DetectParams) -> list[Alert]:
    steps = max(params.trend_days // params.period, 4)
    indices = sorted(fitted)[-steps:]
    if len(indices) < steps:
        return []
    x = np.array([series.counts[i] for i in indices], dtype=float)
    mean = np.array([fitted[i][0] for i in indices])
    if x.sum() < params.trend_min_total:
        return []
    slope, p = trend_test(x, mean, float(np.median([fitted[i][1] for i in indices])))
    if slope <= 0 or p >= params.trend_p or x[-len(x) // 2 :].sum() <= mean[-len(x) // 2 :].sum():
        return []
    return [
        Alert(series.dates[indices[-1]], "trend", float(x.sum()), float(mean.sum()), float(mean.sum()), p, severity(p))
    ]


def detect(series: Series, params: DetectParams = DetectParams(), since: date | None = None, refit: int = 7) -> Result:
    """Score the steps from ``since`` (default: all with enough history); alerts plus the fitted baseline."""
    skip = outage_days(series, params)
    indices = [i for i in _scored_indices(series, params, since) if i not in skip]
    fitted = _baselines(series, indices, skip, params, refit) if indices else {}
    alerts = _spikes(series, fitted, params) + _shifts(series, fitted, params) + _trend(series, fitted, params)
    expected = {series.dates[i]: mean for i, (mean, _) in fitted.items()}
    upper = {series.dates[i]: nb_ppf(1 - params.spike_p, mean, alpha) for i, (mean, alpha) in fitted.items()}
    unscored = [series.dates[i] for i in sorted(skip) if since is None or series.dates[i] >= since]
    return Result(sorted(alerts, key=lambda a: (a.date, a.kind)), expected, upper, unscored)
