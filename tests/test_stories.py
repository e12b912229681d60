"""Counts that mean events: stories, theatres, tallies and retaliation chains, through import and counts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from conftest import both_backends, run_cli
from sqlmodel import Session, select

from monitor import schema, series, service
from monitor.backfill import Record
from monitor.classify import Classifier, Document
from monitor.stories import (
    Cluster,
    ClusterIndex,
    Idf,
    Member,
    StoryParams,
    find_tally,
    is_tally_item,
    lead_member,
    signature,
    similarity,
)
from monitor.training import read_corpus, train_model

NOW = datetime(2024, 2, 1, tzinfo=UTC)
SEEDS = Path(__file__).resolve().parents[1] / "seeds" / "labelled"
THEATRES = [
    {"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["Iraq", "Iraqi", "Syria", "Erbil", "al-Asad"]},
    {"id": "red-sea", "name": "Red Sea", "terms": ["Red Sea", "Houthi", "Houthis", "Yemen"]},
]
# One drone attack on Erbil, as five outlets wrote it.
ERBIL = [
    (
        "Drone attack on Erbil air base wounds three US troops",
        "A one-way drone struck the base near Erbil airport before dawn, US officials said.",
    ),
    (
        "Three American service members hurt in drone strike on Erbil base",
        "The drone hit the air base in Iraq's Kurdistan region early on Monday.",
    ),
    ("US troops wounded as drone slams into Erbil air base in northern Iraq", ""),
    (
        "Erbil: drone attack on coalition air base leaves three US personnel injured",
        "Kurdish officials said the drone came from the south.",
    ),
    (
        "Pentagon confirms drone attack at Erbil air base, three US troops hurt",
        "One of the three is in critical condition, a spokesman said of the Erbil attack.",
    ),
]
OTHER_ATTACK = ("Rockets hit al-Asad air base in western Iraq", "Several rockets landed inside the base in Anbar.")
RETALIATION = (
    "US jets strike militia sites in Iraq in response to Erbil drone attack",
    "The strikes answered the drone attack on the Erbil air base that wounded three US troops.",
)
BOTH = (
    "Houthis and Iraqi militia claim joint drone attack on ship in the Red Sea",
    "The groups said drones launched from Iraq and Yemen struck the vessel.",
)
TALLY = (
    "Attacks on US forces in Iraq and Syria pass 150, Pentagon says",
    "More than 150 attacks on US forces since October 17 have been recorded.",
)


def record(line: int, title: str, summary: str, hour: int, day: int = 25, source: str = "wire") -> Record:
    return Record(
        line,
        title,
        summary,
        f"https://{source}.example/{line}",
        datetime(2023, 12, day, hour, tzinfo=UTC),
        source,
        None,
    )


@pytest.fixture(scope="module")
def pinned() -> Classifier:
    """A model trained on the real seed corpus: its word statistics drive story matching as in real use."""
    model = train_model(read_corpus(SEEDS))
    labels = [p.label for p in model.predict([Document(t, s) for t, s in [*ERBIL, OTHER_ATTACK, BOTH, RETALIATION]])]
    assert labels == ["attack"] * 7 + ["retaliation"], labels  # the fixtures are clear cases
    return model


@pytest.fixture
def stories_settings(make_settings):
    return make_settings(theatres=THEATRES)


def load(settings, engine, classifier, records):
    service.sync_config(settings, engine, NOW)
    return service.import_items(settings, engine, classifier, records, NOW)


@both_backends
def test_five_outlets_one_story_and_a_second_attack_is_another(stories_settings, engine, pinned) -> None:
    records = [record(i, t, s, 3 + i, source=f"outlet{i}") for i, (t, s) in enumerate(ERBIL)]
    records.append(record(9, *OTHER_ATTACK, 8, source="outlet9"))
    load(stories_settings, engine, pinned, records)
    with Session(engine) as session:
        stories = session.exec(select(schema.Story).order_by(schema.Story.first_at)).all()
        assert [(s.label, s.n_items) for s in stories] == [("attack", 5), ("attack", 1)]
        points = series.count_series(session, ["iraq-syria"], ZoneInfo("UTC"), date(2023, 12, 25), date(2023, 12, 25))
    attack = next(p for p in points if p.label == "attack")
    assert (attack.stories, attack.mentions) == (2, 6)


@both_backends
def test_repoll_and_reimport_change_nothing(stories_settings, engine, pinned) -> None:
    records = [record(i, t, s, 3 + i, source=f"outlet{i}") for i, (t, s) in enumerate(ERBIL)]
    first = load(stories_settings, engine, pinned, records)
    with Session(engine) as session:
        before = series.count_series(session, [None, "iraq-syria"], ZoneInfo("UTC"))
    again = load(stories_settings, engine, pinned, records)
    assert (first.new, again.new, again.duplicate) == (5, 0, 5)
    with Session(engine) as session:
        assert series.count_series(session, [None, "iraq-syria"], ZoneInfo("UTC")) == before
        assert len(session.exec(select(schema.Story)).all()) == 1


@both_backends
def test_item_naming_two_theatres_counts_in_both(stories_settings, engine, pinned) -> None:
    load(stories_settings, engine, pinned, [record(1, *BOTH, 10)])
    with Session(engine) as session:
        points = series.count_series(session, [None, "iraq-syria", "red-sea"], ZoneInfo("UTC"))
    attacks = {p.theatre: p.stories for p in points if p.label == "attack"}
    assert attacks == {None: 1, "iraq-syria": 1, "red-sea": 1}


def always_attack() -> Classifier:
    """A model that calls everything an attack: the tally rule alone must keep tallies out of attack counts."""
    return Classifier({}, np.zeros((4, 0)), np.array([5.0, 0.0, 0.0, 0.0]), meta={"version": "always-attack"})


@both_backends
def test_tally_is_stored_as_tally_not_attack(stories_settings, engine) -> None:
    load(stories_settings, engine, always_attack(), [record(1, *TALLY, 12), record(2, *OTHER_ATTACK, 13)])
    with Session(engine) as session:
        labels = {lbl.item_id: lbl for lbl in session.exec(select(schema.Label))}
        assert labels[1].label == "other" and "running tally" in labels[1].note
        assert labels[1].score_attack > 0.9  # the model alone would have counted it as an attack
        assert labels[2].label == "attack"
        tallies = series.tallies(session, "iraq-syria")
        points = series.count_series(session, ["iraq-syria"], ZoneInfo("UTC"))
    assert [(t.number, t.what, t.since) for t in tallies] == [(150, "attacks", "October 17")]
    assert sum(p.stories for p in points if p.label == "attack") == 1


@both_backends
def test_retaliation_links_to_the_attack_it_answers(stories_settings, engine, pinned) -> None:
    records = [record(1, *ERBIL[0], 4), record(2, *OTHER_ATTACK, 5, day=20), record(3, *RETALIATION, 22, day=26)]
    load(stories_settings, engine, pinned, records)
    with Session(engine) as session:
        chains = series.chains(session)
    assert len(chains) >= 1
    assert chains[0].attack_title == ERBIL[0][0] and chains[0].lag_hours == 42.0
    assert chains[0].theatres == ("iraq-syria",)


@both_backends
def test_counts_cli_json_csv_and_zero_fill(write_config, tmp_path: Path) -> None:
    config = write_config(theatres=THEATRES)
    archive = tmp_path / "a.jsonl"
    rows = [
        {
            "title": t,
            "summary": s,
            "published": f"2023-12-2{i}T08:00:00Z",
            "source": f"s{i}",
            "link": f"https://x.example/{i}",
        }
        for i, (t, s) in enumerate([OTHER_ATTACK, ("Central bank holds rates", "")])
    ]
    archive.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path).returncode == 0
    result = run_cli(
        "counts",
        "--theatre",
        "iraq-syria",
        "--since",
        "2023-12-19",
        "--until",
        "2023-12-22",
        "--json",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    points = json.loads(result.stdout)["series"]
    assert len(points) == 4 * 4 and {p["theatre"] for p in points} == {"iraq-syria"}
    assert set(points[0]) == {"theatre", "label", "date", "stories", "mentions"}
    assert sum(p["mentions"] for p in points) == 1
    as_csv = run_cli("counts", "--by", "week", "--csv", "--config", str(config), cwd=tmp_path)
    assert as_csv.stdout.splitlines()[0] == "theatre,label,date,stories,mentions"
    bad = run_cli("counts", "--theatre", "mars", "--config", str(config), cwd=tmp_path)
    assert bad.returncode == 2 and "unknown theatre 'mars'" in bad.stderr


@both_backends
def test_changing_theatre_terms_replaces_stored_items(write_config, tmp_path: Path) -> None:
    config = write_config(theatres=THEATRES)
    archive = tmp_path / "a.jsonl"
    archive.write_text(json.dumps({"title": "Shelling reported near Kharkiv", "published": "2023-12-20"}) + "\n")
    run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path)
    before = json.loads(run_cli("counts", "--json", "--config", str(config), cwd=tmp_path).stdout)["series"]
    assert {p["theatre"] for p in before} == {None, "iraq-syria", "red-sea"}
    config = write_config(theatres=[*THEATRES, {"id": "ukraine", "name": "Ukraine", "terms": ["Kharkiv"]}])
    after = json.loads(
        run_cli("counts", "--theatre", "ukraine", "--json", "--config", str(config), cwd=tmp_path).stdout
    )
    assert sum(p["mentions"] for p in after["series"]) == 1


def test_tally_extraction() -> None:
    tally = find_tally("Militia attacks on US troops top 60 since mid-October", "")
    assert tally is not None and (tally.number, tally.since) == (60, "mid-October") and is_tally_item(tally)
    ordinal = find_tally("Drone hits base in the 66th attack on US forces", "")
    assert ordinal is not None and ordinal.ordinal and not is_tally_item(ordinal)
    assert find_tally("Three rockets hit base", "Two people were hurt in 2 attacks") is None


def test_similarity_weights_rare_words() -> None:
    idf = Idf.from_counts({"drone": 500, "attack": 800, "base": 600}, 1000)
    a = signature("Drone attack on Erbil base", "")
    b = signature("Erbil base hit by drone", "")
    c = signature("Drone attack on Tanf base", "")
    assert similarity(a, b, idf) > similarity(a, c, idf)


def _m(item_id: int, hour: int, words: str, label: str = "attack", confidence: float = 0.8) -> Member:
    at = datetime(2024, 1, 20, hour, tzinfo=UTC)
    return Member(item_id, at, label, confidence, ("jordan",), frozenset(words.split()))


def test_cached_story_takes_in_members_written_elsewhere() -> None:
    """Members behind the leaders join in place; an earlier member or a relabel rebuilds the entry."""
    idf = Idf.from_counts({"tower": 1, "drone": 50, "quay": 1}, 100)
    params = StoryParams(leaders=2)
    start, end = datetime(2024, 1, 19, tzinfo=UTC), datetime(2024, 1, 22, tzinfo=UTC)
    story = Cluster(
        7, datetime(2024, 1, 20, 9, tzinfo=UTC), "attack", {"jordan"}, [_m(1, 9, "tower"), _m(2, 10, "tower")]
    )
    index = ClusterIndex([story], idf, params, start, end)

    assert index.update(7, "attack", [_m(3, 12, "quay drone")])
    assert [m.item_id for m in story.members] == [1, 2, 3] and index.clusters == [story]
    assert index.candidates(_m(9, 13, "quay")) == []  # a follower's words do not find the story

    assert index.update(7, "attack", [_m(4, 8, "quay")])  # a new earliest report becomes a leader
    (rebuilt,) = index.clusters
    assert [m.item_id for m in rebuilt.members] == [4, 1, 2, 3] and rebuilt.first.hour == 8
    assert index.candidates(_m(9, 13, "quay")) == [rebuilt]

    assert index.update(7, "other", [_m(2, 10, "tower", "other", 1.0)])  # an analyst relabelled item 2
    (relabelled,) = index.clusters
    assert {m.item_id: m.label for m in relabelled.members}[2] == "other" and relabelled.group == "other"
    assert lead_member(relabelled.members).item_id == 2
    assert not index.update(99, "attack", [_m(5, 9, "tower")])  # not cached here: the caller loads it


def test_lead_member_is_the_surest_then_the_earliest() -> None:
    members = [_m(3, 11, "a", confidence=0.9), _m(2, 10, "b", confidence=0.9), _m(1, 12, "c", confidence=0.5)]
    assert lead_member(members).item_id == 2


def test_a_late_report_of_an_earlier_hour_becomes_a_leader_as_a_reload_would_have_it() -> None:
    idf = Idf.from_counts({"tower": 1, "quay": 1, "harbour": 1}, 100)
    t9 = datetime(2024, 1, 20, 9, tzinfo=UTC)
    story = Cluster(7, t9, "attack", {"jordan"}, [_m(1, 9, "tower"), _m(2, 10, "tower")])
    index = ClusterIndex([story], idf, StoryParams(leaders=2), t9.replace(day=19), t9.replace(day=22))
    index.grow(story, _m(3, 8, "quay"))  # fetched late, published first
    assert [m.item_id for m in story.members] == [3, 1, 2] and story.first.hour == 8
    assert index.candidates(_m(9, 13, "quay")) == [story]
    index.grow(story, _m(4, 12, "harbour"))  # behind the leaders: its words do not find the story
    assert [m.item_id for m in story.members] == [3, 1, 2, 4]
    assert index.candidates(_m(9, 13, "harbour")) == []


_TIE_SCRIPT = """
from datetime import UTC, datetime
from monitor.stories import ClusterIndex, Idf, Member, StoryParams, assign
at = lambda hour: datetime(2024, 1, 20, hour, tzinfo=UTC)
idf = Idf.from_counts({"alpha": 10, "bravo": 14, "charlie": 10, "delta": 14}, 100)
items = [
    Member(1, at(8), "attack", 0.9, (), frozenset("alpha bravo xray".split())),
    Member(2, at(9), "attack", 0.9, (), frozenset("charlie delta yankee".split())),
    Member(3, at(10), "attack", 0.9, (), frozenset("alpha bravo charlie delta".split())),
]
index = ClusterIndex([], idf, StoryParams(), at(0), at(23))
placed = assign(items, index)
print(len(index.clusters), [m.item_id for m in placed[3].members])
"""


def test_an_item_equally_close_to_two_stories_joins_the_same_one_whatever_the_hash_seed() -> None:
    """Items 1 and 2 share no word (two stories); item 3 shares two equally weighted words with each
    (rarer than most, so they find stories, but not rare enough to be names): an exact tie."""
    import os
    import subprocess
    import sys

    answers = set()
    for seed in ("0", "1", "4", "8"):  # before the fix these gave both answers
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-c", _TIE_SCRIPT], env=env, capture_output=True, text=True, check=True)
        answers.add(run.stdout.strip())
    assert answers == {"2 [2, 3]"}
