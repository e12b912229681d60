"""Shared fixtures: a real local HTTP server, temporary databases, a small trained model."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# A PostgreSQL server for the PostgreSQL variant of the storage tests (``.ci/run`` starts one and sets this).
POSTGRES_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"]


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up on purpose (the hostile-feed tests) are expected: no traceback for them."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


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

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
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


class Hook:
    """A webhook endpoint: records each POSTed JSON body; can fail the first few."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        body = json.loads(handler.rfile.read(length))
        with self.lock:
            self.bodies.append(body)
            failing = len(self.bodies) <= self.fail_first
        handler.send_response(500 if failing else 204)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


@pytest.fixture
def post_server(server: FeedServer):
    original = server.httpd.RequestHandlerClass

    class WithPost(original):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            server.routes[self.path].handler(self)

    server.httpd.RequestHandlerClass = WithPost
    return server


def feed_bytes(name: str) -> bytes:
    return (DATA / "feeds" / name).read_bytes()


def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new empty database on the test server for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's database: a temporary SQLite file, or with ``parametrize("database_url", BACKENDS,
    indirect=True)`` also a fresh PostgreSQL database (skipped only when no server URL is given)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set MONITOR_TEST_POSTGRES_URL (.ci/run does)")
    yield from fresh_postgres_database(POSTGRES_URL)


@contextmanager
def session_on(url: str) -> Iterator[Any]:
    """A session on ``url`` whose engine is disposed afterwards (an open psycopg connection left to the
    garbage collector is a ResourceWarning, an error under this suite's warning filter)."""
    from sqlmodel import Session

    eng = schema.make_engine(url)
    try:
        with Session(eng) as session:
            yield session
    finally:
        eng.dispose()


both_backends = pytest.mark.parametrize("database_url", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def mini_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained once from the small test corpus, saved where settings point."""
    folder = tmp_path_factory.mktemp("model")
    model = train_model(read_corpus(DATA / "labelled"))
    model.save(folder / "classifier.npz")
    return folder


@pytest.fixture
def make_settings(tmp_path: Path, mini_model_dir: Path, database_url: str) -> Callable[..., Settings]:
    """Settings with the test's database (see ``database_url``) and the small test model."""

    def build(**overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "database": database_url,
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
def write_config(tmp_path: Path, mini_model_dir: Path, database_url: str) -> Callable[..., Path]:
    """Write a YAML config (the test's database, the test model) and return its path."""
    import yaml

    def write(**data: Any) -> Path:
        base: dict[str, Any] = {
            "database": database_url,
            "classifier": {"model_dir": str(mini_model_dir), "seeds_dir": str(DATA)},
            "report": {"dir": str(tmp_path / "reports")},
            "fetch": {"timeout": "5s", "connect_timeout": "2s"},
        }
        base.update(data)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(base))
        return path

    return write


def start_service(config: Path, cwd: Path, quiet: bool = False, log: Path | None = None) -> Any:
    """``monitor run`` as a real subprocess (stderr captured unless ``quiet``, or written to ``log``)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    stderr: Any = log.open("w") if log is not None else subprocess.DEVNULL if quiet else subprocess.PIPE
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env=env,
        )
    finally:
        if log is not None:
            stderr.close()  # the child has its own descriptor


def wait_for(condition: Callable[[], bool], seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False
