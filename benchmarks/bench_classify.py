"""Classifier throughput: items per second in batch on one core, with and without evidence; then the
optional ``embed`` backend (MiniLM sentence embeddings) on one and on two threads, when it is installed.

Prints a table. Run: .venv/bin/python benchmarks/bench_classify.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from monitor.classify import Classifier
from monitor.features import FeatureIndex, features
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
    columns_side_by_side(model, docs)
    embed_rows(docs[:2000])


def columns_side_by_side(model: Classifier, docs: list) -> None:
    """The prediction index against the plain road (feature strings, then the vocabulary), in turns."""
    vocabulary, index = model.vocabulary, FeatureIndex(model.vocabulary)
    known, column = vocabulary.keys(), vocabulary.__getitem__

    def by_strings(batch: list) -> None:
        for doc in batch:
            set(map(column, known & features(doc)))

    def by_index(batch: list) -> None:
        for doc in batch:
            index.columns(doc)

    plain, fast = rate(by_strings, docs), rate(by_index, docs)
    print(f"{'features: strings then vocabulary':<34}{plain:>12,.0f}")
    print(f"{'features: FeatureIndex':<34}{fast:>12,.0f}   x{fast / plain:.2f}")


def embed_rows(docs: list) -> None:
    from monitor.embed import Embedder

    path = ROOT / "models" / "classifier-embed.npz"
    if not path.exists() or not Embedder.available():
        print("embed backend: not measured (no model or the 'embed' extra is not installed)")
        return
    model = Classifier.load(path)
    print(f"\nembed backend {model.version}, {len(docs):,} items (title + summary)")
    print(f"{'mode':<34}{'items/s':>12}")
    for threads in (1, 2):
        model.embedder = Embedder(threads=threads)
        model.probabilities(docs[:8])  # load the model outside the timing
        label = f"predict, {threads} thread{'s' if threads > 1 else ''}"
        print(f"{label:<34}{rate(lambda d: model.predict(d), docs, repeats=1):>12,.0f}")


if __name__ == "__main__":
    main()
