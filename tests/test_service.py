"""Polling end to end against a real local server: store, re-poll, broken feeds, schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from conftest import FeedServer, Route, both_backends, feed_bytes
from sqlmodel import Session, select

from monitor import schema, series, service, store
from monitor.fetch import ErrorKind, FetchResult, Validators

NOW = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)


def feeds_settings(make_settings, server: FeedServer, *paths: str):
    return make_settings(feeds=[{"id": p.strip("/").replace(".", "-"), "url": server.url(p)} for p in paths])


def poll(settings, engine, classifier, now=NOW):
    service.sync_config(settings, engine, now)
    return {o.feed_id: o for o in service.poll_feeds(settings, engine, classifier, now, rng=random.Random(1))}


@both_backends
def test_poll_stores_good_feeds_and_records_the_broken_one(server, make_settings, engine, classifier) -> None:
    server.routes["/rss.xml"] = Route(body=feed_bytes("rss2.xml"), headers={"Content-Type": "application/rss+xml"})
    server.routes["/atom.xml"] = Route(body=feed_bytes("atom.xml"), gzip=True)
    server.routes["/broken.xml"] = Route(status=500, body=b"oops")
    server.routes["/page.xml"] = Route(
        body=b"<html><body>Not a feed</body></html>", headers={"Content-Type": "text/html"}
    )
    settings = feeds_settings(make_settings, server, "/rss.xml", "/atom.xml", "/broken.xml", "/page.xml")
    outcomes = poll(settings, engine, classifier)
    assert (outcomes["rss-xml"].status, outcomes["rss-xml"].new) == ("ok", 4)
    assert (outcomes["atom-xml"].status, outcomes["atom-xml"].new) == ("ok", 3)
    assert outcomes["broken-xml"].error_kind == "server_error"
    assert outcomes["page-xml"].error_kind == "not_a_feed"
    with Session(engine) as session:
        assert series.count_items(session) == 7
        broken = session.get(schema.Feed, "broken-xml")
        assert broken.error_count == 1 and broken.last_error_kind == "server_error" and broken.last_error
        good = session.get(schema.Feed, "rss-xml")
        assert good.error_count == 0 and good.last_success_at is not None
        labels = session.exec(select(schema.Label)).all()
        assert len(labels) == 7 and all(lbl.model_version == classifier.version for lbl in labels)
        assert len(session.exec(select(schema.PollLog)).all()) == 4


@both_backends
def test_repoll_changes_nothing_and_uses_validators(server, make_settings, engine, classifier) -> None:
    server.routes["/rss.xml"] = Route(body=feed_bytes("rss2.xml"), headers={"ETag": '"abc"'})
    settings = feeds_settings(make_settings, server, "/rss.xml")
    first = poll(settings, engine, classifier)
    second = poll(settings, engine, classifier, NOW + timedelta(hours=1))
    assert first["rss-xml"].new == 4
    assert (second["rss-xml"].new, second["rss-xml"].seen) == (0, 4)
    assert server.requests[-1][1].get("if-none-match") == '"abc"'
    with Session(engine) as session:
        assert series.count_items(session) == 4


@both_backends
def test_a_failing_feed_keeps_what_was_stored(server, make_settings, engine, classifier) -> None:
    server.routes["/rss.xml"] = Route(body=feed_bytes("rss2.xml"))
    settings = feeds_settings(make_settings, server, "/rss.xml")
    poll(settings, engine, classifier)
    server.routes["/rss.xml"] = Route(body=b"<rss><channel><item><title>half", headers={})
    server.routes["/rss.xml"] = Route(status=503)
    outcome = poll(settings, engine, classifier, NOW + timedelta(hours=1))["rss-xml"]
    assert outcome.error_kind == "server_error"
    with Session(engine) as session:
        assert series.count_items(session) == 4


@both_backends
def test_permanent_redirect_updates_the_stored_url(server, make_settings, engine, classifier) -> None:
    server.routes["/moved.xml"] = Route(status=301, headers={"Location": "/rss.xml"})
    server.routes["/rss.xml"] = Route(body=feed_bytes("rss2.xml"))
    settings = feeds_settings(make_settings, server, "/moved.xml")
    poll(settings, engine, classifier)
    with Session(engine) as session:
        assert session.get(schema.Feed, "moved-xml").url == server.url("/rss.xml")


@both_backends
def test_gone_parks_the_feed(server, make_settings, engine, classifier) -> None:
    server.routes["/gone.xml"] = Route(status=410)
    settings = feeds_settings(make_settings, server, "/gone.xml")
    poll(settings, engine, classifier)
    with Session(engine) as session:
        assert session.get(schema.Feed, "gone-xml").parked
        assert store.active_feeds(session) == []


def _ref(errors: int = 0) -> service.FeedRef:
    return service.FeedRef("f", "http://x/", Validators(), 900, errors)


def test_next_check_honours_ttl_cache_control_retry_after_and_backoff(settings) -> None:
    rng = random.Random(0)
    no_jitter = settings.model_copy(update={"poll": settings.poll.model_copy(update={"jitter": 0.0})})
    ok = FetchResult("u", "u", 200, headers={"cache-control": "public, max-age=3600"})
    assert service.plan_next_check(no_jitter, _ref(), ok, None, NOW, rng) == (NOW + timedelta(seconds=3600), 0)
    assert service.plan_next_check(no_jitter, _ref(), FetchResult("u", "u", 200), 7200, NOW, rng)[0] == NOW + timedelta(
        hours=2
    )
    limited = FetchResult("u", "u", 429, error=ErrorKind.RATE_LIMITED, retry_after=50_000)
    assert service.plan_next_check(no_jitter, _ref(), limited, None, NOW, rng) == (NOW + timedelta(seconds=50_000), 1)
    failed = FetchResult("u", "u", 500, error=ErrorKind.SERVER_ERROR)
    waits = [service.plan_next_check(no_jitter, _ref(n), failed, None, NOW, rng)[0] - NOW for n in range(6)]
    assert waits == sorted(waits) and waits[-1] == timedelta(seconds=settings.poll.backoff_max)
    jittered = service.plan_next_check(settings, _ref(), FetchResult("u", "u", 200), None, NOW, rng)[0] - NOW
    assert timedelta(seconds=900) <= jittered <= timedelta(seconds=990)
