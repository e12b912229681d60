"""The labelled seed corpus, the train/test split, and the saved model.

The corpus is JSON Lines under ``seeds/labelled/`` (keys ``id``, ``title``,
``summary``, ``label``, ...).  Every fifth item, chosen by a hash of its id,
is held out for testing and never trained on; the split is stable as the
corpus grows.  Analyst corrections join the training set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.classify import LABELS, Classifier, Document, fit
from monitor.config import Settings, data_path
from monitor.errors import InputError, ModelError

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


def train_model(examples: Sequence[Example], extra: Sequence[Example] = ()) -> Classifier:
    """Fit on the training split plus ``extra`` (analyst corrections)."""
    train, _ = split(examples)
    rows = list(train) + list(extra)
    return fit([e.document for e in rows], [e.label for e in rows])


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
