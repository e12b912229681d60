"""Negative-binomial arithmetic for the detectors: tail probabilities and quantiles, the likelihood
ratio of a shifted mean, the CUSUM and its simulated threshold.  Pure.

Counts are NB with mean mu and dispersion alpha (variance mu + alpha mu^2); alpha ~ 0 is Poisson.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

SIM_YEARS = 400  # simulated in-control years behind each CUSUM threshold


MAX_MEAN = 1e9  # no daily count comes near: a larger mean, or dispersion, is a fit that failed to converge
MAX_ALPHA = 100.0


def nb_sf(observed: float, mean: float, alpha: float) -> float:
    """P(X >= observed) for X ~ NB(mean, alpha); Poisson when alpha is ~0."""
    from scipy import stats

    if observed <= 0:
        return 1.0
    if alpha < 1e-6:
        return float(stats.poisson.sf(observed - 1, mean))
    n = 1.0 / alpha
    return float(stats.nbinom.sf(observed - 1, n, n / (n + mean)))


def nb_ppf(q: float, mean: float, alpha: float) -> float:
    """The ``q`` quantile; infinite for a mean or dispersion no count can be judged against (scipy's
    search would run for minutes on them: a baseline fit that failed to converge gives such values)."""
    from scipy import stats

    if not (math.isfinite(mean) and math.isfinite(alpha)) or mean > MAX_MEAN or alpha > MAX_ALPHA:
        return math.inf
    if alpha < 1e-6:
        return float(stats.poisson.ppf(q, mean))
    n = 1.0 / alpha
    return float(stats.nbinom.ppf(q, n, n / (n + mean)))


def nb_llr(x: np.ndarray, mean: np.ndarray, alpha: float, shift: float) -> np.ndarray:
    """Log-likelihood ratio of mean*shift against mean for NB counts (Poisson as alpha -> 0)."""
    if alpha < 1e-6:
        return x * math.log(shift) - (shift - 1.0) * mean
    inv = 1.0 / alpha
    return x * math.log(shift) - (x + inv) * np.log((1.0 + alpha * shift * mean) / (1.0 + alpha * mean))


def run_cusum(llr: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(start, alarm) index pairs of a CUSUM on the given LLR increments, reset after each alarm."""
    alarms, total, start = [], 0.0, 0
    for i, step in enumerate(llr):
        if total <= 0:
            start = i
        total = max(0.0, total + float(step))
        if total > threshold:
            alarms.append((start, i))
            total = 0.0
    return alarms


def cusum_alarm_counts(llr: np.ndarray, threshold: float) -> np.ndarray:
    """Alarms on each row of ``llr`` (independent paths) of a CUSUM started at 0 and reset after each alarm."""
    total = np.zeros(llr.shape[0])
    alarms = np.zeros(llr.shape[0], dtype=int)
    for column in llr.T:
        total = np.maximum(total + column, 0.0)
        hit = total > threshold
        alarms += hit
        total[hit] = 0.0
    return alarms


@lru_cache(maxsize=4096)
def cusum_threshold(mean: float, alpha: float, shift: float, alarms_per_year: float, steps_per_year: int) -> float:
    """The CUSUM threshold giving ``alarms_per_year`` false alarms in control, by simulation (seeded).

    ``SIM_YEARS`` independent in-control years of NB(mean, alpha) counts, each scored by a CUSUM started at
    0 (as at the start of scoring and after every alarm); the threshold is bisected until the mean number
    of alarms per simulated year matches. With 400 years the alarm rate at 0.35-1 a year is estimated to
    within about 5-8% (Poisson error on 140-400 alarms), well inside the effect of baseline estimation.
    """
    rng = np.random.default_rng(20231017)
    shape = (SIM_YEARS, steps_per_year)
    if alpha < 1e-6:
        sims = rng.poisson(mean, size=shape)
    else:
        sims = rng.negative_binomial(1.0 / alpha, 1.0 / (1.0 + alpha * mean), size=shape)
    llr = nb_llr(sims.astype(float), np.full(shape, mean), alpha, shift)
    low, high = 0.5, 40.0
    for _ in range(18):
        middle = (low + high) / 2
        if cusum_alarm_counts(llr, middle).mean() > alarms_per_year:
            low = middle
        else:
            high = middle
    return high


def bucket(value: float) -> float:
    """Round a parameter so threshold simulations are shared between similar series."""
    return float(f"{max(value, 1e-3):.1g}")


def sum_pvalue(observed: float, means: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """p-value, expectation and 99.9% bound of a sum of NB counts (moment-matched NB)."""
    total = float(means.sum())
    alpha_sum = alpha * float((means**2).sum()) / max(total**2, 1e-9)
    return nb_sf(observed, total, alpha_sum), total, nb_ppf(0.999, total, alpha_sum)
