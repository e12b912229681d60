"""The classifier through its real interfaces: fit/predict/explain, save/load, CLI, corrections."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, both_backends, run_cli, session_on

from monitor import series
from monitor.classify import LABELS, Classifier, Document, fit
from monitor.errors import ModelError
from monitor.features import MAX_CHARS, FeatureIndex, features, tokens
from monitor.training import is_held_out, most_regularised_of_the_best, read_corpus, split, train_model

ATTACK = Document("Militants ambush army convoy on mountain road, killing six soldiers", "")


@pytest.fixture(scope="module")
def mini() -> Classifier:
    return train_model(read_corpus(DATA / "labelled"))


def test_scores_sum_to_one_and_evidence_names_words(mini: Classifier) -> None:
    prediction = mini.predict([ATTACK])[0]
    assert set(prediction.scores) == set(LABELS)
    assert abs(sum(prediction.scores.values()) - 1) < 1e-3
    assert prediction.label == "attack"
    assert prediction.evidence and all(isinstance(e, str) and len(e) < 60 for e in prediction.evidence)


def test_evidence_leaves_out_function_words_and_numbers() -> None:
    """Evidence is for a reader: "has", "will", "in 0" may move the model but explain nothing."""
    docs = [
        Document("Ministers say they will not attend the summit", "He has said it would be a waste of time."),
        Document("What we know so far about the 3 blasts", "It was not clear who was behind them, officials said."),
        Document("Rebels shell the airport for a second night", "The army has said 12 people were hurt."),
    ]
    for prediction in Classifier.load(MODEL).predict(docs):
        assert prediction.evidence, prediction
        for phrase in prediction.evidence:
            words = phrase.replace("(title)", "").strip(" “”").split(" ")
            assert not (
                set(words) <= set("has have will would not said say says he it was the in 0 what we so".split())
            )


def test_empty_text_is_other_with_a_note(mini: Classifier) -> None:
    for doc in (Document(""), Document("   ", "\n\t")):
        prediction = mini.predict([doc])[0]
        assert prediction.label == "other" and prediction.note == "empty text" and prediction.confidence == 1.0


def test_long_text_is_truncated_predictably(mini: Classifier) -> None:
    base = "Rockets hit air base " * 200
    a = mini.probabilities([Document(base[:MAX_CHARS])])
    b = mini.probabilities([Document(base[:MAX_CHARS] + " ceasefire talks truce " * 500)])
    assert np.allclose(a, b)


def test_non_english_does_not_crash_and_is_marked_low_confidence(mini: Classifier) -> None:
    for text in ("الجيش يعلن وقف إطلاق النار", "空袭 导弹 港口", "Ракетный удар по городу", "\x00\x01"):
        prediction = mini.predict([Document(text)])[0]
        assert prediction.label in LABELS
        assert prediction.note == "few known words: low confidence"


def test_house_spellings_of_the_same_compound_read_alike() -> None:
    """AP writes "cease-fire" and "U.S.", Reuters "ceasefire" and "US": one token each, so a model trained on
    one house style reads the other; other hyphenated words keep their parts."""
    assert (
        tokens("U.S. and U.N. back Cease-fire")
        == tokens("US and UN back ceasefire")
        == ["us", "and", "un", "back", "ceasefire"]
    )
    assert tokens("air strikes; counter-offensive; cyber attack; De-escalation") == [
        "airstrikes",
        "counteroffensive",
        "cyberattack",
        "deescalation",
    ]
    assert tokens("Iran-backed fighters in a three-day battle") == [
        "iran",
        "backed",
        "fighters",
        "in",
        "a",
        "three",
        "day",
        "battle",
    ]
    hyphenated = features(Document("Sudan's warring sides begin a cease-fire", "The U.S. brokered it."))
    joined = features(Document("Sudan's warring sides begin a ceasefire", "The US brokered it."))
    assert hyphenated == joined


def test_an_act_after_an_attack_is_a_cue_and_a_consequence_after_one_is_not() -> None:
    """Rule 8's "after" framing: an act word before "after", an attack word behind it."""
    response = Document("American jets bomb militia depots in eastern Syria after rocket fire wounds two soldiers")
    consequence = Document("Eleven dead after shelling of a market in Donetsk")
    visit = Document("Russia pounds Kyiv hours after the president meets allies in Washington")
    in_summary = Document("Militia depots hit", "The jets struck following a drone attack on a patrol base.")
    assert "CT:act-after-attack" in features(response)
    assert not any("act-after-attack" in f for f in features(consequence) | features(visit))
    assert "CS:act-after-attack" in features(in_summary) and "CT:act-after-attack" not in features(in_summary)
    contractor = Document("Coalition launches strikes on militia sites near Deir ez-Zor after drone kills a contractor")
    assert Classifier.load(MODEL).predict([contractor])[0].label == "retaliation"  # attack before the cue


