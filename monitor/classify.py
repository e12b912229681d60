"""The four-label classifier: fit, predict, explain.  Pure and deterministic.

Method: a multinomial logistic regression over the sparse binary features of a
headline and its summary (``monitor.features``: words, pairs, title words,
stems, codebook cues), L2-normalised per item.  Training uses scikit-learn;
prediction uses only the exported weights (numpy + scipy.sparse), so a saved
model is a plain ``.npz`` of arrays and strings: no pickle, nothing executable.

Evidence for a decision is the few features that pushed the predicted label
hardest, printed as the words they stand for.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import ModelError
from monitor.features import VERSION as FEATURES_VERSION
from monitor.features import Document, FeatureIndex, describe, features, telling

LABELS: tuple[str, ...] = ("attack", "retaliation", "de-escalation", "other")
FORMAT_VERSION = 2
_KINDS = {"sparse": "lr", "embed": "lr-minilm"}  # how each backend's versions begin


@dataclass(frozen=True)
class Prediction:
    """One item's label, a probability for every label (summing to 1), and why."""

    label: str
    scores: dict[str, float]
    evidence: tuple[str, ...] = ()
    note: str = ""

    @property
    def confidence(self) -> float:
        return self.scores[self.label]


def rows(indices: np.ndarray, sizes: np.ndarray, n_features: int) -> Any:
    """A sparse matrix of L2-normalised binary rows, one per item, from its known feature indices
    (``sizes[i]`` of them for item ``i``, in order): what training and prediction both score."""
    from scipy.sparse import csr_matrix

    data = np.repeat(1.0 / np.sqrt(np.maximum(sizes, 1)), sizes)
    indptr = np.concatenate(([0], np.cumsum(sizes)))
    return csr_matrix((data, indices, indptr), shape=(len(sizes), n_features))


