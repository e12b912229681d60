"""The optional ``embed`` backend: MiniLM sentence embeddings beside the word features.

Runs the real bundled model on the CPU (the dev install has the extra); nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, run_cli

from monitor.classify import LABELS, Classifier, Document
from monitor.embed import DIMENSIONS, Embedder, embedding_text
from monitor.errors import ModelError
from monitor.training import read_corpus, split, train_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "classifier-embed.npz"
SEED_ARTICLE = ROOT.parent / "shared" / "seed-article.txt"


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_embeddings_are_unit_rows_and_know_a_paraphrase(embedder: Embedder) -> None:
    docs = [
        Document("Troops withdraw from border posts under new deal"),
        Document("Soldiers pulled back from frontier positions after an agreement"),
        Document("Rockets slam into air base, wounding four"),
        Document(""),
    ]
    rows = embedder.encode(docs)
    assert rows.shape == (4, DIMENSIONS)
    assert np.allclose(np.linalg.norm(rows[:3], axis=1), 1.0, atol=1e-4) and not rows[3].any()
    assert rows[0] @ rows[1] > rows[0] @ rows[2] + 0.2  # no shared content word, same meaning
    assert embedding_text(Document("Title", "Summary")) == "Title. Summary"


def test_embed_backend_trains_deterministically_and_round_trips(embedder: Embedder, tmp_path: Path) -> None:
    corpus = read_corpus(DATA / "labelled")
    model = train_model(corpus, backend="embed", embedder=embedder)
    again = train_model(corpus, backend="embed", embedder=embedder)
    assert model.backend == "embed" and model.version.startswith("lr-minilm-") and model.version == again.version
    assert model.emb_coef is not None and model.emb_coef.shape == (len(LABELS), DIMENSIONS)
    docs = [Document("Militants ambush army convoy on mountain road, killing six soldiers"), Document("")]
    probabilities = model.probabilities(docs)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert np.allclose(probabilities, again.probabilities(docs))
    model.save(tmp_path / "m.npz")
    loaded = Classifier.load(tmp_path / "m.npz")
    assert loaded.backend == "embed" and loaded.version == model.version
    assert np.allclose(loaded.probabilities(docs), probabilities, atol=1e-5)
    prediction = loaded.predict(docs)
    assert prediction[1].label == "other" and prediction[1].note == "empty text"
    assert prediction[0].evidence  # word features still explain the decision


def test_missing_extra_is_a_clear_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if the extra were not installed
    with pytest.raises(ModelError, match=r"'embed' extra .*pip install torch==2\.13\.0"):
        Embedder().encode([Document("Drone hits depot")])


def test_cli_embed_backend_trains_on_first_use_and_card_shows_both(write_config, tmp_path: Path, project_copy) -> None:
    model_dir, outside = tmp_path / "models", tmp_path / "outside"
    outside.mkdir()
    (outside / "mini_eval.csv").write_text(
        "title,label\nRebels shell the airport for a second night,attack\n"
        "Both armies agree to pull back from the river line,de-escalation\n"
        "Central bank holds interest rates steady,other\n",
        encoding="utf-8",
    )
    classifier = {"model_dir": str(model_dir), "seeds_dir": str(project_copy / "seeds"), "backend": "embed"}
    config = write_config(classifier={**classifier, "eval_dir": str(outside)})
    first = run_cli("classify", "Army shells rebel positions near the town", "--json", "--config", str(config),
                    cwd=tmp_path, timeout=300)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "no trained classifier" in first.stderr and (model_dir / "classifier-embed.npz").exists()
    assert "Loading weights" not in first.stderr  # no progress bars from the embedding libraries
    assert set(json.loads(first.stdout)["scores"]) == set(LABELS)
    assert run_cli("train", "--backend", "sparse", "--config", str(config), cwd=tmp_path).returncode == 0
    card = (model_dir / "CARD.md").read_text(encoding="utf-8")
    assert "### `sparse`" in card and "### `embed`" in card
    assert "| sparse | held-out split (ours) |" in card and "| embed | held-out split (ours) |" in card
    assert "| sparse | mini_eval.csv | 3 |" in card and "| embed | mini_eval.csv | 3 |" in card


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped embed model")
def test_shipped_embed_model_meets_its_held_out_floor() -> None:
    from monitor.training import score

    _, test = split(read_corpus(ROOT / "seeds" / "labelled"))
    result = score(Classifier.load(SHIPPED), [e.document for e in test], [e.label for e in test])
    assert result.macro_f1 >= 0.90 and min(s.f1 for s in result.per_class.values()) >= 0.85, result.per_class


@pytest.mark.skipif(not SEED_ARTICLE.exists() or not SHIPPED.exists(), reason="../shared or the model is absent")
def test_the_seed_article_is_retaliation_for_the_embed_model_too() -> None:
    lines = [line.strip() for line in SEED_ARTICLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    prediction = Classifier.load(SHIPPED).predict([Document(lines[0], lines[2])])[0]
    assert prediction.label == "retaliation", prediction
