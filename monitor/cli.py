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

    now = service.utcnow()
    engine = app.engine()
    service.sync_config(app.settings, engine, now)
    outcomes = service.poll_feeds(app.settings, engine, app.classifier(), now)
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
@with_app
def eval_(app: App, file: Path, as_json: bool) -> None:
    """Score the classifier on a labelled CSV (id + text, or title + summary, plus label)."""
    from monitor.metrics import format_report
    from monitor.training import score_file

    result = score_file(app.classifier(), file)
    click.echo(json.dumps(result.as_json(), indent=2) if as_json else format_report(result))


@main.command()
@click.option(
    "--tune-on",
    "tune_on",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A labelled development CSV to choose C and the decision offsets on (never trained on).",
)
@with_app
def train(app: App, tune_on: Path | None) -> None:
    """Retrain from seeds/ plus analyst corrections; write the model and its card."""
    from monitor import training

    say = functools.partial(click.echo, err=True)
    corrections = _stored_corrections(app)
    model, card = training.retrain(app.settings, corrections, say, tune_on)
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

    from monitor import service, store

    with Session(app.engine()) as session, session.begin():
        if not store.add_correction(session, item_id, label, service.utcnow()):
            raise Failure(f"no item with id {item_id}", 1)
        store.refresh_story_of_item(session, item_id)
    click.echo(f"item {item_id}: {label} (analyst correction)")


DAY = click.DateTime(formats=["%Y-%m-%d"])


@main.command()
@click.option("--theatre", "theatre", help="Only this theatre (default: the global series and every theatre).")
@click.option("--since", type=DAY, help="First day (YYYY-MM-DD); default: the first day with data.")
@click.option("--until", type=DAY, help="Last day (YYYY-MM-DD); default: the last day with data.")
@click.option("--by", type=click.Choice(["day", "week"]), default="day", show_default=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"series": [...]} (../shared/CLI.md).')
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: theatre,label,date,stories,mentions.")
@with_app
def counts(app: App, theatre: str | None, since: Any, until: Any, by: str, as_json: bool, as_csv: bool) -> None:
    """The count series: stories and mentions per theatre, label and day (or ISO week), zero-filled."""
    from zoneinfo import ZoneInfo

    from sqlmodel import Session

    from monitor.series import count_series

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    theatres = _theatre_scope(app, theatre)
    with Session(app.engine()) as session:
        points = count_series(
            session,
            theatres,
            ZoneInfo(app.settings.timezone),
            since.date() if since else None,
            until.date() if until else None,
            by,
        )
    if as_json:
        click.echo(json.dumps({"series": [p.as_json() for p in points]}, indent=1))
    elif as_csv:
        click.echo("theatre,label,date,stories,mentions")
        for p in points:
            click.echo(f"{p.theatre or ''},{p.label},{p.date.isoformat()},{p.stories},{p.mentions}")
    else:
        click.echo(_pivot(points))


def _theatre_scope(app: App, theatre: str | None) -> list[str | None]:
    known = [t.id for t in app.settings.theatres]
    if theatre is None:
        return [None, *known]
    if theatre not in known:
        raise click.BadParameter(
            f"unknown theatre {theatre!r}; configured: {', '.join(known) or 'none'}", param_hint="--theatre"
        )
    return [theatre]


def _pivot(points: Sequence[Any]) -> str:
    """One row per (theatre, date): stories/mentions for each label."""
    from monitor.classify import LABELS

    rows: dict[tuple[str, str], dict[str, str]] = {}
    for p in points:
        rows.setdefault((p.theatre or "(all)", p.date.isoformat()), {})[p.label] = f"{p.stories}/{p.mentions}"
    body = [(t, d, *(cells.get(label, "0/0") for label in LABELS)) for (t, d), cells in rows.items()]
    return _table(body, ("theatre", "date", *LABELS)) + "\n(stories/mentions)" if body else "no data"


