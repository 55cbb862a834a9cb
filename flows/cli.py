"""The ``pmo`` command line: sync, backfill, migrate, inspect runs, check configuration, run the demo.

``pmo sync`` and ``pmo backfill`` run the same ``flows.runner.run`` the Prefect flows use, in-process
with progress bars, then reconcile and refresh the marts as the flows do; scheduled runs go through the
Prefect deployments in ``prefect.yaml``.

Every failure is one plain line on stderr, whether or not a terminal is attached; the exit codes are
in ``EXIT_CODES`` (and ``pmo --help``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, select

from connectors.base import Window
from flows import config as cfg
from flows import mappings
from flows.marts import print_rag, run_refresh
from flows.runner import AnyStream, failure_lines, run, run_streams
from flows.warehouse import open_for_cli
from warehouse.db import describe, masked, resolve_url
from warehouse.grants import GrantError, grant_readonly
from warehouse.marts.refresh import MartResult
from warehouse.runlock import SourceBusy
from warehouse.schema import sync_run
from warehouse.sync import RunSummary

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3  # and 0: every stream synced
EXIT_CODES = (
    "Exit codes: 0 all streams synced; 1 a stream or source failed (one line each on stderr);"
    " 2 usage or configuration error; 3 refused: another run holds a source and nothing else failed;"
    " 4 the warehouse cannot be opened (wrong password, host down, unusable URL)."
)

app = typer.Typer(
    help="pmo-sync: one reconciled warehouse from Jira, Microsoft Project/Planner and ERP exports.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
)
db_app = typer.Typer(help="Warehouse schema.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration file.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(mappings.app, name="mappings")
app.command()(mappings.reconcile)
console = Console(width=None if Console().is_terminal else 150)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file (TOML).")]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Warehouse URL; default PMO_WAREHOUSE_URL, then [warehouse] url, then sqlite:///pmo_warehouse.db",
    ),
]
MassDeleteOpt = Annotated[
    bool,
    typer.Option(
        "--allow-mass-delete",
        help="Let deletion scans retire more than 20% of a source's live rows (a real mass deletion).",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for another run holding a source, then exit 3."),
]


def fail(line: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Say what went wrong in one plain line on stderr (no markup: logs and cron mails read it)."""
    typer.echo(line, err=True)
    return typer.Exit(code)


def _load(config: Path) -> cfg.Config:
    """The configuration; each problem in it is a line on stderr, then exit 2."""
    try:
        return cfg.load(config)
    except cfg.ConfigError as e:
        raise _problems(e) from None


def _problems(e: cfg.ConfigError) -> typer.Exit:
    """Each configuration problem as a plain line on stderr; the caller raises the exit (2)."""
    for p in e.problems:
        typer.echo(p, err=True)
    return typer.Exit(EXIT_USAGE)


def _engine(config: Path, database_url: str | None) -> Engine:
    """For commands that work without a configuration file (db upgrade, runs): migrated, or exit."""
    configured = _load(config).configured_url if config.exists() else None
    return open_for_cli(database_url, configured)


def _run_streams(
    config: cfg.Config,
    streams: list[AnyStream],
    mode: str,
    window: Window,
    url: str | None,
    allow_mass_delete: bool = False,
    wait: float = 0.0,
) -> list[RunSummary]:
    """Run the streams with progress bars; each failure ends as one line on stderr, then exit 1 or 3."""
    engine = open_for_cli(url, config.configured_url)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:

        def one(s: AnyStream) -> RunSummary:
            bar = progress.add_task(f"{s.source}/{s.name}", total=None, rows=0)

            def rows(_what: str, n: int) -> None:
                progress.update(bar, rows=n)

            try:
                summary = run(engine, s, mode, window, rows, allow_mass_delete, wait)
            except Exception:
                progress.update(bar, description=f"[red]{s.source}/{s.name} failed", total=1, completed=1)
                raise
            progress.update(bar, total=1, completed=1, rows=summary.rows_read)
            return summary

        outcomes = list(run_streams(engine, streams, one, mode, window))
    summaries = [o.result for o in outcomes if o.result is not None]
    if summaries:
        _print_summaries(summaries)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        engine.dispose()
        for line in failure_lines(failed):
            typer.echo(line, err=True)
        console.print("A stream failed (see `pmo runs`): reconciliation and marts skipped.")
        busy = all(isinstance(o.error, SourceBusy) for o in failed)
        raise typer.Exit(EXIT_BUSY if busy else EXIT_FAILED)
    after_sync(config, engine)
    engine.dispose()
    return summaries


def after_sync(config: cfg.Config, engine: Engine) -> None:
    """What follows every successful sync: reconciliation, then the marts (as in the nightly flow)."""
    try:
        mappings.reconcile_and_report(config, engine)
    except ValueError as e:  # an unreadable decisions file
        console.print(f"[red]✗[/red] {e}")
        raise typer.Exit(2) from None
    result = _refresh_marts(config, engine)
    console.print(f"Marts refreshed as of {result.as_of}: {result.seconds:.2f} s.")


def _refresh_marts(config: cfg.Config, engine: Engine) -> MartResult:
    """``[marts]`` was validated when the configuration loaded, so this only fails on the database."""
    with console.status("Refreshing the BI marts …"):
        return run_refresh(engine, config)


def _print_summaries(summaries: list[RunSummary]) -> None:
    t = Table("source", "stream", "read", "written", "deleted", "quarantined", "requests", title="This run")
    for s in summaries:
        t.add_row(
            s.source,
            s.stream,
            *(
                f"{v:,}"
                for v in (s.rows_read, s.rows_written, s.rows_deleted, s.rows_quarantined, s.requests)
            ),
        )
    console.print(t)


