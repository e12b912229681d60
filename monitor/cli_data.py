"""``monitor`` commands that look after the database itself: ``migrate`` and ``export``.

Registered on the group defined in ``cli.py``; each imports what it needs inside.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from monitor.cli import App, main, with_app
from monitor.cli_store import DAY, _theatre_scope


@main.command()
@click.option("--check", is_flag=True, help="Only say whether the database is current (exit 1 if it is not).")
@with_app
def migrate(app: App, check: bool) -> None:
    """Bring the database schema up to this program's version (Alembic migrations)."""
    from sqlalchemy.engine import make_url

    from monitor import migrate as migrations
    from monitor.schema import make_engine

    engine = make_engine(app.settings.database)
    where = make_url(app.settings.database).render_as_string(hide_password=True)
    try:
        if check:
            with engine.connect() as connection:
                state = migrations.read_state(connection)
            click.echo(f"{where}: schema {state.describe()}, this program's version {int(state.head)}")
            if state.current != state.head:
                raise click.exceptions.Exit(1)
            return
        before, after = migrations.upgrade(engine)
    finally:
        engine.dispose()
    if before.current == after.current:
        click.echo(f"{where}: schema already at {after.describe()}")
    else:
        click.echo(f"{where}: schema upgraded from {before.describe()} to {after.describe()}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("export"),
    show_default=True,
    help="Folder for items, stories and counts files.",
)
@click.option("--theatre", "theatre", help="Counts for this theatre only (default: global and every theatre).")
@click.option("--since", type=DAY, help="First day (YYYY-MM-DD) of items, stories and counts.")
@click.option("--until", type=DAY, help="Last day (YYYY-MM-DD).")
@with_app
def export(
    app: App, fmt: str, out_dir: Path, theatre: str | None, since: datetime | None, until: datetime | None
) -> None:
    """Export items, stories and daily counts as CSV or Parquet; print each file and its rows."""
    from zoneinfo import ZoneInfo

    from sqlmodel import Session

    from monitor.export import export as write_export

    theatres = _theatre_scope(app, theatre)
    engine = app.engine()
    with Session(engine) as session:
        written = write_export(
            session,
            out_dir,
            fmt,
            theatres,
            ZoneInfo(app.settings.timezone),
            since.date() if since else None,
            until.date() if until else None,
        )
    for path, rows in written:
        click.echo(f"{path}\t{rows} rows")
