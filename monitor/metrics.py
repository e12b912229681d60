"""Scores of a labelling against the truth: per-class precision, recall, F1, confusion.  Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ClassScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class GroupScore:
    """How one group of items (a value of a column such as a source's own event type) with one true label
    was labelled: how many, how many right, and what they were labelled."""

    group: str
    truth: str
    n: int
    correct: int
    predicted: dict[str, int]

    @property
    def share_right(self) -> float:
        return _ratio(self.correct, self.n)


@dataclass(frozen=True)
class Evaluation:
    labels: tuple[str, ...]
    per_class: dict[str, ClassScore]
    confusion: dict[str, dict[str, int]]
    accuracy: float
    macro_f1: float
    n: int
    items_per_second: float = 0.0
    groups: tuple[GroupScore, ...] = ()

    def as_json(self) -> dict[str, object]:
        """The shape ``monitor eval --json`` promises (../shared/CLI.md)."""
        return {
            "macro_f1": round(self.macro_f1, 4),
            "accuracy": round(self.accuracy, 4),
            "per_class": {
                label: {
                    "precision": round(s.precision, 4),
                    "recall": round(s.recall, 4),
                    "f1": round(s.f1, 4),
                    "support": s.support,
                }
                for label, s in self.per_class.items()
            },
            "confusion": self.confusion,
            "items_per_second": round(self.items_per_second, 1),
            "n": self.n,
        } | ({"groups": [_group_json(g) for g in self.groups]} if self.groups else {})


def _group_json(group: GroupScore) -> dict[str, object]:
    return {
        "group": group.group,
        "label": group.truth,
        "n": group.n,
        "correct": group.correct,
        "predicted": group.predicted,
    }


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> Evaluation:
    """Macro-F1 averages over the labels present in the truth (absent labels would score 0 by fiat)."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    confusion = {t: {p: 0 for p in labels} for t in labels}
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    per_class = {}
    for label in labels:
        hits = confusion[label][label]
        support = sum(confusion[label].values())
        claimed = sum(confusion[t][label] for t in labels)
        precision, recall = _ratio(hits, claimed), _ratio(hits, support)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = ClassScore(precision, recall, f1, support)
    present = [label for label in labels if per_class[label].support]
    macro = sum(per_class[label].f1 for label in present) / len(present) if present else 0.0
    accuracy = _ratio(sum(confusion[label][label] for label in labels), len(truth))
    return Evaluation(tuple(labels), per_class, confusion, accuracy, macro, len(truth))


def by_group(groups: Sequence[str], truth: Sequence[str], predicted: Sequence[str]) -> tuple[GroupScore, ...]:
    """Scores per (group, true label), worst share right first (ties: larger groups first, then by name)."""
    tallies: dict[tuple[str, str], Counter[str]] = {}
    for group, t, p in zip(groups, truth, predicted, strict=True):
        tallies.setdefault((group, t), Counter())[p] += 1
    scores = [GroupScore(group, t, sum(c.values()), c[t], dict(c.most_common())) for (group, t), c in tallies.items()]
    return tuple(sorted(scores, key=lambda g: (g.share_right, -g.n, g.group, g.truth)))


def macro_f1_of_indices(target: np.ndarray, predicted: np.ndarray, n_labels: int) -> float:
    """``evaluate(...).macro_f1`` for label indices 0..n_labels-1, in numpy: for searches that score
    thousands of candidate labellings (F1 = 2 hits / (support + claimed), labels absent from the truth
    left out, as above)."""
    import numpy as np

    confusion = np.bincount(target * n_labels + predicted, minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    hits, support, claimed = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    present = support > 0
    f1 = 2 * hits / np.maximum(support + claimed, 1)
    return float(f1[present].mean()) if present.any() else 0.0


def format_report(result: Evaluation) -> str:
    """A plain-text table of the evaluation."""
    lines = [f"{'label':<15}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for label, s in result.per_class.items():
        lines.append(f"{label:<15}{s.precision:>10.3f}{s.recall:>10.3f}{s.f1:>10.3f}{s.support:>10}")
    lines.append(f"{'macro-F1':<15}{result.macro_f1:>30.3f}{result.n:>10}")
    lines.append(f"accuracy {result.accuracy:.3f}; {result.items_per_second:,.0f} items/s")
    lines.append("")
    lines.append("confusion (rows: true, columns: predicted)")
    lines.append(" " * 15 + "".join(f"{p[:13]:>14}" for p in result.labels))
    for t in result.labels:
        lines.append(f"{t:<15}" + "".join(f"{result.confusion[t][p]:>14}" for p in result.labels))
    if result.groups:
        lines += ["", "by group, worst first (group, true label, n, right, labelled as)"]
        for g in result.groups:
            labelled = ", ".join(f"{label} {n}" for label, n in g.predicted.items())
            lines.append(f"{g.group[:30]:<31}{g.truth:<15}{g.n:>6}{g.share_right:>7.0%}   {labelled}")
    return "\n".join(lines)
