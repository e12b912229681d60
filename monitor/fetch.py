"""HTTP only: one conditional GET of a feed, bounded in size, time and redirects.

``fetch`` never raises for anything the network or a publisher can do: it
returns a ``FetchResult`` whose ``error`` is an ``ErrorKind``.  The body is
decompressed here, chunk by chunk with a ceiling, so a gzip bomb costs at
most ``max_bytes`` of memory.
"""

from __future__ import annotations

import enum
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from monitor.config import FetchConfig

_PERMANENT = {301, 308}


class ErrorKind(enum.StrEnum):
    """Why a fetch failed; stored against the feed."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    TLS = "tls"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    NOT_FOUND = "not_found"
    GONE = "gone"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    BAD_ENCODING = "bad_encoding"
    INVALID_URL = "invalid_url"
    EMPTY = "empty"
    NOT_A_FEED = "not_a_feed"


@dataclass(frozen=True)
class Validators:
    """What the last good response said, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    url: str
    final_url: str
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    not_modified: bool = False
    error: ErrorKind | None = None
    message: str = ""
    permanent_url: str | None = None
    retry_after: int | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag"), self.headers.get("last-modified"))


class _Abort(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def make_client(config: FetchConfig) -> httpx.Client:
    """One client per poll cycle; it is thread-safe and pools connections."""
    timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=config.max_redirects,
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
    )


def request_headers(validators: Validators) -> dict[str, str]:
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def parse_retry_after(value: str | None, now: datetime) -> int | None:
    """Seconds to wait, from a Retry-After of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, int((when - now).total_seconds()))


def _decoder(encoding: str) -> Callable[[bytes, int], bytes] | None:
    """A bounded decompressor for the Content-Encoding, or None for identity."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise _Abort(ErrorKind.BAD_ENCODING, f"unsupported Content-Encoding {encoding!r}")

    def decode(chunk: bytes, room: int) -> bytes:
        out = inflater.decompress(chunk, room + 1)
        if inflater.unconsumed_tail:
            raise _Abort(ErrorKind.TOO_LARGE, "body larger than the limit once decompressed")
        return out

    return decode


def _read_body(chunks: Iterator[bytes], encoding: str, limit: int, deadline: float) -> bytes:
    decode = _decoder(encoding)
    body = bytearray()
    try:
        for chunk in chunks:
            if time.monotonic() > deadline:
                raise _Abort(ErrorKind.TIMEOUT, "body not received within the time limit")
            room = limit - len(body)
            body += decode(chunk, room) if decode else chunk
            if len(body) > limit:
                raise _Abort(ErrorKind.TOO_LARGE, f"body larger than {limit} bytes")
    except zlib.error as exc:
        raise _Abort(ErrorKind.BAD_ENCODING, f"corrupt compressed body: {exc}") from None
    return bytes(body)


def _status_error(status: int) -> ErrorKind | None:
    if status < 400:
        return None
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 410:
        return ErrorKind.GONE
    if status == 429:
        return ErrorKind.RATE_LIMITED
    return ErrorKind.SERVER_ERROR if status >= 500 else ErrorKind.CLIENT_ERROR


def _permanent_target(response: httpx.Response) -> str | None:
    """The new URL when every hop was a permanent redirect."""
    if response.history and all(r.status_code in _PERMANENT for r in response.history):
        return str(response.url)
    return None


def _exception_kind(exc: httpx.HTTPError) -> ErrorKind:
    if isinstance(exc, httpx.TimeoutException):
        return ErrorKind.TIMEOUT
    if isinstance(exc, httpx.TooManyRedirects):
        return ErrorKind.TOO_MANY_REDIRECTS
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ErrorKind.INVALID_URL
    if isinstance(exc, httpx.DecodingError):
        return ErrorKind.BAD_ENCODING
    if "SSL" in str(exc) or "certificate" in str(exc).lower():
        return ErrorKind.TLS
    return ErrorKind.CONNECTION


def fetch(
    client: httpx.Client,
    url: str,
    validators: Validators,
    config: FetchConfig,
    now: datetime | None = None,
) -> FetchResult:
    """GET ``url`` conditionally; never raises for network or publisher faults."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    deadline = started + config.timeout
    try:
        with client.stream("GET", url, headers=request_headers(validators)) as response:
            return _complete(response, url, config, now, started, deadline)
    except _Abort as exc:
        return FetchResult(url, url, error=exc.kind, message=str(exc), elapsed=time.monotonic() - started)
    except httpx.HTTPError as exc:
        kind = _exception_kind(exc)
        return FetchResult(
            url, url, error=kind, message=f"{type(exc).__name__}: {exc}"[:500], elapsed=time.monotonic() - started
        )


def _complete(
    response: httpx.Response, url: str, config: FetchConfig, now: datetime, started: float, deadline: float
) -> FetchResult:
    headers = {k.lower(): v for k, v in response.headers.items()}
    base = FetchResult(
        url,
        str(response.url),
        response.status_code,
        headers=headers,
        permanent_url=_permanent_target(response),
        retry_after=parse_retry_after(headers.get("retry-after"), now),
    )
    if response.status_code == 304:
        return replace(base, not_modified=True, elapsed=time.monotonic() - started)
    kind = _status_error(response.status_code)
    if kind is not None:
        return replace(base, error=kind, message=f"HTTP {response.status_code}", elapsed=time.monotonic() - started)
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.max_bytes and not headers.get("content-encoding"):
        raise _Abort(ErrorKind.TOO_LARGE, f"Content-Length {declared} exceeds {config.max_bytes} bytes")
    body = _read_body(response.iter_raw(), headers.get("content-encoding", ""), config.max_bytes, deadline)
    if not body.strip():
        return replace(base, error=ErrorKind.EMPTY, message="empty body", elapsed=time.monotonic() - started)
    return replace(base, body=body, elapsed=time.monotonic() - started)
