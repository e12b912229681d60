"""Classifier throughput: items per second in batch on one core, with and without evidence.

Prints a table. Run: .venv/bin/python benchmarks/bench_classify.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from monitor.classify import Classifier
from monitor.training import read_corpus

ROOT = Path(__file__).resolve().parents[1]


def rate(call, docs, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call(docs)
        best = min(best, time.perf_counter() - started)
    return len(docs) / best


def main() -> None:
    model = Classifier.load(ROOT / "models" / "classifier.npz")
    docs = [e.document for e in read_corpus(ROOT / "seeds" / "labelled")] * 4
    print(f"classifier {model.version}, {len(docs):,} items (seed corpus x4), one thread")
    print(f"{'mode':<34}{'items/s':>12}")
    print(f"{'probabilities only':<34}{rate(model.probabilities, docs):>12,.0f}")
    print(f"{'predict, no evidence':<34}{rate(lambda d: model.predict(d, evidence=0), docs):>12,.0f}")
    print(f"{'predict with 3 evidence phrases':<34}{rate(model.predict, docs):>12,.0f}")


if __name__ == "__main__":
    main()