def test_the_prediction_index_finds_exactly_the_known_features() -> None:
    """``FeatureIndex`` is a faster road to the columns of ``features``: the same set for every seed item and
    for awkward text, also after its word memory fills up and starts again."""
    model = Classifier.load(MODEL)
    docs = [e.document for e in read_corpus(MODEL.parents[1] / "seeds" / "labelled")]
    docs += [
        Document(""),
        Document("   ", "\n"),
        Document("Ракетный удар по Харькову", "Обстрел продолжался всю ночь."),
        Document("以色列空袭加沙", "停火谈判仍在继续"),
        Document("3rd strike in 24h: U.S. hits 2 sites after Cease-fire talks", "1,000 troops; 2023-10-17"),
        Document("after after following", "strikes after"),
        Document("x" * (MAX_CHARS * 3), "strike " * 3000),
    ]
    index, small = FeatureIndex(model.vocabulary), FeatureIndex(model.vocabulary, memo_limit=50)
    for doc in docs:
        expected = {model.vocabulary[f] for f in features(doc) if f in model.vocabulary}
        assert index.columns(doc) == expected == small.columns(doc), doc
    assert len(small._word) <= 51 + 3000  # it started again rather than growing past its limit plus one item


def test_shipped_model_reads_an_ap_style_ceasefire_as_de_escalation() -> None:
    model = Classifier.load(MODEL)
    ap, reuters = (
        Document("Israel and Hamas agree to a four-day cease-fire"),
        Document("Israel and Hamas agree to a four-day ceasefire"),
    )
    assert np.array_equal(model.probabilities([ap]), model.probabilities([reuters]))
    assert model.predict([ap])[0].label == "de-escalation"


def test_training_is_deterministic_and_save_load_round_trips(mini: Classifier, tmp_path: Path) -> None:
    again = train_model(read_corpus(DATA / "labelled"))
    assert again.version == mini.version
    assert np.array_equal(again.coef, mini.coef)
    mini.save(tmp_path / "m.npz")
    loaded = Classifier.load(tmp_path / "m.npz")
    docs = [ATTACK, Document("Talks resume", "Envoys met")]
    assert np.allclose(loaded.probabilities(docs), mini.probabilities(docs), atol=1e-5)
    assert loaded.predict(docs)[0].evidence == mini.predict(docs)[0].evidence


def test_models_that_can_label_a_text_differently_never_share_a_version(mini: Classifier) -> None:
    """Stored labels record the version that made them: it follows the data, C, the features and the offsets."""
    corpus = read_corpus(DATA / "labelled")
    other_c = train_model(corpus, c=1.0)
    assert other_c.version.startswith("lr-") and other_c.version != mini.version
    shifted = train_model(corpus)
    shifted.shift(np.array([0.5, 0.0, 0.0, -0.25]))
    assert shifted.version not in (mini.version, other_c.version) and shifted.meta["offsets"] == [0.5, 0.0, 0.0, -0.25]
    assert np.allclose(shifted.intercept, mini.intercept + np.array([0.5, 0.0, 0.0, -0.25]))


def test_corrupt_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="cannot load"):
        Classifier.load(bad)


