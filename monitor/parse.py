"""Bytes -> ``ParsedFeed`` via feedparser.  Pure: no I/O, no clock (``now`` is passed).

Malformed input is data: feedparser's ``bozo`` flag and message travel with
the result, and a document that is not a feed at all gives ``is_feed=False``.
Every item gets a stable key (sha256 of its GUID, else of its canonical link,
else of title + summary) so re-polls and re-imports never double count.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_TITLE = 500
MAX_SUMMARY = 4000
FUTURE_TOLERANCE = timedelta(minutes=10)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|ocid|cmpid|_ga|ref|ref_src|smid|at_\w+)$", re.I
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ParsedItem:
    key: str
    guid: str | None
    link: str | None
    title: str
    summary: str
    published: datetime


@dataclass(frozen=True)
class ParsedFeed:
    items: tuple[ParsedItem, ...]
    title: str = ""
    is_feed: bool = True
    bozo: bool = False
    bozo_message: str = ""
    ttl: int | None = None  # seconds, from the feed's own <ttl>


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, skipping scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def clean_text(text: str, limit: int) -> str:
    """Control characters out, whitespace folded, NFC, cut at ``limit`` on a word."""
    text = unicodedata.normalize("NFC", _CONTROL.sub(" ", text))
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + "…"
    return text


def strip_html(fragment: str) -> str:
    """Plain text of an HTML fragment (entities decoded)."""
    if "<" not in fragment and "&" not in fragment:
        return fragment
    extractor = _TextExtractor()
    try:
        extractor.feed(fragment)
        extractor.close()
    except (AssertionError, ValueError):
        return html.unescape(re.sub(r"<[^>]*>", " ", fragment))
    return "".join(extractor.parts)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, default port or tracking parameters."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    if port and not ((parts.scheme == "http" and port == 80) or (parts.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", urlencode(sorted(query)), ""))


def item_key(guid: str | None, link: str | None, title: str, summary: str) -> str:
    """sha256 of the GUID, else the canonical link, else title + summary."""
    if guid and guid.strip():
        basis = "guid:" + guid.strip()
    elif link and link.strip():
        basis = "link:" + canonical_url(link)
    else:
        basis = "text:" + title.strip().lower() + "\n" + summary.strip().lower()
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def normalise_date(value: datetime | None, now: datetime) -> datetime:
    """UTC; missing -> ``now``; in the future -> ``now``; before 1990 -> ``now``."""
    if value is None:
        return now
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value > now + FUTURE_TOLERANCE or value < EARLIEST:
        return now
    return value


def _struct_to_datetime(value: time.struct_time | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def _entry_date(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        raw = dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)  # no feedparser key aliasing
        found = _struct_to_datetime(raw)
        if found is not None:
            return found
    return None


def _entry_summary(entry: Mapping[str, Any]) -> str:
    summary = entry.get("summary") or ""
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value", "")
    return str(summary)


def build_item(
    guid: str | None, link: str | None, title: str, summary: str, published: datetime | None, now: datetime
) -> ParsedItem | None:
    """Raw fields (HTML allowed) -> a clean, keyed ``ParsedItem``; None when there is no text at all.

    Polled entries and imported records both come through here, so they are keyed and cleaned alike.
    """
    summary = clean_text(strip_html(summary), MAX_SUMMARY)
    title = clean_text(strip_html(title), MAX_TITLE)
    if not title and not summary:
        return None
    if not title:
        title = clean_text(summary, 160)
    guid = (guid or "").strip()[:1000] or None
    raw_link = (link or "").strip()[:2000]
    link = raw_link if raw_link.lower().startswith(("http://", "https://")) else None
    return ParsedItem(item_key(guid, link, title, summary), guid, link, title, summary, normalise_date(published, now))


def parse_entry(entry: Mapping[str, Any], now: datetime) -> ParsedItem | None:
    """One feedparser entry -> ``ParsedItem``; None when it has no text at all."""
    return build_item(
        str(entry.get("id") or ""),
        str(entry.get("link") or ""),
        str(entry.get("title") or ""),
        _entry_summary(entry),
        _entry_date(entry),
        now,
    )


def _ttl_seconds(feed: Mapping[str, Any]) -> int | None:
    ttl = str(feed.get("ttl") or "").strip()
    return int(ttl) * 60 if ttl.isdigit() and 0 < int(ttl) < 100_000 else None


def parse(body: bytes, url: str, headers: Mapping[str, str], now: datetime) -> ParsedFeed:
    """Parse fetched bytes; never raises for malformed input."""
    import feedparser

    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    try:
        result = feedparser.parse(io.BytesIO(body), response_headers=response_headers, sanitize_html=False)
    except Exception as exc:  # feedparser is not supposed to raise; a bug there is still data here
        return ParsedFeed((), is_feed=False, bozo=True, bozo_message=f"parser failed: {exc}"[:500])
    bozo_message = str(result.get("bozo_exception") or "")[:500] if result.get("bozo") else ""
    if not result.get("version") and not result.entries:
        return ParsedFeed((), is_feed=False, bozo=True, bozo_message=bozo_message or "not an RSS/Atom/RDF feed")
    items = _unique(p for p in (parse_entry(e, now) for e in result.entries) if p is not None)
    title = clean_text(strip_html(str(result.feed.get("title") or "")), MAX_TITLE)
    return ParsedFeed(tuple(items), title, True, bool(result.get("bozo")), bozo_message, _ttl_seconds(result.feed))


def _unique(items: Any) -> list[ParsedItem]:
    """First occurrence of each key (a feed may repeat a GUID)."""
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            unique.append(item)
    return unique