@main.command()
@click.option("--theatre", "theatre", help="Only retaliations in this theatre.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_app
def chains(app: App, theatre: str | None, as_json: bool) -> None:
    """Retaliation chains: each retaliation story and the attacks of the previous 14 days it answers."""
    from sqlmodel import Session

    from monitor.series import chains as load_chains

    with Session(app.engine()) as session:
        views = load_chains(session, theatre=theatre)
    if as_json:
        click.echo(json.dumps({"chains": [v.as_json() for v in views]}, indent=1))
        return
    rows = [
        (v.retaliation_at.date(), v.retaliation_title[:60], f"{v.lag_hours:g} h", v.attack_title[:60]) for v in views
    ]
    click.echo(_table(rows, ("date", "retaliation", "lag", "answers attack")) if rows else "no chains")


@main.command()
@with_app
def retheatre(app: App) -> None:
    """Re-assign every stored item and story to theatres under the current config (no re-fetching)."""
    from sqlmodel import Session

    from monitor import store
    from monitor.theatres import matcher_from_config

    with Session(app.engine()) as session, session.begin():
        changed = store.reassign_theatres(session, matcher_from_config(app.settings.theatres).match)
    click.echo(f"theatres re-assigned; {changed} items changed")


@main.command()
@click.option(
    "--counts", "counts_file", type=click.Path(path_type=Path), help="Score a bare series: date,count[,volume]."
)
@click.option("--theatre", "theatre", help="Only this theatre's series (stored counts).")
@click.option("--since", type=DAY, help="First day to score (default: 90 days before --until).")
@click.option("--until", type=DAY, help="Last day to score (default: today).")
@click.option("--weekly", is_flag=True, help="With --counts: the series is weekly (no day-of-week terms).")
@click.option("--json", "as_json", is_flag=True, help='Print {"alerts": [...]} (../shared/CLI.md).')
@click.option("--deliver", is_flag=True, help="Also deliver new alerts to the configured channels (once each).")
@with_app
def detect(
    app: App,
    counts_file: Path | None,
    theatre: str | None,
    since: Any,
    until: Any,
    weekly: bool,
    as_json: bool,
    deliver: bool,
) -> None:
    """Run the spike, shift and trend detectors on stored counts, or on a bare series with --counts."""
    from monitor import detect as detectors
    from monitor import service

    if counts_file is not None:
        from monitor.tables import read_counts

        params = detectors.DetectParams(period=7, seasonal=False) if weekly else detectors.DetectParams()
        result = detectors.detect(read_counts(counts_file), params, since=since.date() if since else None)
        alerts = detectors.apply_hygiene(result.alerts)
    else:
        theatres = None if theatre is None else _theatre_scope(app, theatre)
        found = service.detect_now(
            app.settings,
            app.engine(),
            service.utcnow(),
            theatres,
            since.date() if since else None,
            until.date() if until else None,
        )
        alerts = sorted((a for d in found for a in d.result.alerts), key=lambda a: (a.date, a.p_value))
        if deliver:
            from monitor.alerts import deliver_pending

            made = deliver_pending(app.settings, app.engine(), service.utcnow())
            click.echo(f"{made} alert deliveries made", err=True)
    if as_json:
        click.echo(json.dumps({"alerts": [a.as_json() for a in alerts]}, indent=1))
        return
    rows = [
        (
            a.date,
            a.theatre or "-",
            a.label or "-",
            a.kind,
            f"{a.observed:g}",
            f"{a.expected:.1f}",
            f"{a.upper:g}",
            f"{a.p_value:.2g}",
            a.severity,
        )
        for a in alerts
    ]
    header = ("date", "theatre", "label", "kind", "observed", "expected", "upper", "p", "severity")
    click.echo(_table(rows, header) if rows else "no alerts")


@main.command()
@click.option("--week", "week_text", help="ISO week, e.g. 2024-W05 (default: the last complete week).")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Folder (default: report.dir)."
)
@click.option("--theatre", "theatres", multiple=True, help="Only these theatres (repeatable).")
@with_app
def report(app: App, week_text: str | None, out_dir: Path | None, theatres: tuple[str, ...]) -> None:
    """Write the weekly PDF and PNGs; print the paths written, the PDF last."""
    from monitor import service, weekly

    try:
        week = weekly.parse_week(week_text) if week_text else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from None
    for theatre in theatres:
        _theatre_scope(app, theatre)
    paths = weekly.write_report(app.settings, app.engine(), service.utcnow(), week, out_dir, list(theatres) or None)
    for path in paths:
        click.echo(str(path))


