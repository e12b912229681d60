"""The labelled seed corpus, the train/test split, and the saved model.

The corpus is JSON Lines under ``seeds/labelled/`` (keys ``id``, ``title``,
``summary``, ``label``, ...).  Every fifth item, chosen by a hash of its id,
is held out for testing and never trained on; the split is stable as the
corpus grows.  Analyst corrections join the training set.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from monitor.classify import LABELS, Classifier, Document, fit
from monitor.config import Settings, data_path, project_dir
from monitor.errors import InputError, ModelError
from monitor.metrics import Evaluation, evaluate

MODEL_FILE = "classifier.npz"


@dataclass(frozen=True)
class Example:
    id: str
    title: str
    summary: str
    label: str
    theatre: str = ""

    @property
    def document(self) -> Document:
        return Document(self.title, self.summary)


def is_held_out(example_id: str) -> bool:
    """One item in five, by a hash of its id: stable whatever else is added."""
    return int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) % 5 == 0


def read_corpus(folder: Path) -> list[Example]:
    """Every ``*.jsonl`` under ``folder``, sorted by file name, in file order."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise ModelError(f"{folder}: no labelled seed files (*.jsonl) to train from")
    examples: list[Example] = []
    for path in files:
        examples.extend(_read_file(path))
    return examples


def _read_file(path: Path) -> list[Example]:
    examples = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                example = Example(
                    str(raw["id"]),
                    str(raw["title"]),
                    str(raw.get("summary") or ""),
                    str(raw["label"]),
                    str(raw.get("theatre") or ""),
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path}:{number}: bad labelled record ({exc})") from None
            if example.label not in LABELS:
                raise InputError(f"{path}:{number}: label {example.label!r} is not one of {', '.join(LABELS)}")
            examples.append(example)
    return examples


def split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    train = [e for e in examples if not is_held_out(e.id)]
    test = [e for e in examples if is_held_out(e.id)]
    return train, test


def model_path(settings: Settings) -> Path:
    return data_path(settings.classifier.model_dir) / MODEL_FILE


def train_model(examples: Sequence[Example], extra: Sequence[Example] = (), c: float = 4.0) -> Classifier:
    """Fit on the training split plus ``extra`` (analyst corrections)."""
    train, _ = split(examples)
    rows = list(train) + list(extra)
    model = fit([e.document for e in rows], [e.label for e in rows], c=c)
    model.meta["n_corrections"] = len(extra)
    return model


def load_or_train(settings: Settings, say: Callable[[str], None]) -> Classifier:
    """The saved model, or (first use) one trained from the seeds and saved."""
    path = model_path(settings)
    if path.exists():
        return Classifier.load(path)
    say(f"no trained classifier at {path}: training one from {settings.classifier.seeds_dir}/labelled …")
    model = train_model(read_corpus(data_path(settings.classifier.seeds_dir) / "labelled"))
    try:
        model.save(path)
    except OSError as exc:
        say(f"could not save the classifier to {path} ({exc.strerror}); using it unsaved")
    return model


def score(classifier: Classifier, documents: Sequence[Document], truth: Sequence[str]) -> Evaluation:
    """Evaluate on labelled documents, timing batch prediction."""
    started = time.perf_counter()
    predicted = [p.label for p in classifier.predict(documents, evidence=0)] if documents else []
    elapsed = time.perf_counter() - started
    result = evaluate(truth, predicted, LABELS)
    return replace(result, items_per_second=len(documents) / elapsed if elapsed > 0 else 0.0)


def eval_files() -> list[Path]:
    """The outside evaluation sets beside a checkout (``../shared/eval``), when present."""
    folder = project_dir("").parent / "shared" / "eval"
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def score_file(classifier: Classifier, path: Path) -> Evaluation:
    from monitor.tables import read_rows

    rows = list(read_rows(path, need_label=True))
    return score(classifier, [r.document for r in rows], [str(r.label) for r in rows])


