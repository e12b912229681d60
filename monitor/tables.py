"""CSV tables the user hands us: texts to label or score (``id`` + ``text``, or
``title`` + ``summary``) and bare count series (``date,count[,volume]``).

Reading checks the header and every row; a problem names the file, line and
column.  Used by ``monitor classify --input``, ``monitor eval`` and
``monitor detect --counts``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from monitor.classify import LABELS, Classifier, Document
from monitor.detect import Series
from monitor.errors import InputError

BATCH = 5000


@dataclass(frozen=True)
class Row:
    line: int
    id: str
    document: Document
    label: str | None
    original: dict[str, str]


def _columns(path: Path, header: list[str], need_label: bool) -> None:
    if "text" not in header and "title" not in header:
        raise InputError(f"{path}:1: header needs a 'text' column or 'title' (+ 'summary'); got {header}")
    if need_label and "label" not in header:
        raise InputError(f"{path}:1: header needs a 'label' column to score against; got {header}")


def read_rows(path: Path, need_label: bool = False) -> Iterator[Row]:
    """Rows of a labelled or unlabelled CSV; a bad row raises ``InputError`` naming it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        _columns(path, header, need_label)
        reader.fieldnames = header
        try:
            for number, raw in enumerate(reader, start=1):
                yield _row(path, reader.line_num, number, raw, header, need_label)
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None


def _row(path: Path, line: int, number: int, raw: dict[str, str], header: list[str], need_label: bool) -> Row:
    if None in raw:
        raise InputError(f"{path}:{line}: more fields than the header's {len(header)} columns")
    if "text" in header:
        document = Document(raw.get("text") or "")
    else:
        document = Document(raw.get("title") or "", raw.get("summary") or "")
    label = (raw.get("label") or "").strip() or None
    if need_label and label not in LABELS:
        raise InputError(f"{path}:{line}: column 'label': {label!r} is not one of {', '.join(LABELS)}")
    return Row(line, (raw.get("id") or str(number)).strip(), document, label, {k: v or "" for k, v in raw.items()})


def label_csv(classifier: Classifier, source: Path, target: Path) -> int:
    """Write ``source``'s rows to ``target`` with label, a score per label and evidence."""
    rows = list(read_rows(source))
    columns = list(rows[0].original) if rows else ["id", "text"]
    extra = ["label"] + [f"score_{label}" for label in LABELS] + ["evidence"]
    columns = [c for c in columns if c not in extra] + extra
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            for row, p in zip(chunk, classifier.predict([r.document for r in chunk])):
                out = dict(row.original, label=p.label, evidence="; ".join(p.evidence))
                out.update({f"score_{k}": f"{v:.4f}" for k, v in p.scores.items()})
                writer.writerow(out)
    return len(rows)


def read_counts(path: Path) -> Series:
    """A bare count series from CSV: ``date,count`` and optional ``volume``; a bad row names its line."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    dates: list[date] = []
    counts: list[int] = []
    volumes: list[float] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if "date" not in header or "count" not in header:
            raise InputError(f"{path}:1: header needs 'date' and 'count' columns (optional 'volume'); got {header}")
        reader.fieldnames = header
        for raw in reader:
            day, count, volume = _count_row(path, reader.line_num, raw, "volume" in header)
            if dates and day <= dates[-1]:
                raise InputError(f"{path}:{reader.line_num}: column 'date': {day} is not after {dates[-1]}")
            dates.append(day)
            counts.append(count)
            volumes.append(volume)
    if not dates:
        raise InputError(f"{path}: no rows")
    return Series(tuple(dates), tuple(counts), tuple(volumes) if "volume" in header else None)


def _count_row(path: Path, line: int, raw: dict[str, str], has_volume: bool) -> tuple[date, int, float]:
    try:
        day = date.fromisoformat((raw.get("date") or "").strip())
    except ValueError:
        raise InputError(f"{path}:{line}: column 'date': {raw.get('date')!r} is not a date (YYYY-MM-DD)") from None
    try:
        count = int((raw.get("count") or "").strip())
        if count < 0:
            raise ValueError
    except ValueError:
        raise InputError(f"{path}:{line}: column 'count': {raw.get('count')!r} is not a whole number >= 0") from None
    volume = 1.0
    if has_volume:
        try:
            volume = float((raw.get("volume") or "").strip())
        except ValueError:
            raise InputError(f"{path}:{line}: column 'volume': {raw.get('volume')!r} is not a number") from None
    return day, count, volume
