"""``monitor export`` (CSV and Parquet) and one data set giving identical counts on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import POSTGRES_URL, both_backends, fresh_postgres_database, run_cli

from monitor import parse

ROOT = Path(__file__).resolve().parents[1]
THEATRES = [
    {"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["iraq", "syria", "erbil", "baghdad"]},
    {"id": "red-sea", "name": "Red Sea", "terms": ["red sea", "houthi", "yemen"]},
]
RECORDS = [
    ("Rocket attack targets US base in western Iraq", "No casualties were reported.", "2024-01-02T08:00:00Z"),
    ("Drones hit Erbil air base for a second night", "Officials said two drones were downed.", "2024-01-02T21:00:00Z"),
    ("US jets strike militia depots in Syria after attacks", "A reply, the Pentagon said.", "2024-01-03T04:00:00Z"),
    ("Houthi missile fired at tanker in the Red Sea", "The ship reported minor damage.", "2024-01-03T12:00:00Z"),
    ("Baghdad bakery chain opens tenth shop", "Queues formed before dawn.", "2024-01-04T09:00:00Z"),
]  # fmt: skip


def archive(tmp_path: Path) -> Path:
    path = tmp_path / "items.jsonl"
    lines = [
        json.dumps({"title": t, "summary": s, "published": p, "source": "desk", "link": f"https://desk.example/{i}"})
        for i, (t, s, p) in enumerate(RECORDS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@both_backends
def test_export_csv_and_parquet_hold_the_same_rows(write_config, tmp_path: Path) -> None:
    config = write_config(theatres=THEATRES)
    assert run_cli("import", str(archive(tmp_path)), "--quiet", "--config", str(config), cwd=tmp_path).returncode == 0
    assert run_cli("relabel", "5", "other", "--config", str(config), cwd=tmp_path).returncode == 0

    out = run_cli("export", "--out", str(tmp_path / "csv"), "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"{tmp_path / 'csv' / 'items.csv'}\t5 rows" in out.stdout
    items = read_csv(tmp_path / "csv" / "items.csv")
    assert [r["title"] for r in items] == [t for t, _, _ in RECORDS]
    assert items[4]["corrected"] == "true" and items[4]["label"] == "other"
    assert items[0]["published_at"] == "2024-01-02T08:00:00+00:00" and items[0]["story_id"]
    assert items[3]["theatres"] == "red-sea" and items[1]["theatres"] == "iraq-syria"
    for row in items:
        scores = [float(row[f"score_{k}"]) for k in ("attack", "retaliation", "de_escalation", "other")]
        assert abs(sum(scores) - 1) < 1e-3 and row["model_version"]  # stored to four decimals
    stories = read_csv(tmp_path / "csv" / "stories.csv")
    assert {r["story_id"] for r in stories} == {r["story_id"] for r in items}
    counts = read_csv(tmp_path / "csv" / "counts.csv")
    assert {r["theatre"] for r in counts} == {"", "iraq-syria", "red-sea"}
    assert {r["date"] for r in counts} == {"2024-01-02", "2024-01-03", "2024-01-04"}

    pq = pytest.importorskip("pyarrow.parquet")
    out = run_cli("export", "--format", "parquet", "--out", str(tmp_path / "pq"), "--config", str(config), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = pq.read_table(tmp_path / "pq" / "items.parquet")
    assert table.column("title").to_pylist() == [r["title"] for r in items]
    assert table.column("corrected").to_pylist() == [False] * 4 + [True]
    assert str(table.schema.field("published_at").type) == "timestamp[us, tz=UTC]"
    assert pq.read_table(tmp_path / "pq" / "counts.parquet").num_rows == len(counts)
    assert pq.read_table(tmp_path / "pq" / "stories.parquet").num_rows == len(stories)

    window = run_cli(
        "export", "--since", "2024-01-03", "--out", str(tmp_path / "w"), "--config", str(config), cwd=tmp_path
    )
    assert [r["title"] for r in read_csv(tmp_path / "w" / "items.csv")] == [t for t, _, _ in RECORDS[2:]], window.stderr


def seed_records(limit: int) -> list[str]:
    """The first items of the bundled demo feeds, as JSON lines for ``monitor import``."""
    from datetime import UTC, datetime

    lines = []
    now = datetime(2024, 3, 1, tzinfo=UTC)
    for path in sorted((ROOT / "seeds" / "feeds").glob("*.xml")):
        for item in parse.parse(path.read_bytes(), f"https://{path.stem}.example/", {}, now).items:
            lines.append(
                json.dumps(
                    {
                        "title": item.title,
                        "summary": item.summary,
                        "link": item.link,
                        "guid": item.guid,
                        "published": item.published.isoformat(),
                        "source": path.stem,
                    }
                )
            )
    return lines[:limit]


@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL server: set MONITOR_TEST_POSTGRES_URL (.ci/run does)")
def test_same_data_gives_identical_counts_on_sqlite_and_postgresql(write_config, tmp_path: Path) -> None:
    data = tmp_path / "seed.jsonl"
    data.write_text("\n".join(seed_records(900)) + "\n")
    theatres = [
        {"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["iraq", "syria", "erbil", "baghdad", "al-asad"]},
        {"id": "red-sea", "name": "Red Sea", "terms": ["red sea", "houthi", "yemen", "hodeidah"]},
        {"id": "gaza", "name": "Gaza", "terms": ["gaza", "rafah", "khan younis"]},
    ]
    outputs = {}
    for backend in ("sqlite", "postgresql"):
        pg = fresh_postgres_database(POSTGRES_URL)
        url = f"sqlite:///{tmp_path / 'same.db'}" if backend == "sqlite" else next(pg)
        try:
            config = write_config(database=url, theatres=theatres)
            done = run_cli("import", str(data), "--quiet", "--config", str(config), cwd=tmp_path)
            assert done.returncode == 0 and "new 900" in done.stdout, done.stdout + done.stderr
            outputs[backend] = [
                run_cli(*command, "--config", str(config), cwd=tmp_path).stdout
                for command in (["counts", "--json"], ["counts", "--json", "--by", "week"], ["chains", "--json"])
            ]
        finally:
            pg.close()
    assert json.loads(outputs["sqlite"][0])["series"], "the import produced no counts"
    assert any(p["stories"] for p in json.loads(outputs["sqlite"][0])["series"] if p["theatre"] == "iraq-syria")
    assert outputs["sqlite"] == outputs["postgresql"]