def write_card(
    path: Path, classifier: Classifier, corpus: Sequence[Example], held_out: Evaluation, outside: dict[str, Evaluation]
) -> None:
    """``models/CARD.md``: data, method, version and measured metrics."""
    train, test = split(corpus)
    counts = Counter(e.label for e in corpus)
    theatres = Counter(e.theatre or "none" for e in corpus)
    lines = [
        "# Model card: Escalation Monitor classifier",
        "",
        f"- version: `{classifier.version}`",
        f"- method: {METHOD}",
        f"- features: {classifier.meta.get('n_features')}; C = {classifier.meta.get('c')}",
        f"- training data: {len(train)} items of `seeds/labelled/` (written by the team), "
        f"plus {classifier.meta.get('n_corrections', 0)} analyst corrections; held out: {len(test)} items",
        "- labels in the corpus: " + ", ".join(f"{label} {counts[label]}" for label in LABELS),
        "- theatres in the corpus: " + ", ".join(f"{t} {n}" for t, n in theatres.most_common()),
        f"- decision offsets per label ({', '.join(LABELS)}): {classifier.meta.get('offsets', 'none')}, chosen "
        f"with C on {classifier.meta.get('tuned_on', 'nothing')} (the development set of real 2023 headlines "
        "may choose C and these offsets; it is never trained on)",
        "- evidence: the three features that favour the chosen label most over the others' mean",
        "",
        "## Metrics",
        "",
        "| set | n | macro-F1 | accuracy | F1 attack | F1 retaliation | F1 de-escalation | F1 other | items/s |",
        "|---|---|---|---|---|---|---|---|---|",
        _card_row("held-out split (ours)", held_out),
    ]
    tuned = str(classifier.meta.get("tuned_on", ""))
    lines += [_card_row(f"{name} (tuned on)" if name == tuned else name, result) for name, result in outside.items()]
    lines += [
        "",
        "Outside sets are read in place from `../shared/eval/` and never trained on.",
        "Reproduce: `monitor train` (writes this card), `monitor eval FILE.csv`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _card_row(name: str, result: Evaluation) -> str:
    f1 = " | ".join(f"{result.per_class[label].f1:.3f}" for label in LABELS)
    speed = f"{result.items_per_second:,.0f}"
    return f"| {name} | {result.n} | {result.macro_f1:.3f} | {result.accuracy:.3f} | {f1} | {speed} |"


METHOD = (
    "multinomial logistic regression (scikit-learn, class-balanced) on L2-normalised binary features: "
    "word 1-2-grams of title+summary and of the title alone, 5-letter stems, codebook cue lexicons, "
    "and a response-to-an-attack cue"
)


C_GRID = (1.0, 2.0, 4.0, 8.0)


def tune_bias(classifier: Classifier, documents: Sequence[Document], truth: Sequence[str]) -> np.ndarray:
    """Per-label offsets to the scores that maximise macro-F1 on a development set (coordinate search).

    Training data is balanced by design while real feeds are mostly "other"; the offsets move the
    decision boundaries to the class balance of real news without touching the learned weights.
    """
    log_p = np.log(np.maximum(classifier.probabilities(documents), 1e-12))
    best, best_score = np.zeros(len(LABELS)), -1.0
    grid = np.arange(-3.0, 3.01, 0.25)
    for _ in range(3):
        for j in range(len(LABELS)):
            for value in grid:
                trial = best.copy()
                trial[j] = value
                predicted = [LABELS[i] for i in np.argmax(log_p + trial, axis=1)]
                result = evaluate(truth, predicted, LABELS).macro_f1
                if result > best_score + 1e-9:
                    best, best_score = trial, result
    return best


def choose_model(
    examples: Sequence[Example], extra: Sequence[Example], tune_on: Path | None, say: Callable[[str], None]
) -> Classifier:
    """Without a development set: the default C. With one: the C and offsets that score best on it."""
    if tune_on is None:
        return train_model(examples, extra)
    from monitor.tables import read_rows

    rows = list(read_rows(tune_on, need_label=True))
    docs, truth = [r.document for r in rows], [str(r.label) for r in rows]
    best: tuple[float, Classifier] | None = None
    for c in C_GRID:
        model = train_model(examples, extra, c)
        bias = tune_bias(model, docs, truth)
        model.intercept = model.intercept + bias
        dev = score(model, docs, truth).macro_f1
        say(f"C={c:g}: development macro-F1 {dev:.3f} with offsets {np.round(bias, 2).tolist()}")
        model.meta.update(tuned_on=tune_on.name, offsets=[float(b) for b in bias])
        if best is None or dev > best[0]:
            best = (dev, model)
    assert best is not None
    return best[1]


def retrain(
    settings: Settings, corrections: Sequence[Example], say: Callable[[str], None], tune_on: Path | None = None
) -> tuple[Classifier, Path]:
    """Train on the seeds and corrections, save the model, measure it and write its card."""
    corpus = read_corpus(data_path(settings.classifier.seeds_dir) / "labelled")
    model = choose_model(corpus, corrections, tune_on, say)
    path = model_path(settings)
    model.save(path)
    _, test = split(corpus)
    held_out = score(model, [e.document for e in test], [e.label for e in test])
    outside = {}
    for file in eval_files():
        say(f"measuring on {file.name} …")
        outside[file.name] = score_file(model, file)
    card = path.parent / "CARD.md"
    write_card(card, model, corpus, held_out, outside)
    return model, card
