"""``monitor`` commands that read and run the store: counts, chains, detect, report, status, run, feeds.

Registered on the group defined in ``cli.py``; like every command, each imports what it needs inside.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from monitor.cli import App, Failure, _table, main, with_app

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

    from monitor import story_store
    from monitor.theatres import matcher_from_config

    with Session(app.engine()) as session, session.begin():
        changed = story_store.reassign_theatres(session, matcher_from_config(app.settings.theatres).match)
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
    from monitor.hygiene import apply_hygiene

    if counts_file is not None:
        from monitor.tables import read_counts

        params = detectors.DetectParams(period=7, seasonal=False) if weekly else detectors.DetectParams()
        result = detectors.detect(read_counts(counts_file), params, since=since.date() if since else None)
        alerts = apply_hygiene(result.alerts)
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
                            "claimed_by": f.claimed_by,
                        }
                        for f in rows
                    ]
                },
                indent=1,
            )
        )
        return
    table = [
        (f.id, state[f.id], f.error_count, f.last_success_at or "never", f.next_check_at or "-", f.claimed_by or "")
        for f in rows
    ]
    header = ("feed", "state", "errors", "last success", "next check", "being polled by")
    click.echo(_table(table, header) if table else "no feeds")


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
