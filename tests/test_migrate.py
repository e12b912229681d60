"""Schema versions: a new database is made at the head, an old one is upgraded with nothing lost,
a database that is behind or ahead stops start-up with a message, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import both_backends, run_cli
from sqlalchemy import MetaData, text

from monitor import migrate, schema

ADDED_LATER = {("feed", "claimed_by"), ("story", "generation"), ("story_item", "generation")}
HEAD = schema.SCHEMA_VERSION
V1_TABLES = ("meta", "feed", "item", "label", "correction", "item_theatre", "story", "story_item",
             "story_theatre", "tally", "chain_link", "alert", "alert_delivery", "poll_log")  # fmt: skip


def _at(engine: Any, day: int, hour: int = 9) -> datetime:
    moment = datetime(2024, 1, day, hour, tzinfo=UTC)
    return moment if engine.dialect.name == "postgresql" else moment.replace(tzinfo=None)


def make_version_1(url: str, stamped: bool) -> Any:
    """A database as schema version 1 left it, with rows in every table (written through its own DDL)."""
    from alembic import command

    engine = schema.make_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrate._config(connection), "0001")
        if not stamped:  # made by the program before it used Alembic: no alembic_version table
            connection.execute(text("DROP TABLE alembic_version"))
    tables = MetaData()
    tables.reflect(engine)
    t = tables.tables
    at = lambda day, hour=9: _at(engine, day, hour)  # noqa: E731
    with engine.begin() as c:
        c.execute(t["feed"].insert(), [
            {"id": "wire", "url": "https://wire.example/rss", "name": "Wire", "enabled": True, "parked": False,
             "interval_s": 900, "error_count": 0, "next_check_at": at(3), "etag": '"abc"'}])  # fmt: skip
        c.execute(t["feed"].insert(), [
            {"id": "paper", "url": "https://paper.example/atom", "name": "Paper", "enabled": False, "parked": True,
             "interval_s": 1800, "error_count": 9, "last_error_kind": "gone", "last_error": "410"},
        ])  # fmt: skip
        items = [
            (1, "Drone strikes a base near Erbil", "attack", 2),
            (2, "Second drone attack on the base near Erbil", "attack", 2),
            (3, "US strikes depots in Iraq in reply to drone attacks", "retaliation", 3),
            (4, "Harbour reopens after repairs", "other", 3),
        ]
        c.execute(t["item"].insert(), [
            {"id": i, "key": f"k{i}", "feed_id": "wire", "source": "wire", "guid": f"g{i}",
             "link": f"https://wire.example/{i}", "title": title, "summary": f"Summary {i}.",
             "published_at": at(day), "fetched_at": at(day, 10)} for i, title, _, day in items
        ])  # fmt: skip
        c.execute(t["label"].insert(), [
            {"item_id": i, "label": label, "score_attack": 0.7, "score_retaliation": 0.1, "score_de_escalation": 0.1,
             "score_other": 0.1, "evidence": "drone", "note": "", "model_version": "lr-old", "labelled_at": at(day, 10)}
            for i, _, label, day in items
        ])  # fmt: skip
        c.execute(t["correction"].insert(), [{"item_id": 4, "label": "other", "created_at": at(4)}])
        c.execute(t["item_theatre"].insert(), [{"item_id": i, "theatre_id": "iraq-syria"} for i in (1, 2, 3)])
        c.execute(t["story"].insert(), [
            {"id": 1, "label": "attack", "first_at": at(2), "last_at": at(2, 11), "n_items": 2, "title": items[0][1]},
            {"id": 2, "label": "retaliation", "first_at": at(3), "last_at": at(3), "n_items": 1, "title": items[2][1]},
            {"id": 3, "label": "other", "first_at": at(3), "last_at": at(3), "n_items": 1, "title": items[3][1]},
        ])  # fmt: skip
        c.execute(
            t["story_item"].insert(), [{"item_id": i, "story_id": s} for i, s in ((1, 1), (2, 1), (3, 2), (4, 3))]
        )
        c.execute(t["story_theatre"].insert(), [{"story_id": s, "theatre_id": "iraq-syria"} for s in (1, 2)])
        c.execute(t["chain_link"].insert(), [{"retaliation_id": 2, "attack_id": 1, "lag_hours": 24.0, "score": 0.8}])
        c.execute(t["alert"].insert(), [
            {"id": 1, "theatre": "iraq-syria", "label": "attack", "day": datetime(2024, 1, 2).date(), "kind": "spike",
             "observed": 2, "expected": 0.2, "upper": 1, "p_value": 1e-4, "severity": "high", "created_at": at(2, 12)}
        ])  # fmt: skip
        c.execute(
            t["alert_delivery"].insert(), [{"alert_id": 1, "channel": "log", "delivered_at": at(2, 12), "attempts": 1}]
        )
        c.execute(t["poll_log"].insert(), [
            {"feed_id": "wire", "at": at(2, 10), "status": 200, "new": 2, "seen": 2, "not_modified": False,
             "duration_ms": 40}
        ])  # fmt: skip
    return engine


def snapshot(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every version-1 table, in its version-1 columns."""
    tables = MetaData()
    tables.reflect(engine, only=list(V1_TABLES))
    rows = {}
    with engine.connect() as connection:
        for name in V1_TABLES:
            table = tables.tables[name]
            columns = [c for c in table.c if (name, c.name) not in ADDED_LATER]
            rows[name] = [
                tuple(r)
                for r in connection.execute(
                    table.select().with_only_columns(*columns).order_by(*table.primary_key.columns)
                )
            ]
    return rows


