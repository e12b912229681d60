"""fetch against a real local HTTP server: statuses, validators, limits; it never raises."""

from __future__ import annotations

import gzip
import socket
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import FeedServer, Route

from monitor.config import FetchConfig
from monitor.fetch import ErrorKind, Validators, fetch, make_client, parse_retry_after

BODY = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def config() -> FetchConfig:
    return FetchConfig(timeout=3, connect_timeout=2, max_bytes=100_000, max_redirects=5)


def get(server: FeedServer, path: str, config: FetchConfig, validators: Validators = Validators()):
    with make_client(config) as client:
        return fetch(client, server.url(path), validators, config)


def test_200_returns_body_and_validators(server: FeedServer, config: FetchConfig) -> None:
    server.routes["/f"] = Route(body=BODY, headers={"ETag": '"v1"', "Last-Modified": "Mon, 29 Jan 2024 10:00:00 GMT"})
    result = get(server, "/f", config)
    assert result.ok and result.status == 200 and result.body == BODY
    assert result.validators == Validators('"v1"', "Mon, 29 Jan 2024 10:00:00 GMT")
    assert "EscalationMonitor" in server.requests[0][1]["user-agent"]


def _conditional(handler: BaseHTTPRequestHandler) -> None:
    if handler.headers.get("If-None-Match") == '"v1"' or handler.headers.get("If-Modified-Since") == "LM":
        handler.send_response(304)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(BODY)))
    handler.end_headers()
    handler.wfile.write(BODY)


@pytest.mark.parametrize("validators", [Validators(etag='"v1"'), Validators(last_modified="LM")])
def test_304_with_etag_and_with_last_modified(server: FeedServer, config: FetchConfig, validators: Validators) -> None:
    server.routes["/c"] = Route(handler=_conditional)
    result = get(server, "/c", config, validators)
    assert result.ok and result.not_modified and result.status == 304 and result.body == b""
    sent = server.requests[-1][1]
    assert sent.get("if-none-match") == validators.etag or sent.get("if-modified-since") == validators.last_modified


def test_gzip_body_is_decompressed(server: FeedServer, config: FetchConfig) -> None:
    server.routes["/z"] = Route(body=BODY, gzip=True)
    result = get(server, "/z", config)
    assert result.ok and result.body == BODY


def test_redirects_followed_and_permanent_target_reported(server: FeedServer, config: FetchConfig) -> None:
    server.routes["/old"] = Route(status=301, headers={"Location": "/mid"})
    server.routes["/mid"] = Route(status=308, headers={"Location": "/new"})
    server.routes["/new"] = Route(body=BODY)
    server.routes["/temp"] = Route(status=302, headers={"Location": "/new"})
    permanent = get(server, "/old", config)
    assert permanent.ok and permanent.body == BODY and permanent.permanent_url == server.url("/new")
    temporary = get(server, "/temp", config)
    assert temporary.ok and temporary.permanent_url is None


def test_redirect_loop_is_an_error(server: FeedServer, config: FetchConfig) -> None:
    server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=302, headers={"Location": "/a"})
    result = get(server, "/a", config)
    assert result.error is ErrorKind.TOO_MANY_REDIRECTS
    assert server.hits("/a") + server.hits("/b") == config.max_redirects + 1


def test_size_cap_applies_after_decompression(server: FeedServer, config: FetchConfig) -> None:
    server.routes["/big"] = Route(body=b"x" * 200_000)
    server.routes["/bomb"] = Route(body=b"\0" * 5_000_000, gzip=True)
    assert get(server, "/big", config).error is ErrorKind.TOO_LARGE
    bomb = get(server, "/bomb", config)
    assert len(gzip.compress(b"\0" * 5_000_000)) < config.max_bytes
    assert bomb.error is ErrorKind.TOO_LARGE


def test_slow_trickle_hits_the_total_timeout(server: FeedServer) -> None:
    config = FetchConfig(timeout=1, connect_timeout=1, max_bytes=100_000)
    server.routes["/slow"] = Route(body=BODY, trickle=0.2)
    result = get(server, "/slow", config)
    assert result.error is ErrorKind.TIMEOUT
    assert result.elapsed < 3


def test_server_that_never_answers_times_out(server: FeedServer) -> None:
    config = FetchConfig(timeout=1, connect_timeout=1, max_bytes=100_000)
    server.routes["/hang"] = Route(body=BODY, delay=2.5)
    assert get(server, "/hang", config).error is ErrorKind.TIMEOUT


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ErrorKind.NOT_FOUND),
        (410, ErrorKind.GONE),
        (500, ErrorKind.SERVER_ERROR),
        (503, ErrorKind.SERVER_ERROR),
        (403, ErrorKind.CLIENT_ERROR),
        (429, ErrorKind.RATE_LIMITED),
    ],
)
def test_error_statuses(server: FeedServer, config: FetchConfig, status: int, kind: ErrorKind) -> None:
    server.routes["/e"] = Route(status=status, body=b"nope", headers={"Retry-After": "120"})
    result = get(server, "/e", config)
    assert result.error is kind and result.status == status
    assert result.retry_after == 120


def test_empty_body_and_refused_connection(server: FeedServer, config: FetchConfig) -> None:
    server.routes["/empty"] = Route(body=b"")
    assert get(server, "/empty", config).error is ErrorKind.EMPTY
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with make_client(config) as client:
        refused = fetch(client, f"http://127.0.0.1:{port}/feed", Validators(), config)
    assert refused.error is ErrorKind.CONNECTION


def test_retry_after_as_http_date() -> None:
    now = datetime(2024, 1, 29, 10, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 29 Jan 2024 10:05:00 GMT", now) == 300
    assert parse_retry_after("garbage", now) is None
