"""Read archived items from JSON Lines or CSV for ``monitor import``.

Each record needs ``title`` (or ``summary``) and ``published``; ``summary``,
``link``, ``source`` and ``guid`` are optional.  A bad record becomes a
``BadRecord`` naming its line and what is wrong; reading goes on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from monitor.errors import InputError

FIELDS = ("title", "summary", "link", "published", "source", "guid")


@dataclass(frozen=True)
class Record:
    line: int
    title: str
    summary: str
    link: str | None
    published: datetime
    source: str
    guid: str | None


@dataclass(frozen=True)
class BadRecord:
    line: int
    problem: str


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 or RFC 2822 (as feeds write it); naive means UTC."""
    value = value.strip()
    if not value:
        raise ValueError("empty date")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            raise ValueError(f"unreadable date {value!r} (use ISO 8601, e.g. 2024-01-28T09:30:00Z)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_record(line: int, raw: object, default_source: str) -> Record | BadRecord:
    if not isinstance(raw, dict):
        return BadRecord(line, "not an object with fields title, summary, link, published, source")
    values = {k: ("" if raw.get(k) is None else str(raw.get(k))).strip() for k in FIELDS}
    if not values["title"] and not values["summary"]:
        return BadRecord(line, "field 'title' is empty (and so is 'summary')")
    try:
        published = parse_timestamp(values["published"])
    except ValueError as exc:
        return BadRecord(line, f"field 'published': {exc}")
    return Record(
        line,
        values["title"],
        values["summary"],
        values["link"] or None,
        published,
        values["source"] or default_source,
        values["guid"] or None,
    )


def _jsonl(path: Path, source: str) -> Iterator[Record | BadRecord]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                yield BadRecord(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            yield to_record(number, raw, source)


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = [h.strip().lower() for h in next(csv.reader(handle), [])]
    if "title" not in header or "published" not in header:
        raise InputError(f"{path}:1: CSV header must name at least 'title' and 'published' (got {header})")
    return header


def _csv(path: Path, source: str, header: list[str]) -> Iterator[Record | BadRecord]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle, fieldnames=header)
        next(reader, None)
        try:
            for raw in reader:
                if None in raw:
                    yield BadRecord(reader.line_num, f"more fields than the header's {len(header)}")
                    continue
                yield to_record(reader.line_num, raw, source)
        except csv.Error as exc:
            yield BadRecord(reader.line_num, f"malformed CSV: {exc}")


def read_records(path: Path) -> Iterator[Record | BadRecord]:
    """Records of a ``.jsonl``/``.json``/``.ndjson`` or ``.csv`` file, in order."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    source = path.stem
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl(path, source)
    if suffix == ".csv":
        return _csv(path, source, _csv_header(path))
    raise InputError(f"{path}: unknown format {suffix!r}; use .jsonl or .csv")
