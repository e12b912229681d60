"""``monitor export``: items, stories and daily counts as CSV or Parquet, for analysts' own tools.

Three tables, each one file in the output folder: ``items`` (every stored item with its effective
label, the model's label and scores, the analyst's correction if any, its story and theatres),
``stories`` (one row per story with its theatres) and ``counts`` (the zero-filled daily series that
``monitor counts`` prints). Rows are streamed from the database in batches, so an export of millions
of items runs in bounded memory. Times are ISO 8601 in UTC; lists are joined with ``;``.
Parquet needs the optional ``pyarrow`` (``pip install 'escalation-monitor[parquet]'``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from monitor.errors import InputError
from monitor.schema import Correction, Item, ItemTheatre, Label, Story, StoryItem, StoryTheatre, as_utc
from monitor.series import count_series

BATCH = 5000
FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, kind) with kind in str, int, float, bool, time, date


ITEMS = Table(
    "items",
    (
        ("item_id", "int"),
        ("published_at", "time"),
        ("fetched_at", "time"),
        ("source", "str"),
        ("feed_id", "str"),
        ("title", "str"),
        ("summary", "str"),
        ("link", "str"),
        ("label", "str"),
        ("model_label", "str"),
        ("corrected", "bool"),
        ("score_attack", "float"),
        ("score_retaliation", "float"),
        ("score_de_escalation", "float"),
        ("score_other", "float"),
        ("evidence", "str"),
        ("model_version", "str"),
        ("story_id", "int"),
        ("theatres", "str"),
    ),
)
STORIES = Table(
    "stories",
    (
        ("story_id", "int"),
        ("label", "str"),
        ("first_at", "time"),
        ("last_at", "time"),
        ("items", "int"),
        ("title", "str"),
        ("theatres", "str"),
    ),
)
COUNTS = Table(
    "counts", (("theatre", "str"), ("label", "str"), ("date", "date"), ("stories", "int"), ("mentions", "int"))
)


def _places(session: Session, owner: Any, theatre: Any) -> dict[int, str]:
    found: dict[int, list[str]] = {}
    for key, place in session.execute(select(owner, theatre).order_by(owner, theatre)):
        found.setdefault(int(key), []).append(str(place))
    return {key: ";".join(places) for key, places in found.items()}


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    return [
        c
        for c in (column >= as_utc(since) if since else None, column < as_utc(until) if until else None)
        if c is not None
    ]


def item_rows(session: Session, since: datetime | None, until: datetime | None) -> Iterator[tuple[Any, ...]]:
    places = _places(session, ItemTheatre.item_id, ItemTheatre.theatre_id)
    statement = (
        select(Item, Label, Correction.label, StoryItem.story_id)
        .join(Label, col(Label.item_id) == col(Item.id))
        .outerjoin(Correction, col(Correction.item_id) == col(Item.id))
        .outerjoin(StoryItem, col(StoryItem.item_id) == col(Item.id))
        .where(*_window(col(Item.published_at), since, until))
        .order_by(col(Item.id))
        .execution_options(yield_per=BATCH)
    )
    for item, label, corrected, story_id in session.execute(statement):
        yield (
            item.id, as_utc(item.published_at), as_utc(item.fetched_at), item.source, item.feed_id, item.title,
            item.summary, item.link, corrected or label.label, label.label, corrected is not None,
            label.score_attack, label.score_retaliation, label.score_de_escalation, label.score_other,
            label.evidence, label.model_version, story_id, places.get(int(item.id or 0), ""),
        )  # fmt: skip


def story_rows(session: Session, since: datetime | None, until: datetime | None) -> Iterator[tuple[Any, ...]]:
    places = _places(session, StoryTheatre.story_id, StoryTheatre.theatre_id)
    statement = (
        select(Story)
        .where(*_window(col(Story.first_at), since, until))
        .order_by(col(Story.id))
        .execution_options(yield_per=BATCH)
    )
    for (story,) in session.execute(statement):
        sid = int(story.id or 0)
        yield (
            sid,
            story.label,
            as_utc(story.first_at),
            as_utc(story.last_at),
            story.n_items,
            story.title,
            places.get(sid, ""),
        )


def count_rows(
    session: Session, theatres: Sequence[str | None], zone: ZoneInfo, since: date | None, until: date | None
) -> Iterator[tuple[Any, ...]]:
    for p in count_series(session, theatres, zone, since, until):
        yield p.theatre or "", p.label, p.date, p.stories, p.mentions


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def write_csv(path: Path, table: Table, rows: Iterable[tuple[Any, ...]]) -> int:
    written = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([name for name, _ in table.columns])
        for row in rows:
            writer.writerow([_cell(v) for v in row])
            written += 1
    return written


def _arrow_schema(table: Table) -> Any:
    import pyarrow as pa

    kinds = {
        "str": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "time": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }
    return pa.schema([(name, kinds[kind]) for name, kind in table.columns])


def write_parquet(path: Path, table: Table, rows: Iterable[tuple[Any, ...]]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("Parquet export needs pyarrow: pip install 'escalation-monitor[parquet]'") from None
    schema = _arrow_schema(table)
    written = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[tuple[Any, ...]] = []
        for row in [*rows, None]:
            if row is not None:
                batch.append(row)
            if batch and (row is None or len(batch) >= BATCH):
                columns = list(zip(*batch))
                writer.write_table(
                    pa.Table.from_arrays([pa.array(c, t) for c, t in zip(columns, schema.types)], schema=schema)
                )
                written, batch = written + len(batch), []
    return written


def export(
    session: Session,
    out_dir: Path,
    fmt: str,
    theatres: Sequence[str | None],
    zone: ZoneInfo,
    since: date | None = None,
    until: date | None = None,
) -> list[tuple[Path, int]]:
    """Write the three tables to ``out_dir``; return each file with its row count."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (choose csv or parquet)")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = datetime.combine(since, time.min, zone) if since else None
    end = datetime.combine(until + timedelta(days=1), time.min, zone) if until else None
    writer = write_csv if fmt == "csv" else write_parquet
    plan = [
        (ITEMS, item_rows(session, start, end)),
        (STORIES, story_rows(session, start, end)),
        (COUNTS, count_rows(session, theatres, zone, since, until)),
    ]
    return [(out_dir / f"{t.name}.{fmt}", writer(out_dir / f"{t.name}.{fmt}", t, rows)) for t, rows in plan]
