"""Decision offsets: per-label amounts added to the classifier's log-probabilities so that its decisions
follow the class balance of real news, chosen on a development set.  Pure numpy.

Training data is balanced by design while real feeds are mostly "other"; the offsets move the decision
boundaries without touching the learned weights.  One coordinate search on a development set of about
1,200 items overfits it (a change of one item moves an offset by a whole step), so the offsets are the
mean of searches on bootstrap resamples, and a model's offsets are judged by scoring halves of the
development set with offsets chosen on the other half.  ``benchmarks/bench_offsets.py`` compares the
methods on the development set alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from monitor.metrics import macro_f1_of_indices

GRID = np.arange(-3.0, 3.01, 0.25)
BAGS = 15
SPLITS = 6


def search(log_p: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Coordinate search over ``GRID``, three rounds, for the offsets with the best macro-F1."""
    n_labels = log_p.shape[1]
    best, best_score = np.zeros(n_labels), -1.0
    for _ in range(3):
        for j in range(n_labels):
            for value in GRID:
                trial = best.copy()
                trial[j] = value
                result = macro_f1_of_indices(target, np.argmax(log_p + trial, axis=1), n_labels)
                if result > best_score + 1e-9:
                    best, best_score = trial, result
    return best


def bagged(log_p: np.ndarray, target: np.ndarray, bags: int = BAGS, seed: int = 0) -> np.ndarray:
    """The mean of ``search`` over bootstrap resamples of the items (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(target), len(target)) for _ in range(bags)]
    return np.mean([search(log_p[rows], target[rows]) for rows in draws], axis=0)


def half_scores(
    log_p: np.ndarray, target: np.ndarray, choose: Callable[[np.ndarray, np.ndarray], np.ndarray], splits: int = SPLITS
) -> list[float]:
    """Macro-F1 on random halves of the items, each scored with offsets ``choose`` picked on the other half
    (``splits`` random halvings, both ways round; the same halvings on every call)."""
    rng = np.random.default_rng(1)
    scores = []
    for _ in range(splits):
        order = rng.permutation(len(target))
        halves = order[: len(order) // 2], order[len(order) // 2 :]
        for tune, test in (halves, halves[::-1]):
            predicted = np.argmax(log_p[test] + choose(log_p[tune], target[tune]), axis=1)
            scores.append(macro_f1_of_indices(target[test], predicted, log_p.shape[1]))
    return scores


def held_out_score(log_p: np.ndarray, target: np.ndarray, splits: int = SPLITS, bags: int = BAGS) -> float:
    """Mean macro-F1 on random halves of the items, each scored with offsets bagged on the other half."""
    return float(np.mean(half_scores(log_p, target, lambda lp, t: bagged(lp, t, bags), splits)))
