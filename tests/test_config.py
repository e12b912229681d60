"""Config validation: each mistake gives one line naming the key, and exit 2 from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_settings, parse_duration, parse_size, settings_from_mapping
from monitor.errors import ConfigError

FEED = {"id": "wire", "url": "https://example.org/rss.xml"}


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"poll": {"intervall": "5m"}}, "poll.intervall", "unknown key"),
        ({"feeds": [FEED, dict(FEED, url="https://example.org/2")]}, "feeds[1].id", "duplicate id 'wire'"),
        ({"feeds": [dict(FEED, url="ftp://example.org/rss")]}, "feeds[0].url", "not an http(s) URL"),
        ({"feeds": [dict(FEED, url="not a url")]}, "feeds[0].url", "not an http(s) URL"),
        ({"feeds": [dict(FEED, interval="soon")]}, "feeds[0].interval", "not a duration"),
        ({"feeds": [dict(FEED, interval="-5m")]}, "feeds[0].interval", "not a duration"),
        ({"feeds": [dict(FEED, id="Bad_ID")]}, "feeds[0].id", "not a valid id"),
        ({"feeds": [{"url": "https://example.org/rss"}]}, "feeds[0].id", "required key is missing"),
        ({"report": {"schedule": "61 6 * * 1"}}, "report.schedule", "not a cron expression"),
        ({"report": {"schedule": "every monday"}}, "report.schedule", "not a cron expression"),
        ({"theatres": [{"id": "gaza", "name": "Gaza", "terms": []}]}, "theatres[0].terms", "at least 1"),
        (
            {"theatres": [{"id": "a", "name": "A", "terms": ["x"]}, {"id": "a", "name": "B", "terms": ["y"]}]},
            "theatres[1].id",
            "duplicate id",
        ),
        ({"database": "mysql://localhost/db"}, "database", "unsupported database"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"fetch": {"max_bytes": "lots"}}, "fetch.max_bytes", "not a size"),
        ({"poll": {"max_concurrency": 0}}, "poll.max_concurrency", "greater than or equal to 1"),
        ({"feeds": "https://example.org/rss"}, "feeds", "valid tuple"),
    ],
)
def test_each_mistake_names_its_key(data: dict, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(data, "config.yaml")
    assert caught.value.key == key
    assert fragment in caught.value.problem
    assert str(caught.value).startswith(f"config.yaml: {key}: ")
    assert "\n" not in str(caught.value)


def test_defaults_are_complete_and_frozen() -> None:
    settings = settings_from_mapping({})
    assert settings.database == "sqlite:///monitor.db"
    assert settings.feeds == ()
    assert settings.poll.interval == 900
    assert settings.report.schedule == "0 6 * * 1"
    with pytest.raises(Exception, match="frozen"):
        settings.poll.interval = 5  # type: ignore[misc]


def test_durations_and_sizes() -> None:
    assert parse_duration("15m") == 900
    assert parse_duration("1h30m") == 5400
    assert parse_duration(45) == 45
    assert parse_size("10MB") == 10_000_000
    assert parse_size("512KiB") == 524_288


def test_environment_overrides_database(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database: sqlite:///a.db\nfeeds: []\n")
    settings = load_settings(path, {"MONITOR_DATABASE_URL": "sqlite:///b.db"})
    assert settings.database == "sqlite:///b.db"
    with pytest.raises(ConfigError, match="MONITOR_DATABASE_URL"):
        load_settings(path, {"MONITOR_DATABASE_URL": "oracle://x"})


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("feeds:\n  - id: a\n    url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: invalid YAML"):
        load_settings(path, {})


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "config.yaml"
    settings = load_settings(example, {})
    assert settings.feeds and settings.theatres
    assert {t.id for t in settings.theatres} >= {"iraq-syria", "red-sea"}


def test_cli_reports_bad_config_in_one_line_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("feeds:\n  - id: wire\n    url: https://example.org/rss\n    interval: often\n")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"monitor: error: {path}: feeds[0].interval: not a duration: 'often' (use e.g. 30s, 15m, 2h, 1d)"
    ]
    assert "Traceback" not in result.stderr
