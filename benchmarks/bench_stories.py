"""Story matching: precision/recall of "same story" on seeds/stories/pairs.jsonl, and clustering
throughput end to end through import on generated items.

Prints two tables. Run: .venv/bin/python benchmarks/bench_stories.py [--items 60000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import schema, service
from monitor.backfill import Record
from monitor.classify import Classifier, Document
from monitor.config import settings_from_mapping
from monitor.stories import Idf, StoryParams, label_group, match_score, signature

ROOT = Path(__file__).resolve().parents[1]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pair_table(model: Classifier) -> None:
    pairs = [json.loads(line) for line in (ROOT / "seeds" / "stories" / "pairs.jsonl").open()]
    idf = Idf.from_counts(model.word_counts(), int(model.meta["n_docs"]))
    labels_a = model.predict([Document(p["a"]["title"], p["a"]["summary"]) for p in pairs], evidence=0)
    labels_b = model.predict([Document(p["b"]["title"], p["b"]["summary"]) for p in pairs], evidence=0)
    print(f"same-story pairs: {len(pairs)} ({sum(p['same'] for p in pairs)} same)")
    print(f"{'threshold':>10}{'rare':>6}{'precision':>11}{'recall':>8}{'F1':>7}")
    for threshold in (0.06, 0.08, 0.10, 0.12, 0.15, 0.20):
        for rare in (0.55, 0.60, 0.65):
            params = StoryParams(threshold=threshold, rare=rare)
            predicted = []
            for p, a, b in zip(pairs, labels_a, labels_b):
                close = abs(when(p["a"]["published"]) - when(p["b"]["published"])) <= params.window
                ok = close and label_group(a.label) == label_group(b.label)
                words = (signature(p["a"]["title"], p["a"]["summary"]), signature(p["b"]["title"], p["b"]["summary"]))
                predicted.append(ok and match_score(*words, idf, params) >= threshold)
            tp = sum(1 for q, p in zip(predicted, pairs) if q and p["same"])
            fp = sum(1 for q, p in zip(predicted, pairs) if q and not p["same"])
            fn = sum(1 for q, p in zip(predicted, pairs) if not q and p["same"])
            precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
            f1 = 2 * precision * recall / max(precision + recall, 1e-9)
            mark = "  <- default" if (threshold, rare) == (StoryParams().threshold, StoryParams().rare) else ""
            print(f"{threshold:>10.2f}{rare:>6.2f}{precision:>11.3f}{recall:>8.3f}{f1:>7.3f}{mark}")


def generated(n: int) -> list[Record]:
    """Synthetic items (benchmark load only, never training data): events reported by 1-5 outlets."""
    rng = random.Random(7)
    places = [f"Place{i}" for i in range(400)]
    actors = ["militia", "army", "rebels", "navy", "air force", "insurgents", "police", "government"]
    acts = [
        "drone attack hits",
        "rockets strike",
        "talks resume in",
        "ceasefire agreed for",
        "jets bomb",
        "market opens in",
        "ambush near",
        "prisoner swap in",
    ]
    start = datetime(2023, 1, 1, tzinfo=UTC)
    records, line = [], 0
    while len(records) < n:
        place, actor, act = rng.choice(places), rng.choice(actors), rng.choice(acts)
        moment = start + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        for outlet in range(rng.randint(1, 5)):
            line += 1
            title = f"{actor.title()} {act} {place} {rng.choice(['', 'overnight', 'on Monday', 'officials say'])}"
            summary = f"Reports from {place} said the {actor} were involved; {rng.randint(1, 40)} people affected."
            records.append(
                Record(
                    line,
                    title,
                    summary,
                    f"https://o{outlet}.example/{line}",
                    moment + timedelta(minutes=rng.randrange(0, 600)),
                    f"outlet{outlet}",
                    None,
                )
            )
    records.sort(key=lambda r: r.published)  # archives come in time order
    return records[:n]


def throughput_table(model: Classifier, n: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = settings_from_mapping({"database": f"sqlite:///{folder}/bench.db"})
        engine = schema.make_engine(settings.database)
        service.sync_config(settings, engine, datetime.now(UTC))
        records = generated(n)
        started = time.perf_counter()
        summary = service.import_items(settings, engine, model, records, datetime(2024, 6, 1, tzinfo=UTC))
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nimport with clustering: {summary.new:,} items in {seconds:.1f} s = {summary.new / seconds:,.0f} items/s; "
        f"peak RSS {peak:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=60_000)
    args = parser.parse_args()
    model = Classifier.load(ROOT / "models" / "classifier.npz")
    pair_table(model)
    throughput_table(model, args.items)


if __name__ == "__main__":
    main()
