"""How far the mapped outside sets can be scored by a classifier that follows the codebook exactly.

CASE 2021 and PLOVER were labelled by their own ontologies and mapped to our four labels
(``../shared/eval/README.md``: "the mapping is approximate"). Every item of both sets was read blind by the
codebook alone (text only: no mapped label, no source type, no model output), and every item where that
reading differed from the mapped label was read again, blind, by a second reader, mixed with items where the
two agreed. ``codebook_readings.csv`` beside this file keeps the items where both readings gave the same label
and it differs from the mapped one: ids and labels only, no text. It is a measurement, never training data,
and nothing is tuned on it.

Prints, per set: how many mapped labels the codebook contradicts, the macro-F1 that labelling by the codebook
itself scores against the mapped labels (so the most a codebook-true classifier can expect there), and the
model's macro-F1 against the mapped labels and against the codebook's.

Run: .venv/bin/python benchmarks/bench_mapping.py [--model models/classifier.npz]
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np

from monitor.classify import LABELS, Classifier
from monitor.metrics import evaluate, macro_f1_of_indices
from monitor.tables import Row, read_rows

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
SETS = {"case2021": "case2021_task2_mapped.csv", "plover": "plover_gsr_mapped.csv"}


def readings(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(set, id) -> (mapped label, codebook label) for the items where the two differ."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {(r["set"], r["id"]): (r["mapped_label"], r["codebook_label"]) for r in csv.DictReader(handle)}


def measure(name: str, rows: list[Row], model: Classifier, differing: dict[tuple[str, str], tuple[str, str]]) -> None:
    """One set's row of the table, what the codebook changes, and the model's F1 per codebook label."""
    n = len(LABELS)
    mapped = np.array([LABELS.index(str(r.label)) for r in rows])
    codebook = np.array([LABELS.index(differing.get((name, r.id), ("", str(r.label)))[1]) for r in rows])
    predicted = model.log_probabilities([r.document for r in rows]).argmax(axis=1)
    scores = [macro_f1_of_indices(mapped, codebook, n), macro_f1_of_indices(mapped, predicted, n)]
    scores.append(macro_f1_of_indices(codebook, predicted, n))
    print(f"{name:<10}{len(rows):>7}{int((mapped != codebook).sum()):>20}" + "".join(f"{s:>20.3f}" for s in scores))
    kinds = Counter((LABELS[m], LABELS[c]) for m, c in zip(mapped, codebook) if m != c)
    print("          mapped -> codebook: " + ", ".join(f"{m} -> {c} {k}" for (m, c), k in kinds.most_common()))
    per_class = evaluate([LABELS[c] for c in codebook], [LABELS[p] for p in predicted], LABELS).per_class
    listed = ", ".join(f"{label} {score.f1:.3f} ({score.support})" for label, score in per_class.items())
    print(f"          model vs codebook, F1 (support): {listed}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "classifier.npz")
    parser.add_argument("--readings", type=Path, default=Path(__file__).with_name("codebook_readings.csv"))
    args = parser.parse_args()
    differing = readings(args.readings)
    model = Classifier.load(args.model)
    print(f"model {model.version}")
    columns = ("codebook differs", "codebook vs mapped", "model vs mapped", "model vs codebook")
    print(f"{'set':<10}{'items':>7}" + "".join(f"{c:>20}" for c in columns))
    for name, file in SETS.items():
        if (EVAL / file).exists():
            measure(name, list(read_rows(EVAL / file, need_label=True)), model, differing)
        else:
            print(f"{name:<10} not measured ({EVAL / file} is absent)")


if __name__ == "__main__":
    main()