@both_backends
@pytest.mark.parametrize("stamped", [True, False], ids=["alembic", "pre-alembic"])
def test_version_1_database_is_refused_then_upgraded_with_nothing_lost(
    database_url: str, stamped: bool, write_config, tmp_path: Path
) -> None:
    engine = make_version_1(database_url, stamped)
    before = snapshot(engine)
    assert sum(len(rows) for rows in before.values()) >= 25
    config = write_config(theatres=[{"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["erbil", "iraq"]}])

    refused = run_cli("counts", "--json", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 1
    assert f"schema is at version 1, older than this program's version {HEAD}" in refused.stderr
    assert "monitor migrate" in refused.stderr
    check = run_cli("migrate", "--check", "--config", str(config), cwd=tmp_path)
    assert check.returncode == 1 and "schema version 1" in check.stdout

    done = run_cli("migrate", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"upgraded from version 1 to version {HEAD}" in done.stdout
    after = snapshot(engine)
    assert after.pop("meta") == [("schema_version", str(HEAD))] and before.pop("meta") == [("schema_version", "1")]
    assert after == before
    with engine.connect() as connection:
        assert migrate.read_state(connection).current == f"{HEAD:04d}"
        assert connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() == str(HEAD)
        assert connection.execute(text("SELECT count(*) FROM feed WHERE claimed_by IS NULL")).scalar() == 2
        assert connection.execute(text("SELECT count(*) FROM story WHERE generation = 0")).scalar() == 3
        assert connection.execute(text("SELECT count(*) FROM story_item WHERE generation = 0")).scalar() == 4
    engine.dispose()

    again = run_cli("migrate", "--config", str(config), cwd=tmp_path)
    assert again.returncode == 0 and f"already at version {HEAD}" in again.stdout
    counts = run_cli("counts", "--json", "--theatre", "iraq-syria", "--config", str(config), cwd=tmp_path)
    assert counts.returncode == 0, counts.stderr
    series = {(p["label"], p["date"]): p["stories"] for p in json.loads(counts.stdout)["series"]}
    assert series[("attack", "2024-01-02")] == 1 and series[("retaliation", "2024-01-03")] == 1


@both_backends
def test_a_newer_database_is_refused(database_url: str, write_config, tmp_path: Path) -> None:
    engine = schema.make_engine(database_url)
    schema.init_db(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    engine.dispose()
    config = write_config()
    for command in (["status"], ["counts", "--json"], ["migrate"]):
        result = run_cli(*command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 1, (command, result.stdout)
        assert f"version 7, newer than this program's version {HEAD}" in result.stderr, command
        assert "Traceback" not in result.stderr


@both_backends
def test_new_database_matches_what_the_migrations_build(database_url: str, tmp_path: Path) -> None:
    """``create_all`` on a new database and the migration chain must give the same schema."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = schema.make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(migrate._config(connection), "head")
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
        assert migrate.read_state(connection).current == migrate.head_revision() == f"{schema.SCHEMA_VERSION:04d}"
    schema.init_db(engine)  # a migrated database is current: start-up accepts it
    engine.dispose()
