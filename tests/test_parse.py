"""parse on RSS 2.0, Atom and RDF fixtures; malformed input is data, not an exception."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import feed_bytes

from monitor.parse import canonical_url, item_key, parse, strip_html

NOW = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)


def test_rss2() -> None:
    feed = parse(feed_bytes("rss2.xml"), "https://testdesk.example/rss", {"content-type": "application/rss+xml"}, NOW)
    assert feed.is_feed and not feed.bozo and feed.title == "Test Desk World"
    assert len(feed.items) == 4 and feed.ttl == 1800
    first, second, _, undated = feed.items
    assert first.published == datetime(2024, 1, 28, 6, 30, tzinfo=UTC)
    assert first.guid == "td-0001"
    assert second.summary == "Negotiators met for a second day & said progress was made."
    assert undated.published == NOW


def test_atom() -> None:
    feed = parse(feed_bytes("atom.xml"), "https://harbourtest.example/atom", {}, NOW)
    assert feed.items[0].title.startswith("US and UK jets strike")
    strike, freight, future = feed.items
    assert strike.summary == "Strikes hit sixteen sites, officials said."
    assert strike.published == datetime(2024, 1, 12, 2, 10, tzinfo=UTC)
    assert freight.link is None and freight.summary.startswith("Spot rates")
    assert freight.published == datetime(2024, 1, 11, 15, 45, tzinfo=UTC)
    assert future.published == NOW


def test_rdf() -> None:
    feed = parse(feed_bytes("rdf.xml"), "https://rdftest.example/rss", {}, NOW)
    assert len(feed.items) == 2
    assert feed.items[0].published == datetime(2023, 11, 24, 8, 0, tzinfo=UTC)
    assert feed.items[1].link == "https://rdftest.example/n/2"


def test_html_page_is_not_a_feed() -> None:
    page = b"<!doctype html><html><head><title>Hi</title></head><body><p>Welcome</p></body></html>"
    feed = parse(page, "https://x.example/", {"content-type": "text/html"}, NOW)
    assert not feed.is_feed and feed.bozo and not feed.items


def test_malformed_feed_keeps_its_items_and_says_bozo() -> None:
    broken = feed_bytes("rss2.xml").replace(b"</channel>", b"<unclosed></channel>")
    feed = parse(broken, "https://testdesk.example/rss", {}, NOW)
    assert feed.bozo and feed.bozo_message
    assert len(feed.items) == 4


def test_item_keys_prefer_guid_then_canonical_link_then_text() -> None:
    assert item_key("g1", "https://a/x", "t", "s") == item_key("g1", "https://b/y", "u", "v")
    tracked = "https://News.Example:443/a?utm_source=rss&id=7&fbclid=zz#top"
    assert canonical_url(tracked) == "https://news.example/a?id=7"
    assert item_key(None, tracked, "t", "s") == item_key(None, "https://news.example/a?id=7", "x", "y")
    assert item_key(None, None, "Title ", "Sum") == item_key(None, None, "title", "sum")
    assert item_key(None, None, "Title", "Sum") != item_key(None, None, "Title", "Other")


def test_strip_html_drops_scripts_and_decodes_entities() -> None:
    assert strip_html("<p>A &amp; B</p><script>x()</script><style>p{}</style>") == " A & B"