def test_unknown_training_label_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown labels"):
        fit([Document("x")], ["war"])


def test_split_is_stable_and_disjoint() -> None:
    corpus = read_corpus(DATA / "labelled")
    train, test = split(corpus)
    assert {e.id for e in train}.isdisjoint(e.id for e in test)
    assert len(train) + len(test) == len(corpus)
    assert [is_held_out(e.id) for e in corpus] == [is_held_out(e.id) for e in corpus]


def test_among_tied_development_scores_the_smallest_c_wins() -> None:
    scored = [(0.735, "C=1"), (0.742, "C=2"), (0.741, "C=4"), (0.7423, "C=8")]
    assert most_regularised_of_the_best(scored) == "C=2"  # 0.7423 and 0.742 are a tie; 0.735 is not
    assert most_regularised_of_the_best([(0.70, "C=1"), (0.76, "C=2")]) == "C=2"
    assert most_regularised_of_the_best([(0.75, "C=1"), (0.70, "C=2")]) == "C=1"


def test_cli_train_tuned_on_a_development_set_records_c_and_offsets(write_config, tmp_path: Path) -> None:
    """``monitor train --tune-on DEV.csv``: C and the decision offsets come from the development set, and the
    model and its card say so."""
    dev, model_dir, outside = tmp_path / "dev.csv", tmp_path / "models", tmp_path / "outside"
    outside.mkdir()
    rows = [
        ("Artillery pounds the northern suburbs overnight", "attack"),
        ("Gunmen ambush a police convoy near the border", "attack"),
        ("Drone hits a fuel depot outside the port city", "attack"),
        ("Militants storm an army post, killing four", "attack"),
        ("Jets strike launch sites in response to the rocket barrage", "retaliation"),
        ("Army hits back at rebel bases after attack on its convoy", "retaliation"),
        ("Navy fires on radar sites in retaliation for the tanker strike", "retaliation"),
        ("Militia shells town in revenge for killing of its commander", "retaliation"),
        ("Both sides agree to a three-day truce", "de-escalation"),
        ("Rebels free twelve captured soldiers in goodwill gesture", "de-escalation"),
        ("Troops pull back from the disputed ridge under new deal", "de-escalation"),
        ("Envoys open talks on a lasting ceasefire", "de-escalation"),
        ("Central bank raises interest rates again", "other"),
        ("Minister warns of a severe response if attacks go on", "other"),
        ("Striker scores twice as the home side wins the derby", "other"),
        ("Funeral held for victims of last week's bombing", "other"),
    ]
    with dev.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("title", "label"), *rows])
    classifier = {"model_dir": str(model_dir), "seeds_dir": str(DATA), "eval_dir": str(outside)}
    config = write_config(classifier=classifier)
    result = run_cli("train", "--tune-on", str(dev), "--config", str(config), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert all(f"sparse C={c:g}: development macro-F1" in result.stderr + result.stdout for c in (1, 2, 4, 8))
    model = Classifier.load(model_dir / "classifier.npz")
    assert model.meta["tuned_on"] == "dev.csv" and len(model.meta["offsets"]) == 4
    assert model.meta["c"] in (1.0, 2.0, 4.0, 8.0) and 0.0 <= model.meta["dev_halves"] <= 1.0
    card = (model_dir / "CARD.md").read_text(encoding="utf-8")
    assert "the mean of 15 searches on bootstrap resamples of dev.csv" in card
    assert f"C = {model.meta['c']}" in card and str(model.meta["offsets"]) in card


def test_cli_classify_text_and_json(write_config, tmp_path: Path) -> None:
    config = write_config()
    plain = run_cli("classify", ATTACK.title, "--config", str(config), cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0] == "attack" and lines[1].startswith("scores: attack ") and lines[2].startswith("evidence: ")
    as_json = json.loads(run_cli("classify", ATTACK.title, "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert as_json["label"] == "attack" and set(as_json["scores"]) == set(LABELS)


def test_cli_classify_csv(write_config, tmp_path: Path) -> None:
    config = write_config()
    source = tmp_path / "in.csv"
    source.write_text('id,title,summary\n1,"Rockets hit air base, no casualties",\n2,Central bank holds rates,\n')
    target = tmp_path / "out.csv"
    result = run_cli("classify", "--input", str(source), "--output", str(target), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with target.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert set(rows[0]) >= {"label", "evidence", *(f"score_{label}" for label in LABELS)}
    assert rows[0]["label"] == "attack"


def test_cli_bad_csv_names_line_and_column(write_config, tmp_path: Path) -> None:
    config = write_config()
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text,label\n1,Rockets hit base,attack\n2,Talks resume,peace\n")
    result = run_cli("eval", str(bad), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"monitor: error: {bad}:3: column 'label': 'peace' is not one of attack, retaliation, de-escalation, other"
    )
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("foo,bar\n1,2\n")
    result = run_cli(
        "classify", "--input", str(nohead), "--output", str(tmp_path / "o.csv"), "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 2 and f"{nohead}:1: header needs a 'text' column" in result.stderr


def test_cli_eval_json_shape(write_config, tmp_path: Path) -> None:
    config = write_config()
    labelled = tmp_path / "l.csv"
    labelled.write_text(
        "id,text,label\n1,Militants ambush army convoy,attack\n2,Central bank holds rates,other\n"
        "3,Warring sides agree to a ceasefire,de-escalation\n"
    )
    result = run_cli("eval", str(labelled), "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"macro_f1", "accuracy", "per_class", "confusion", "items_per_second", "n"}
    assert data["n"] == 3 and set(data["per_class"]) == set(LABELS)
    assert set(data["per_class"]["attack"]) == {"precision", "recall", "f1", "support"}
    assert sum(sum(row.values()) for row in data["confusion"].values()) == 3
    assert "groups" not in data  # only asked for with --by


def test_cli_eval_by_a_column_scores_each_group_worst_first(write_config, tmp_path: Path) -> None:
    config = write_config()
    labelled = tmp_path / "typed.csv"
    labelled.write_text(
        "id,text,label,Source_Type\n1,Militants ambush army convoy,attack,AMBUSH\n"
        "2,Central bank holds rates,other,ECONOMY\n3,Warring sides agree to a ceasefire,de-escalation,TRUCE\n"
        "4,Gunmen ambush police patrol on the highway,attack,AMBUSH\n5,Stocks close higher,de-escalation,ECONOMY\n"
    )
    result = run_cli("eval", str(labelled), "--by", "source_type", "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)["groups"]
    assert {(g["group"], g["label"]) for g in groups} == {
        ("AMBUSH", "attack"),
        ("ECONOMY", "other"),
        ("ECONOMY", "de-escalation"),
        ("TRUCE", "de-escalation"),
    }
    assert sum(g["n"] for g in groups) == 5 and all(sum(g["predicted"].values()) == g["n"] for g in groups)
    shares = [g["correct"] / g["n"] for g in groups]
    assert shares == sorted(shares)  # worst first
    stocks = next(g for g in groups if g["label"] == "de-escalation" and g["group"] == "ECONOMY")
    assert stocks["correct"] == 0  # a market report is never de-escalation, whatever the row says
    table = run_cli("eval", str(labelled), "--by", "source_type", "--config", str(config), cwd=tmp_path)
    assert "by group, worst first" in table.stdout and "AMBUSH" in table.stdout
    missing = run_cli("eval", str(labelled), "--by", "theatre", "--config", str(config), cwd=tmp_path)
    assert missing.returncode == 2 and f"{labelled}:1: no column 'theatre' to group by" in missing.stderr


@both_backends
def test_relabel_overrides_and_joins_training(
    write_config, tmp_path: Path, project_copy: Path, database_url: str
) -> None:
    model_dir = tmp_path / "fresh-model"
    classifier = {"model_dir": str(model_dir), "seeds_dir": str(project_copy / "seeds"), "eval_dir": str(tmp_path)}
    config = write_config(classifier=classifier)  # eval_dir: no outside sets to measure, so training stays quick
    archive = tmp_path / "a.jsonl"
    archive.write_text(
        json.dumps({"title": "Fishermen report a record sardine haul", "published": "2024-01-02"}) + "\n"
    )
    first = run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path)
    assert "no trained classifier" in first.stderr and (model_dir / "classifier.npz").exists()
    assert run_cli("relabel", "999", "attack", "--config", str(config), cwd=tmp_path).returncode == 1
    result = run_cli("relabel", "1", "attack", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with session_on(database_url) as session:
        assert series.label_totals(session) == {"attack": 1}
    trained = run_cli("train", "--config", str(config), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "(1 corrections)" in trained.stdout and (model_dir / "CARD.md").exists()
    assert Classifier.load(model_dir / "classifier.npz").meta["n_corrections"] == 1


SEED_ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "seed-article.txt"
MODEL = Path(__file__).resolve().parents[1] / "models" / "classifier.npz"


@pytest.mark.skipif(not SEED_ARTICLE.exists(), reason="../shared is absent")
def test_the_seed_article_is_retaliation() -> None:
    """The report this project started from: US strikes framed as a response to attacks on US forces."""
    lines = [line.strip() for line in SEED_ARTICLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    title, summary = lines[0], lines[2]  # headline, outlet line, first paragraph (as a feed delivers it)
    prediction = Classifier.load(MODEL).predict([Document(title, summary)])[0]
    assert prediction.label == "retaliation", prediction


READINGS = Path(__file__).resolve().parents[1] / "benchmarks" / "codebook_readings.csv"
EVAL = SEED_ARTICLE.parent / "eval"


@pytest.mark.skipif(not EVAL.is_dir(), reason="../shared/eval is absent")
def test_codebook_readings_name_outside_items_by_id_and_only_where_they_differ() -> None:
    """benchmarks/codebook_readings.csv (read by bench_mapping.py) holds no text: each row names an item of its
    set by id, repeats that item's mapped label, and gives a different codebook label."""
    from monitor.tables import read_rows

    files = {"case2021": "case2021_task2_mapped.csv", "plover": "plover_gsr_mapped.csv"}
    mapped = {(name, r.id): r.label for name, file in files.items() for r in read_rows(EVAL / file, need_label=True)}
    with READINGS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"set", "id", "mapped_label", "codebook_label"}
    for row in rows:
        assert mapped[(row["set"], row["id"])] == row["mapped_label"], row
        assert row["codebook_label"] in LABELS and row["codebook_label"] != row["mapped_label"], row
    assert len({(r["set"], r["id"]) for r in rows}) == len(rows)


def test_shipped_model_meets_its_held_out_floor() -> None:
    """The committed artifact, on the committed held-out split: macro-F1 and every class F1."""
    from monitor.training import score

    _, test = split(read_corpus(Path(__file__).resolve().parents[1] / "seeds" / "labelled"))
    result = score(Classifier.load(MODEL), [e.document for e in test], [e.label for e in test])
    assert result.macro_f1 >= 0.88 and min(s.f1 for s in result.per_class.values()) >= 0.85, result.per_class


def test_offset_search_scores_as_evaluate_does_and_improves_its_set() -> None:
    """The numpy macro-F1 inside the offset search equals ``metrics.evaluate``'s (labels absent from the truth
    left out), and on a mostly-"other" set the offsets it picks beat no offsets."""
    from monitor.metrics import evaluate, macro_f1_of_indices
    from monitor.offsets import search

    rng = np.random.default_rng(3)
    for n, labels_present in ((200, 4), (57, 3), (9, 2)):
        target = rng.integers(0, labels_present, n)
        predicted = rng.integers(0, 4, n)
        expected = evaluate([LABELS[i] for i in target], [LABELS[i] for i in predicted], LABELS).macro_f1
        assert macro_f1_of_indices(target, predicted, len(LABELS)) == pytest.approx(expected)
    target = rng.integers(0, 4, 300)
    target[:200] = 3  # mostly "other", like real news
    log_p = np.log(rng.dirichlet(np.ones(4), 300))
    log_p[np.arange(300), target] += 0.3  # an informative but imbalanced scorer
    offsets = search(log_p, target)
    with_offsets = macro_f1_of_indices(target, np.argmax(log_p + offsets, axis=1), len(LABELS))
    assert with_offsets > macro_f1_of_indices(target, np.argmax(log_p, axis=1), len(LABELS))


def test_bagged_offsets_are_steadier_than_one_search_and_judged_on_unseen_halves() -> None:
    """Bootstrap means move less than single searches from one resample of a set to another, are the same
    for the same seed, and the held-out judgement scores an uninformative scorer's offsets at chance."""
    from monitor import offsets

    rng = np.random.default_rng(5)
    target = np.where(rng.random(600) < 0.6, 3, rng.integers(0, 3, 600))
    log_p = np.log(rng.dirichlet(np.ones(4), 600))
    log_p[np.arange(600), target] += 0.4
    resamples = [rng.integers(0, 600, 600) for _ in range(6)]
    single = np.array([offsets.search(log_p[r], target[r]) for r in resamples])
    bagged = np.array([offsets.bagged(log_p[r], target[r], bags=9) for r in resamples])
    assert bagged.std(axis=0).sum() < single.std(axis=0).sum()
    assert np.array_equal(offsets.bagged(log_p, target, bags=5), offsets.bagged(log_p, target, bags=5))
    noise = np.log(rng.dirichlet(np.ones(4), 600))
    assert offsets.held_out_score(noise, target, splits=2, bags=3) < 0.35 < offsets.held_out_score(log_p, target, 2, 3)


def test_card_names_the_outside_event_types_labelled_right_least_often(tmp_path: Path) -> None:
    from monitor.metrics import evaluate
    from monitor.training import Example, Measured, score, write_card

    texts = ["Militants ambush army convoy", "Central bank holds rates", "Sides agree a ceasefire", "Jets strike back"]
    labels = ["attack", "other", "de-escalation", "retaliation"]
    model = fit([Document(t) for t in texts * 2], labels * 2, c=1.0)
    corpus = [Example(f"x-{i}", t, "", label) for i, (t, label) in enumerate(zip(texts * 3, labels * 3))]
    held_out = evaluate(labels, labels, LABELS)
    outside_docs = [Document("Gunmen ambush a patrol")] * 5 + [Document("Shares fall")] * 6 + [Document("Truce")] * 2
    truth = ["attack"] * 5 + ["other"] * 6 + ["de-escalation"] * 2
    groups = ["AMBUSH"] * 5 + ["MARKETS"] * 6 + ["RARE"] * 2
    typed = score(model, outside_docs, truth, groups)
    card = tmp_path / "CARD.md"
    write_card(card, corpus, {"sparse": Measured(model, held_out, {"typed.csv": typed})})
    (line,) = [line for line in card.read_text(encoding="utf-8").splitlines() if "least often" in line]
    assert line.startswith("- sparse, typed.csv, source_types labelled right least often: ")
    assert "AMBUSH → attack" in line and "MARKETS → other" in line and "RARE" not in line  # under 5 items: noise
    worst, _ = line.split(": ", 1)[1].split("; ")
    first = next(g for g in typed.groups if g.n >= 5)
    assert worst == f"{first.group} → {first.truth} {first.correct}/{first.n}"


def test_batch_prediction_leaves_the_garbage_collector_as_it_found_it() -> None:
    """Feature extraction pauses the cyclic collector for speed; it must never leave it off (or turn it on)."""
    import gc

    texts = ["Militants ambush army convoy", "Central bank holds rates"] * 2
    model = fit([Document(t) for t in texts], ["attack", "other"] * 2, c=1.0)
    assert gc.isenabled()
    model.predict([Document("Army convoy ambushed")])
    assert gc.isenabled()
    gc.disable()
    try:
        model.predict([Document("Army convoy ambushed")])
        assert not gc.isenabled()
    finally:
        gc.enable()
