"""The command line through its real entry point: help everywhere, fast start, contract shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FeedServer, Route, feed_bytes, run_cli

from monitor.cli import main

COMMANDS = sorted(
    [name] if not hasattr(command, "commands") else [f"{name} {sub}" for sub in command.commands]
    for name, command in main.commands.items()
)


@pytest.mark.parametrize("command", [c for group in COMMANDS for c in group])
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = run_cli(*command.split(), "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage: monitor " + command in result.stdout
    assert "--config" in result.stdout


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from monitor.cli import main; "
        "heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'statsmodels', 'matplotlib', 'sklearn', 'numpy', "
        "'httpx', 'feedparser', 'pydantic', 'apscheduler') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "monitor", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "monitor, version" in result.stdout


def test_poll_once_table_and_json(server: FeedServer, write_config, tmp_path: Path) -> None:
    server.routes["/rss.xml"] = Route(body=feed_bytes("rss2.xml"))
    server.routes["/dead.xml"] = Route(status=404)
    config = write_config(
        feeds=[{"id": "desk", "url": server.url("/rss.xml")}, {"id": "dead", "url": server.url("/dead.xml")}]
    )
    table = run_cli("poll", "--once", "--config", str(config), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["feed", "status", "new", "seen", "http", "error", "message"]
    assert lines[2].split()[:6] == ["dead", "error", "0", "0", "404", "not_found"]
    assert lines[3].split()[:5] == ["desk", "ok", "4", "0", "200"]
    again = run_cli("poll", "--once", "--json", "--config", str(config), cwd=tmp_path)
    feeds = {f["feed_id"]: f for f in json.loads(again.stdout)["feeds"]}
    assert feeds["desk"]["new"] == 0 and feeds["desk"]["seen"] == 4
    assert feeds["dead"]["error_kind"] == "not_found"


def test_parked_feed_is_listed_and_re_enabled(server: FeedServer, write_config, tmp_path: Path) -> None:
    server.routes["/gone.xml"] = Route(status=410)
    config = write_config(feeds=[{"id": "gone", "url": server.url("/gone.xml")}])
    run_cli("poll", "--once", "--config", str(config), cwd=tmp_path)
    listed = json.loads(run_cli("feeds", "list", "--json", "--config", str(config), cwd=tmp_path).stdout)["feeds"]
    assert [(f["id"], f["state"], f["claimed_by"]) for f in listed] == [("gone", "parked", None)]
    status = run_cli("status", "--config", str(config), cwd=tmp_path).stdout
    assert "parked: gone: gone HTTP 410" in status
    assert run_cli("feeds", "enable", "gone", "--config", str(config), cwd=tmp_path).returncode == 0
    listed = json.loads(run_cli("feeds", "list", "--json", "--config", str(config), cwd=tmp_path).stdout)["feeds"]
    assert listed[0]["state"] == "ok" and listed[0]["errors"] == 0
    assert run_cli("feeds", "enable", "nope", "--config", str(config), cwd=tmp_path).returncode == 1


def test_poll_requires_once(tmp_path: Path) -> None:
    result = run_cli("poll", cwd=tmp_path)
    assert result.returncode == 2 and "--once" in result.stderr


def test_unknown_command_is_usage_error(tmp_path: Path) -> None:
    result = run_cli("frobnicate", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
