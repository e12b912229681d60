"""``monitor``: a thin command line over the service jobs (see ../shared/CLI.md).

Only click and the standard library are imported at start-up; each command
imports what it needs, so ``monitor --help`` costs little more than Python.
Errors a user can cause print one line on stderr and exit 2 (usage, config,
input) or 1 (failures); they never print a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.classify import Classifier
    from monitor.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """A ``MonitorError`` as click reports it: one line, the error's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"monitor: error: {self.format_message()}", err=True)


class App:
    """What commands share: the config path, and lazily the settings, engine and model."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from monitor.config import find_config, load_settings

            self._settings = load_settings(find_config(self.config_path, os.environ))
        return self._settings

    def engine(self) -> Engine:
        """The configured database, its schema, feeds and theatre placements brought up to date."""
        from monitor import schema, service

        engine = schema.make_engine(self.settings.database)
        service.sync_config(self.settings, engine, service.utcnow())
        return engine

    def classifier(self) -> Classifier:
        from monitor.training import load_or_train

        return load_or_train(self.settings, lambda message: click.echo(message, err=True))


def guarded(command: F) -> F:
    """Turn ``MonitorError`` into one line and its exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from monitor.errors import MonitorError

        try:
            return command(*args, **kwargs)
        except MonitorError as exc:
            raise Failure(str(exc), exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def with_app(command: F) -> F:
    """Add ``--config PATH`` and pass an ``App`` as the first argument."""

    @click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Config file (default ./config.yaml, then $MONITOR_CONFIG).",
    )
    @functools.wraps(command)
    @guarded
    def wrapper(config_path: Path | None, **kwargs: Any) -> Any:
        return command(App(config_path), **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="escalation-monitor", prog_name="monitor")
def main() -> None:
    """Escalation Monitor: poll news feeds, label conflict events, flag escalation."""


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@main.command()
@click.option("--once", is_flag=True, required=True, help="Poll every enabled feed once and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@with_app
def poll(app: App, once: bool, as_json: bool) -> None:
    """Poll every enabled feed once, classify and store new items."""
    from dataclasses import asdict

    from monitor import service

    engine = app.engine()  # creates the schema and syncs feeds and theatres with the config
    outcomes = service.poll_feeds(app.settings, engine, app.classifier(), service.utcnow())
    if as_json:
        click.echo(json.dumps({"feeds": [asdict(o) for o in outcomes]}, indent=2))
        return
    rows = [
        (o.feed_id, o.status, o.new, o.seen, o.http_status or "-", o.error_kind or "", o.message[:60]) for o in outcomes
    ]
    click.echo(
        _table(rows, ("feed", "status", "new", "seen", "http", "error", "message"))
        if rows
        else "no enabled feeds in the config"
    )
    if outcomes and all(o.status == "error" for o in outcomes):
        raise Failure("every feed failed", 1)


@main.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@with_app
def import_(app: App, file: Path, quiet: bool) -> None:
    """Backfill archived items from JSON Lines or CSV (title, summary, link, published, source[, guid])."""
    from tqdm import tqdm

    from monitor import service
    from monitor.backfill import read_records

    records = read_records(file)
    engine = app.engine()
    classifier = app.classifier()
    with tqdm(desc=f"importing {file.name}", unit=" items", disable=quiet, file=sys.stderr) as bar:
        summary = service.import_items(app.settings, engine, classifier, records, service.utcnow(), progress=bar.update)
    for bad in summary.bad[:50]:
        click.echo(f"{file}:{bad.line}: skipped: {bad.problem}", err=True)
    if len(summary.bad) > 50:
        click.echo(f"{file}: … and {len(summary.bad) - 50} more bad lines", err=True)
    click.echo(f"read {summary.read}, new {summary.new}, already stored {summary.duplicate}, bad {len(summary.bad)}")


@main.command()
@click.argument("text", required=False)
@click.option("--input", "input_path", type=click.Path(path_type=Path), help="CSV with id + text, or title + summary.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), help="Where to write the labelled CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (single text only).")
@with_app
def classify(app: App, text: str | None, input_path: Path | None, output_path: Path | None, as_json: bool) -> None:
    """Label one TEXT, or a CSV with --input/--output."""
    from monitor.classify import Document

    if (text is None) == (input_path is None):
        raise click.UsageError("give either TEXT or --input IN.csv --output OUT.csv")
    if input_path is not None:
        if output_path is None:
            raise click.UsageError("--input needs --output")
        from monitor.tables import label_csv

        count = label_csv(app.classifier(), input_path, output_path)
        click.echo(f"labelled {count} rows -> {output_path}")
        return
    title, _, summary = (text or "").partition("\n")
    prediction = app.classifier().predict([Document(title, summary)])[0]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "label": prediction.label,
                    "scores": prediction.scores,
                    "evidence": list(prediction.evidence),
                    "note": prediction.note,
                }
            )
        )
        return
    click.echo(prediction.label)
    click.echo("scores: " + ", ".join(f"{k} {v:.3f}" for k, v in prediction.scores.items()))
    click.echo("evidence: " + ("; ".join(prediction.evidence) or "-"))
    if prediction.note:
        click.echo(f"note: {prediction.note}")


