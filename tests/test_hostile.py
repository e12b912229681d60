"""Hostile feeds: each bad feed is recorded with the right error kind, the run goes on, and every item of
the good feed polled alongside is stored. A real local HTTP server serves them all in one poll."""

from __future__ import annotations

import random
import resource
import socket
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import FeedServer, Route, both_backends, feed_bytes
from sqlmodel import Session, select

from monitor import schema, service

NOW = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "eval" / "feedparser-fixtures"
SECRET = "TOP-SECRET-CONTENTS-4711"


def rss(items: str, head: str = "") -> bytes:
    channel = f"<channel><title>T</title>{items}</channel>"
    return f'<?xml version="1.0" encoding="utf-8"?>{head}<rss version="2.0">{channel}</rss>'.encode()


def item(guid: str, title: str = "A headline", date: str = "Mon, 29 Jan 2024 10:00:00 GMT") -> str:
    return f"<item><guid>{guid}</guid><title>{title}</title><link>https://h.example/{guid}</link><pubDate>{date}</pubDate></item>"


def zero_bomb(size: int) -> bytes:
    """Gzip of ``size`` zero bytes, built without ever holding them (about 2 MB on the wire for 2 GB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * 1_000_000
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + compressor.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cases(tmp_path: Path) -> dict[str, tuple[Route | str, set[str]]]:
    """path -> (what the server answers, or a URL; the acceptable outcomes "status:kind")."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    bomb = rss(
        item("b1", "&lol9;"),
        '<!DOCTYPE rss [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
        + "]>",
    )
    xxe = rss(item("x1", "&xxe;"), f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>')
    many = rss("".join(item(f"m{i}", f"Item {i}") for i in range(100_000)))
    return {
        "/bomb.xml": (Route(body=bomb), {"ok:", "error:not_a_feed"}),
        "/xxe.xml": (Route(body=xxe), {"ok:", "error:not_a_feed"}),
        "/html.xml": (
            Route(
                body=b"<!doctype html><html><body><h1>Welcome</h1></body></html>", headers={"Content-Type": "text/html"}
            ),
            {"error:not_a_feed"},
        ),
        "/empty.xml": (Route(body=b""), {"error:empty"}),
        "/huge.xml": (Route(body=b"<rss>" + b"x" * 50_000_000), {"error:too_large"}),
        "/gzbomb.xml": (
            Route(body=zero_bomb(2_000_000_000), headers={"Content-Encoding": "gzip"}),
            {"error:too_large"},
        ),
        "/trickle.xml": (Route(body=rss(item("t1")), trickle=0.5), {"error:timeout"}),
        "/loop.xml": (Route(status=302, headers={"Location": "/loop.xml"}), {"error:too_many_redirects"}),
        "/moved301.xml": (Route(status=301, headers={"Location": "/good.xml"}), {"ok:"}),
        "/moved308.xml": (Route(status=308, headers={"Location": "/good.xml"}), {"ok:"}),
        "/missing.xml": (Route(status=404), {"error:not_found"}),
        "/gone.xml": (Route(status=410), {"error:gone"}),
        "/busy-seconds.xml": (Route(status=429, headers={"Retry-After": "3600"}), {"error:rate_limited"}),
        "/busy-date.xml": (
            Route(status=429, headers={"Retry-After": "Fri, 02 Feb 2024 12:00:00 GMT"}),
            {"error:rate_limited"},
        ),
        "/broken500.xml": (Route(status=500), {"error:server_error"}),
        "/broken503.xml": (Route(status=503), {"error:server_error"}),
        "/refused.xml": (f"http://127.0.0.1:{free_port()}/feed.xml", {"error:connection"}),
        "/dates.xml": (
            Route(body=rss(item("d1", date="not a date") + item("d2", date="Sat, 01 Jan 2101 00:00:00 GMT"))),
            {"ok:"},
        ),
        "/dupes.xml": (Route(body=rss(item("same", "First") + item("same", "Second"))), {"ok:"}),
        "/bare.xml": (
            Route(body=rss("<item><description>No title, no link, no guid.</description></item><item></item>")),
            {"ok:"},
        ),
        "/many.xml": (Route(body=many), {"ok:", "error:too_large"}),
    }


@both_backends
def test_hostile_feeds_polled_beside_a_good_one(
    server: FeedServer, make_settings, engine, classifier, tmp_path: Path
) -> None:
    server.routes["/good.xml"] = Route(body=feed_bytes("rss2.xml"))
    table = cases(tmp_path)
    feeds = [{"id": "good", "url": server.url("/good.xml")}]
    for path, (answer, _) in table.items():
        if isinstance(answer, Route):
            server.routes[path] = answer
        feeds.append(
            {"id": path.strip("/").replace(".xml", ""), "url": answer if isinstance(answer, str) else server.url(path)}
        )
    settings = make_settings(
        feeds=feeds, fetch={"timeout": "3s", "connect_timeout": "2s"}, poll={"max_concurrency": 8, "per_host": 8}
    )
    service.sync_config(settings, engine, NOW)
    rss_before_mb = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20
    outcomes = {o.feed_id: o for o in service.poll_feeds(settings, engine, classifier, NOW, rng=random.Random(1))}
    # the two moved feeds redirect to the good one: its four items are stored once, by whichever finished first
    same = [outcomes[f] for f in ("good", "moved301", "moved308")]
    assert all(o.status == "ok" for o in same) and sum(o.new for o in same) == 4
    for path, (_, accepted) in table.items():
        outcome = outcomes[path.strip("/").replace(".xml", "")]
        assert f"{outcome.status}:{outcome.error_kind or ''}" in accepted, (path, outcome)
    with Session(engine) as session:
        titles = [i.title for i in session.exec(select(schema.Item))]
        feeds_by_id = {f.id: f for f in session.exec(select(schema.Feed))}
    assert not any(SECRET in t for t in titles)  # an external entity never reaches the database
    assert feeds_by_id["gone"].parked and feeds_by_id["broken500"].last_error_kind == "server_error"
    assert feeds_by_id["moved301"].url.endswith("/good.xml") and feeds_by_id["moved308"].url.endswith("/good.xml")
    assert sum(1 for t in titles if t in ("First", "Second")) == 1  # a GUID repeated inside one feed is one item
    assert "No title, no link, no guid." in titles
    assert outcomes["many"].new in (0, 100_000)
    # The peak is per process: what this poll may add is measured from the resident size before it.
    grown_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before_mb
    assert grown_mb < 400, f"the poll grew the peak RSS by {grown_mb:.0f} MB"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/eval is absent")
def test_feedparser_fixtures_never_stop_a_run(server: FeedServer, make_settings, engine, classifier) -> None:
    """Ill-formed, wrongly encoded and entity-laden files from feedparser's own suite, read in place."""
    server.routes["/good.xml"] = Route(body=feed_bytes("rss2.xml"))
    files = sorted(p for folder in ("illformed", "encoding", "entities") for p in (FIXTURES / folder).glob("*.xml"))
    feeds = [{"id": "good", "url": server.url("/good.xml")}]
    for number, path in enumerate(files):
        content_type = "application/xml; charset=utf-8" if "http_" not in path.name else "application/xml"
        server.routes[f"/f{number}.xml"] = Route(body=path.read_bytes(), headers={"Content-Type": content_type})
        feeds.append({"id": f"fixture-{number}", "url": server.url(f"/f{number}.xml")})
    settings = make_settings(feeds=feeds, poll={"max_concurrency": 16, "per_host": 16})
    service.sync_config(settings, engine, NOW)
    outcomes = service.poll_feeds(settings, engine, classifier, NOW, rng=random.Random(1))
    assert len(outcomes) == len(files) + 1 >= 300
    assert {o.status for o in outcomes} <= {"ok", "error"}
    assert not [o for o in outcomes if o.error_kind == "internal"]
    good = next(o for o in outcomes if o.feed_id == "good")
    assert good.new == 4


def test_gzip_bomb_costs_little_memory(server: FeedServer) -> None:
    from monitor.config import FetchConfig
    from monitor.fetch import ErrorKind, Validators, fetch, make_client

    config = FetchConfig(timeout=10, connect_timeout=2, max_bytes=5_000_000)
    server.routes["/bomb.gz"] = Route(body=zero_bomb(500_000_000), headers={"Content-Encoding": "gzip"})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with make_client(config) as client:
        result = fetch(client, server.url("/bomb.gz"), Validators(), config)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.error is ErrorKind.TOO_LARGE and grown_mb < 100
