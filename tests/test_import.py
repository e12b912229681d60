"""``monitor import``: JSON Lines and CSV, bad lines named and skipped, re-import changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import both_backends, run_cli, session_on

from monitor import series
from monitor.backfill import BadRecord, Record, read_records

GOOD = [
    {
        "title": "Rockets hit base near airport",
        "summary": "No injuries were reported.",
        "link": "https://a.example/1",
        "published": "2023-10-19T08:00:00Z",
        "source": "wire-a",
    },
    {
        "title": "Talks resume on prisoner exchange",
        "summary": "",
        "link": "https://a.example/2",
        "published": "Thu, 19 Oct 2023 10:00:00 +0000",
        "source": "wire-a",
        "guid": "g-2",
    },
    {
        "title": "Shares close higher",
        "summary": "Tech led gains.",
        "link": "https://b.example/3?utm_source=x",
        "published": "2023-10-20",
        "source": "wire-b",
    },
]


def count(database_url: str) -> int:
    with session_on(database_url) as session:
        return series.count_items(session)


@both_backends
def test_jsonl_with_bad_lines(tmp_path: Path, write_config, database_url: str) -> None:
    config = write_config()
    lines = [
        json.dumps(GOOD[0]),
        "{not json",
        json.dumps({"title": "No date", "summary": "x"}),
        json.dumps(GOOD[1]),
        "",
        json.dumps({"title": "", "summary": "", "published": "2023-10-19"}),
        json.dumps({"title": "Bad date", "published": "yesterday-ish"}),
        json.dumps(GOOD[2]),
        "[1, 2]",
    ]
    archive = tmp_path / "archive.jsonl"
    archive.write_text("\n".join(lines) + "\n")
    result = run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "read 3, new 3, already stored 0, bad 5" in result.stdout
    for line, problem in [
        (2, "invalid JSON"),
        (3, "field 'published'"),
        (6, "field 'title' is empty"),
        (7, "unreadable date 'yesterday-ish'"),
        (9, "not an object"),
    ]:
        assert f"archive.jsonl:{line}: skipped: " in result.stderr and problem in result.stderr
    assert count(database_url) == 3
    again = run_cli("import", str(archive), "--quiet", "--config", str(config), cwd=tmp_path)
    assert "read 3, new 0, already stored 3, bad 5" in again.stdout
    assert count(database_url) == 3


@both_backends
def test_csv_import_shares_dedup_with_jsonl(tmp_path: Path, write_config, database_url: str) -> None:
    config = write_config()
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in GOOD) + "\n")
    csv_file = tmp_path / "b.csv"
    csv_file.write_text(
        "title,summary,link,published,source\n"
        "Shares close higher,Tech led gains.,https://b.example/3,2023-10-20,wire-b\n"
        '"Convoy ambushed, six killed",Gunmen opened fire.,https://c.example/9,2023-10-21T05:00:00Z,wire-c\n'
        "Too,many,fields,2023-10-21,x,y,z\n"
    )
    assert run_cli("import", str(jsonl), "--quiet", "--config", str(config), cwd=tmp_path).returncode == 0
    result = run_cli("import", str(csv_file), "--quiet", "--config", str(config), cwd=tmp_path)
    assert "read 2, new 1, already stored 1, bad 1" in result.stdout
    assert "b.csv:4: skipped: more fields than the header" in result.stderr
    assert count(database_url) == 4


def test_csv_without_required_columns_names_line_1(tmp_path: Path, write_config) -> None:
    config = write_config()
    bad = tmp_path / "bad.csv"
    bad.write_text("headline,date\nx,2023-10-01\n")
    result = run_cli("import", str(bad), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"monitor: error: {bad}:1: CSV header must name at least 'title' and 'published' (got ['headline', 'date'])"
    )


def test_read_records_keeps_order_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(GOOD[0]) + "\n\n" + "oops\n")
    records = list(read_records(path))
    assert isinstance(records[0], Record) and records[0].line == 1 and records[0].source == "wire-a"
    assert isinstance(records[1], BadRecord) and records[1].line == 3