@main.command(name="eval")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the JSON shape of ../shared/CLI.md.")
@click.option(
    "--by",
    metavar="COLUMN",
    help="Also score each value of this column (e.g. a source's own event type), worst first: where "
    "disagreements come from.",
)
@with_app
def eval_(app: App, file: Path, as_json: bool, by: str | None) -> None:
    """Score the classifier on a labelled CSV (id + text, or title + summary, plus label)."""
    from monitor.metrics import format_report
    from monitor.training import score_file

    result = score_file(app.classifier(), file, by)
    click.echo(json.dumps(result.as_json(), indent=2) if as_json else format_report(result))


@main.command()
@click.option(
    "--tune-on",
    "tune_on",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A labelled development CSV to choose C and the decision offsets on (never trained on).",
)
@click.option(
    "--backend",
    type=click.Choice(["sparse", "embed"]),
    default=None,
    help="Which model to train (default: classifier.backend of the config).",
)
@with_app
def train(app: App, tune_on: Path | None, backend: str | None) -> None:
    """Retrain from seeds/ plus analyst corrections; write the model and its card."""
    from monitor import training

    say = functools.partial(click.echo, err=True)
    corrections = _stored_corrections(app)
    model, card = training.retrain(app.settings, corrections, say, tune_on, backend)
    click.echo(
        f"model {model.version}: {model.meta['n_train']} training items "
        f"({len(corrections)} corrections), {model.meta['n_features']} features"
    )
    click.echo(card.read_text(encoding="utf-8").split("## Metrics", 1)[1].strip())


def _stored_corrections(app: App) -> list[Any]:
    """Analyst corrections as training examples, from the configured database."""
    from sqlmodel import Session

    from monitor import store
    from monitor.training import Example

    with Session(app.engine()) as session:
        rows = store.corrections_with_text(session)
    return [Example(f"correction-{i}", title, summary, label) for i, title, summary, label in rows]


@main.command()
@click.argument("item_id", type=int)
@click.argument("label", type=click.Choice(["attack", "retaliation", "de-escalation", "other"]))
@with_app
def relabel(app: App, item_id: int, label: str) -> None:
    """Store an analyst's correction: it overrides the model for ITEM_ID and joins the next training."""
    from sqlmodel import Session

    from monitor import service, store, story_store

    with Session(app.engine()) as session, session.begin():
        if not store.add_correction(session, item_id, label, service.utcnow()):
            raise Failure(f"no item with id {item_id}", 1)
        story_store.refresh_story_of_item(session, item_id)
    click.echo(f"item {item_id}: {label} (analyst correction)")


@main.command()
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Folder for the demo database and outputs (its database is made afresh).",
)
@with_app
def demo(app: App, out_dir: Path) -> None:
    """Run the whole pipeline on the bundled offline feeds."""
    from monitor.demo import run_demo

    run_demo(out_dir, app.config_path, lambda line: click.echo(line))


import monitor.cli_data  # noqa: E402  (registers its commands on ``main``)
import monitor.cli_store  # noqa: E402, F401


def entry_point() -> None:
    """Console entry point."""
    try:
        main(prog_name="monitor")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
