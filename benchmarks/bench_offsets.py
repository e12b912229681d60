"""How to choose the decision offsets: compared on the development set alone.

The development set is split in halves at random; offsets are chosen on one half and the other half is
scored with them, both ways round, for several splits. Methods: no offsets, one coordinate search, and
the mean of searches on bootstrap resamples, which ``monitor train --tune-on`` uses (``monitor.offsets``).
Prints a table of mean macro-F1 on the unseen halves.

Run: .venv/bin/python benchmarks/bench_offsets.py [--dev ../shared/eval/real_2023_jan_sep_dev.csv] [--splits 6]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from monitor.classify import LABELS, Classifier
from monitor.offsets import bagged, half_scores, search
from monitor.tables import read_rows

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "real_2023_jan_sep_dev.csv")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "classifier.npz")
    parser.add_argument("--splits", type=int, default=6)
    args = parser.parse_args()
    if not args.dev.exists():
        print(f"offsets: not measured ({args.dev} is absent)")
        return
    model = Classifier.load(args.model)
    model.intercept = model.intercept - np.asarray(model.meta.get("offsets", np.zeros(len(LABELS))))  # raw model
    rows = list(read_rows(args.dev, need_label=True))
    log_p = model.log_probabilities([r.document for r in rows])
    target = np.array([LABELS.index(str(r.label)) for r in rows])
    methods = {
        "no offsets": lambda lp, t: np.zeros(len(LABELS)),
        "one search": search,
        "mean of 15 bootstrap searches": lambda lp, t: bagged(lp, t, 15),
    }
    scores = {name: half_scores(log_p, target, choose, args.splits) for name, choose in methods.items()}
    print(f"model {model.version}; {args.dev.name}: {len(target)} items, {args.splits} random halvings x 2")
    print(f"{'offsets chosen by':<36}{'macro-F1 on the other half':>28}{'sd':>8}")
    for name, values in scores.items():
        print(f"{name:<36}{np.mean(values):>28.3f}{np.std(values):>8.3f}")


if __name__ == "__main__":
    main()