@app.command()
def sync(
    config: ConfigOpt = Path("pmo.toml"),
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    database_url: UrlOpt = None,
    allow_mass_delete: MassDeleteOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Incremental sync of every configured source (or one)."""
    c = _load(config)
    streams = _streams(c, source)
    _run_streams(c, streams, "incremental", Window(), database_url, allow_mass_delete, wait)


def _streams(c: cfg.Config, source: str | None, stream: str | None = None) -> list[AnyStream]:
    """The streams to run; an unknown source or stream, or an unresolvable secret, is a usage error."""
    try:
        return c.streams(source, stream)
    except cfg.ConfigError as e:
        raise fail("; ".join(e.problems), EXIT_USAGE) from None


@app.command()
def backfill(
    source: str,
    since: Annotated[datetime, typer.Option(help="Window start (inclusive).")],
    until: Annotated[datetime, typer.Option(help="Window end (exclusive).")],
    stream: Annotated[str | None, typer.Option(help="Only this stream.")] = None,
    config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
    allow_mass_delete: MassDeleteOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """Reload a window for one source without moving the nightly watermark."""
    since, until = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (since, until))
    if since >= until:
        raise fail(f"--since {since} must be before --until {until}", EXIT_USAGE)
    c = _load(config)
    streams = _streams(c, source, stream)
    _run_streams(c, streams, "backfill", Window(since, until), database_url, allow_mass_delete, wait)


@app.command()
def marts(
    config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
    refresh: Annotated[bool, typer.Option(help="Rebuild the marts first (as the nightly run does).")] = True,
) -> None:
    """Refresh the BI marts and print the portfolio RAG table."""
    c = _load(config)
    engine = open_for_cli(database_url, c.configured_url)
    if refresh:
        _refresh_marts(c, engine)
    print_rag(engine, console)
    engine.dispose()


@db_app.command("upgrade")
def db_upgrade(database_url: UrlOpt = None, config: ConfigOpt = Path("pmo.toml")) -> None:
    """Migrate the warehouse to the latest schema."""
    engine = _engine(config, database_url)
    console.print(f"[green]✓[/green] {describe(engine)} is at the latest schema")


@db_app.command("grant-readonly")
def db_grant_readonly(
    role: Annotated[str, typer.Argument(help="An existing PostgreSQL role (LOGIN) for the BI tool.")],
    database_url: UrlOpt = None,
    config: ConfigOpt = Path("pmo.toml"),
) -> None:
    """Let ROLE read the marts and rpt_* views, and nothing else (PostgreSQL)."""
    engine = _engine(config, database_url)
    try:
        names = grant_readonly(engine, role)
    except GrantError as e:
        typer.echo(f"✗ {e}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    console.print(f"[green]✓[/green] {role} may SELECT {len(names)} marts and views: {', '.join(names)}")


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    database_url: UrlOpt = None,
    config: ConfigOpt = Path("pmo.toml"),
) -> None:
    """Recent sync runs, newest first (from sync_run)."""
    engine = _engine(config, database_url)
    print_runs(engine, limit)


def print_runs(engine, limit: int = 20) -> None:  # type: ignore[no-untyped-def]
    t = Table(
        "id",
        "source",
        "stream",
        "mode",
        "status",
        "read",
        "written",
        "deleted",
        "quarantined",
        "requests",
        "started",
        "error",
        title="Sync runs",
    )
    with engine.connect() as c:
        rows = c.execute(select(sync_run).order_by(sync_run.c.id.desc()).limit(limit)).mappings().all()
    for r in rows:
        colour = {"succeeded": "green", "failed": "red", "abandoned": "red"}.get(r["status"], "yellow")
        t.add_row(
            str(r["id"]),
            r["source"],
            r["stream"],
            r["mode"],
            f"[{colour}]{r['status']}[/{colour}]",
            *(
                f"{r[k]:,}"
                for k in ("rows_read", "rows_written", "rows_deleted", "rows_quarantined", "requests")
            ),
            str(r["started_at"])[:19],
            (r["error"] or "")[:80],
        )
    console.print(t)


@config_app.command("check")
def config_check(config: ConfigOpt = Path("pmo.toml")) -> None:
    """Validate the configuration file and say exactly what is wrong and where."""
    c = _load(config)
    try:
        for name in c.sources:
            streams = c.streams(name)  # builds them: profiles load, secrets resolve
            sources = ", ".join(sorted({s.source for s in streams}))
            console.print(f"[green]✓[/green] {name} ({sources}): {', '.join(s.name for s in streams)}")
        url = resolve_url(None, c.configured_url)
    except cfg.ConfigError as e:
        raise _problems(e) from None
    console.print(f"[green]✓[/green] warehouse: {masked(url)}")


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="An MSPDI .xml or .mpp project file.", exists=True)],
) -> None:
    """Print the canonical records a project file yields, one JSON object a line."""
    import json

    from connectors.base import ItemError
    from connectors.microsoft.mspdi import inspect_file

    try:
        for record in inspect_file(file):
            typer.echo(json.dumps(record, ensure_ascii=False, sort_keys=True))
    except ItemError as e:
        console.print(f"[red]✗[/red] {file}: {e}")
        raise typer.Exit(1) from None


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where the sandbox data and warehouse go.")] = Path(
        "demo_data"
    ),
    seed: Annotated[int, typer.Option(help="Sandbox portfolio seed.")] = 7,
) -> None:
    """Generate the sandbox portfolio, run nightly_sync on it into SQLite and print a summary."""
    from flows.demo import run_demo

    run_demo(folder, seed, console)


if __name__ == "__main__":
    app()