@dataclass
class Classifier:
    """Weights over a fixed vocabulary; ``coef`` is labels x features."""

    vocabulary: dict[str, int]
    coef: np.ndarray
    intercept: np.ndarray
    labels: tuple[str, ...] = LABELS
    meta: dict[str, Any] = field(default_factory=dict)
    doc_freq: np.ndarray | None = None  # training documents containing each feature
    emb_coef: np.ndarray | None = None  # labels x embedding dimensions (the ``embed`` backend), else None
    emb_scale: float = 0.0  # embeddings enter the model multiplied by this
    embedder: Any = field(default=None, repr=False, compare=False)  # monitor.embed.Embedder, made on first use
    index: FeatureIndex | None = field(default=None, repr=False, compare=False)  # made on first use

    @property
    def backend(self) -> str:
        return "embed" if self.emb_coef is not None else "sparse"

    def _embeddings(self, docs: Sequence[Document]) -> np.ndarray:
        if self.embedder is None:
            from monitor.embed import Embedder

            self.embedder = Embedder()
        return np.asarray(self.embedder.encode(docs), dtype=np.float64)

    def _scores(self, docs: Sequence[Document]) -> tuple[np.ndarray, list[list[int]]]:
        """Raw label scores (before the softmax) and each document's known sparse features."""
        matrix, per_doc = self._matrix(docs)
        scores = np.asarray(matrix @ self.coef.T + self.intercept)
        if self.emb_coef is not None:
            scores = scores + self.emb_scale * (self._embeddings(docs) @ self.emb_coef.T)
        return scores, per_doc

    def shift(self, offsets: np.ndarray) -> None:
        """Add per-label decision offsets to the scores (see ``monitor.offsets``); the version follows."""
        rounded = [round(float(b), 4) for b in offsets]
        self.intercept = self.intercept + np.asarray(rounded)
        self.meta["offsets"] = rounded
        self.meta["version"] = _version(_KINDS[self.backend], self.version, rounded)

    def word_counts(self) -> dict[str, int]:
        """Document frequency of each plain word feature in the training corpus (for IDF weights)."""
        if self.doc_freq is None:
            return {}
        names = self._names()
        return {names[i]: int(n) for i, n in enumerate(self.doc_freq) if ":" not in names[i] and " " not in names[i]}

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    def _matrix(self, docs: Sequence[Document]) -> tuple[Any, list[list[int]]]:
        """The rows of ``docs`` (see ``rows``) and each row's feature indices (for evidence)."""
        indices: list[int] = []
        sizes = np.zeros(len(docs), dtype=np.int64)
        if self.index is None:
            self.index = FeatureIndex(self.vocabulary)
        columns = self.index.columns
        with _collector_paused():  # the loop makes only acyclic garbage; collecting it would cost a twentieth
            for row, doc in enumerate(docs):
                before = len(indices)
                indices.extend(columns(doc))
                sizes[row] = len(indices) - before
        ids = np.array(indices, dtype=np.int64)
        matrix = rows(ids, sizes, len(self.vocabulary))
        bounds = matrix.indptr.tolist()
        return matrix, [indices[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def probabilities(self, docs: Sequence[Document]) -> np.ndarray:
        """One row per document, one column per label, rows summing to 1."""
        return _softmax(self._scores(docs)[0])

    def log_probabilities(self, docs: Sequence[Document]) -> np.ndarray:
        """``probabilities`` as logs, floored at 1e-12: what decision offsets are added to."""
        return np.log(np.maximum(self.probabilities(docs), 1e-12))

    def predict(self, docs: Sequence[Document], evidence: int = 3) -> list[Prediction]:
        if not docs:
            return []
        scores, per_doc = self._scores(docs)
        probs = _softmax(scores)
        rows = np.round(probs, 4).tolist()  # whole-batch numpy work: this path must stay fast
        best = np.argmax(probs, axis=1).tolist()
        return [
            self._prediction(doc, row, label, found, evidence)
            for doc, row, label, found in zip(docs, rows, best, per_doc)
        ]

    def _prediction(self, doc: Document, row: list[float], best: int, found: list[int], evidence: int) -> Prediction:
        if not (doc.title.strip() or doc.summary.strip()):
            return Prediction("other", _certain("other", self.labels), (), "empty text")
        note = "few known words: low confidence" if len(found) < 3 else ""
        return Prediction(self.labels[best], dict(zip(self.labels, row)), self.explain(best, found, evidence), note)

    def explain(self, label_index: int, found: list[int], top: int = 3) -> tuple[str, ...]:
        """Features that favour ``label_index`` over the mean of the other labels, strongest first."""
        if not found or top <= 0:
            return ()
        margins = self.meta.get("_margins")
        if margins is None:
            others = (self.coef.sum(axis=0, keepdims=True) - self.coef) / max(len(self.labels) - 1, 1)
            margins = self.meta["_margins"] = self.coef - others
            self.meta["_telling"] = np.array([telling(name) for name in self._names()], dtype=bool)
        ids = np.asarray(found)
        ids = ids[self.meta["_telling"][ids]]  # function words and numbers explain nothing to a reader
        values = margins[label_index][ids]
        order = np.lexsort((ids, -values))[:top]  # strongest first, ties by feature index
        names = self._names()
        return tuple(describe(names[ids[k]]) for k in order.tolist() if values[k] > 0)

    def _names(self) -> list[str]:
        cached = self.meta.get("_names")
        if cached is None:
            cached = [""] * len(self.vocabulary)
            for name, index in self.vocabulary.items():
                cached[index] = name
            self.meta["_names"] = cached
        return cached  # type: ignore[no-any-return]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        names = np.array(self._names(), dtype=np.str_)
        meta = {k: v for k, v in self.meta.items() if not k.startswith("_")}
        tmp = path.with_suffix(".tmp.npz")
        arrays: dict[str, Any] = {
            "names": names,
            "coef": self.coef.astype(np.float32),
            "intercept": self.intercept.astype(np.float64),
            "labels": np.array(self.labels, dtype=np.str_),
            "doc_freq": self.doc_freq if self.doc_freq is not None else np.zeros(len(names), dtype=np.int32),
            "meta": np.array(json.dumps(meta, sort_keys=True)),
            "format": np.array(FORMAT_VERSION),
        }
        if self.emb_coef is not None:
            arrays.update(emb_coef=self.emb_coef.astype(np.float32), emb_scale=np.array(self.emb_scale))
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Classifier:
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != FORMAT_VERSION:
                    raise ModelError(f"{path}: model format {int(data['format'])}, this code reads {FORMAT_VERSION}")
                names = [str(n) for n in data["names"]]
                return cls(
                    vocabulary={name: i for i, name in enumerate(names)},
                    coef=data["coef"].astype(np.float64),
                    intercept=data["intercept"],
                    labels=tuple(str(x) for x in data["labels"]),
                    meta=json.loads(str(data["meta"])),
                    doc_freq=data["doc_freq"].astype(np.int32),
                    emb_coef=data["emb_coef"].astype(np.float64) if "emb_coef" in data else None,
                    emb_scale=float(data["emb_scale"]) if "emb_scale" in data else 0.0,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{path}: cannot load classifier ({exc})") from None


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a loop that creates no reference cycles (reference counting
    still frees everything); restore it only if this call paused it, so nested or concurrent batches
    leave it as they found it."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _version(kind: str, *recipe: Any) -> str:
    """A model's version: its kind and a digest of everything that made it (data, features, settings,
    decision offsets), so that two models that can label one text differently never share a version."""
    return f"{kind}-{hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]}"


def _softmax(scores: Any) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def _certain(label: str, labels: Sequence[str]) -> dict[str, float]:
    return {name: (1.0 if name == label else 0.0) for name in labels}


def fit(
    docs: Sequence[Document],
    labels: Sequence[str],
    c: float = 4.0,
    min_count: int = 2,
    embeddings: np.ndarray | None = None,
    scale: float = 0.5,
) -> Classifier:
    """Train deterministically: same data in the same order gives the same weights.

    With ``embeddings`` (one row per document) one regression is fitted over the sparse features and
    the embedding times ``scale`` side by side: the ``embed`` backend."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ModelError(f"unknown labels in training data: {unknown}")
    feature_sets = [features(d) for d in docs]
    counts: dict[str, int] = {}
    for found in feature_sets:
        for f in found:
            counts[f] = counts.get(f, 0) + 1
    vocabulary = {f: i for i, f in enumerate(sorted(f for f, n in counts.items() if n >= min_count))}
    per_doc = [sorted(vocabulary[f] for f in found if f in vocabulary) for found in feature_sets]
    sizes = np.array([len(known) for known in per_doc], dtype=np.int64)
    indices = np.array([i for known in per_doc for i in known], dtype=np.int64)
    matrix = rows(indices, sizes, len(vocabulary))
    if embeddings is not None:
        matrix = hstack([matrix, csr_matrix(scale * np.asarray(embeddings, dtype=np.float64))], format="csr")
    target = np.array([LABELS.index(label) for label in labels])
    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced", tol=1e-6)
    model.fit(matrix, target)
    weights = np.zeros((len(LABELS), matrix.shape[1]))
    intercept = np.full(len(LABELS), -20.0)  # a label never seen in training is never predicted
    weights[model.classes_] = model.coef_
    intercept[model.classes_] = model.intercept_
    digest = hashlib.sha256(json.dumps([[d.title, d.summary, y] for d, y in zip(docs, labels)]).encode()).hexdigest()
    meta = {"c": c, "min_count": min_count, "n_train": len(docs), "n_features": len(vocabulary), "data_sha256": digest}
    recipe = {
        "features": FEATURES_VERSION,
        "c": c,
        "min_count": min_count,
        "scale": scale if embeddings is not None else 0,
    }
    meta["version"] = _version(_KINDS["sparse" if embeddings is None else "embed"], recipe, digest)
    doc_freq = np.array([counts[f] for f in vocabulary], dtype=np.int32)
    meta["n_docs"] = len(docs)
    coef, emb_coef = weights[:, : len(vocabulary)], None
    if embeddings is not None:
        emb_coef, meta["embedding_scale"] = weights[:, len(vocabulary) :], scale
    return Classifier(
        vocabulary, coef, intercept, LABELS, meta, doc_freq, emb_coef, scale if emb_coef is not None else 0.0
    )
