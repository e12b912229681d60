"""Shared fixtures: a real local HTTP server, temporary databases, a small trained model."""

from __future__ import annotations

import gzip
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor import schema
from monitor.classify import Classifier
from monitor.config import Settings, settings_from_mapping
from monitor.training import model_path, read_corpus, train_model

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass
class Route:
    """What the server answers on one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    gzip: bool = False
    delay: float = 0.0
    trickle: float = 0.0  # seconds between bytes
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 with per-path routes and a request log."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                    return
                server.answer(self, route)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p.split("?")[0] == path)

    def answer(self, handler: BaseHTTPRequestHandler, route: Route) -> None:
        if route.handler:
            route.handler(handler)
            return
        if route.delay:
            time.sleep(route.delay)
        body = gzip.compress(route.body) if route.gzip else route.body
        handler.send_response(route.status)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        if route.gzip:
            handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            if route.trickle:
                for i in range(len(body)):
                    handler.wfile.write(body[i : i + 1])
                    handler.wfile.flush()
                    time.sleep(route.trickle)
            else:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    yield srv
    srv.close()


def feed_bytes(name: str) -> bytes:
    return (DATA / "feeds" / name).read_bytes()


@pytest.fixture(scope="session")
def mini_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained once from the small test corpus, saved where settings point."""
    folder = tmp_path_factory.mktemp("model")
    model = train_model(read_corpus(DATA / "labelled"))
    model.save(folder / "classifier.npz")
    return folder


@pytest.fixture
def make_settings(tmp_path: Path, mini_model_dir: Path) -> Callable[..., Settings]:
    """Settings with a temporary SQLite database and the small test model."""

    def build(**overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "database": f"sqlite:///{tmp_path / 'test.db'}",
            "classifier": {"model_dir": str(mini_model_dir), "seeds_dir": str(DATA)},
            "report": {"dir": str(tmp_path / "reports")},
            "fetch": {"timeout": "5s", "connect_timeout": "2s"},
        }
        data.update(overrides)
        return settings_from_mapping(data, "test")

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def classifier(settings: Settings) -> Classifier:
    return Classifier.load(model_path(settings))


@pytest.fixture
def engine(settings: Settings) -> Iterator[Any]:
    eng = schema.make_engine(settings.database)
    schema.init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A scratch folder with the test corpus as ``seeds/labelled``."""
    target = tmp_path / "proj"
    shutil.copytree(DATA / "labelled", target / "seeds" / "labelled")
    return target


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """Run the real ``monitor`` entry point in a subprocess."""
    import os
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )


@pytest.fixture
def write_config(tmp_path: Path, mini_model_dir: Path) -> Callable[..., Path]:
    """Write a YAML config (temporary database, the test model) and return its path."""
    import yaml

    def write(**data: Any) -> Path:
        base: dict[str, Any] = {
            "database": f"sqlite:///{tmp_path / 'cli.db'}",
            "classifier": {"model_dir": str(mini_model_dir), "seeds_dir": str(DATA)},
            "report": {"dir": str(tmp_path / "reports")},
            "fetch": {"timeout": "5s", "connect_timeout": "2s"},
        }
        base.update(data)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(base))
        return path

    return write


def start_service(config: Path, cwd: Path, quiet: bool = False) -> Any:
    """``monitor run`` as a real subprocess (stderr captured unless ``quiet``)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if quiet else subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(condition: Callable[[], bool], seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False