@main.command()
@with_app
def run(app: App) -> None:
    """Run the service in the foreground (for systemd): poll, detect, report, until SIGTERM or SIGINT."""
    from monitor import runner

    runner.configure_logging(app.settings)
    runner.run(app.settings, app.engine(), app.classifier())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_app
def status(app: App, as_json: bool) -> None:
    """Service and feed health: last and next poll, failing and parked feeds, today's items, open alerts."""
    from zoneinfo import ZoneInfo

    from sqlmodel import Session

    from monitor import service
    from monitor.series import health

    with Session(app.engine()) as session:
        state = health(session, service.utcnow(), ZoneInfo(app.settings.timezone))
    if as_json:
        click.echo(json.dumps(state.as_json(), indent=1))
        return
    click.echo(f"last poll: {state.last_poll or 'never'}; next poll: {state.next_poll or 'none scheduled'}")
    click.echo(f"feeds: {len(state.feeds_ok)} ok, {len(state.feeds_failing)} failing, {len(state.feeds_parked)} parked")
    for kind, rows in (("failing", state.feeds_failing), ("parked", state.feeds_parked)):
        for feed_id, error_kind, message in rows:
            click.echo(f"  {kind}: {feed_id}: {error_kind} {message[:80]}")
    click.echo(
        f"today: {state.items_today} items, {state.stories_today} stories; alerts in the last 7 days: "
        f"{state.open_alerts}"
    )


@main.group()
def feeds() -> None:
    """List feeds and their health; re-enable a parked feed."""


@feeds.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_app
def feeds_list(app: App, as_json: bool) -> None:
    """Every stored feed: state, errors, last success, next check."""
    from sqlmodel import Session

    from monitor import store

    with Session(app.engine()) as session:
        rows = store.all_feeds(session)
    state = {
        f.id: "parked" if f.parked else ("disabled" if not f.enabled else ("failing" if f.error_count else "ok"))
        for f in rows
    }
    if as_json:
        click.echo(
            json.dumps(
                {
                    "feeds": [
                        {
                            "id": f.id,
                            "url": f.url,
                            "state": state[f.id],
                            "errors": f.error_count,
                            "last_error": f.last_error,
                            "next_check": str(f.next_check_at),
                        }
                        for f in rows
                    ]
                },
                indent=1,
            )
        )
        return
    table = [(f.id, state[f.id], f.error_count, f.last_success_at or "never", f.next_check_at or "-") for f in rows]
    click.echo(_table(table, ("feed", "state", "errors", "last success", "next check")) if table else "no feeds")


@feeds.command(name="enable")
@click.argument("feed_id")
@with_app
def feeds_enable(app: App, feed_id: str) -> None:
    """Re-enable a parked feed: clear its errors and poll it at the next tick."""
    from sqlmodel import Session

    from monitor import service, store

    with Session(app.engine()) as session, session.begin():
        if not store.enable_feed(session, feed_id, service.utcnow()):
            raise Failure(f"no feed with id {feed_id!r}", 1)
    click.echo(f"feed {feed_id}: enabled, due now")


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


def entry_point() -> None:
    """Console entry point."""
    try:
        main(prog_name="monitor")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
