"""The ``pmo`` command line: sync, backfill, migrate, inspect runs, check configuration, run the demo.

``pmo sync`` and ``pmo backfill`` run the same ``flows.runner.run`` the Prefect flows use, in-process
with progress bars, then reconcile and refresh the marts as the flows do; scheduled runs go through the
Prefect deployments in ``prefect.yaml``.

Every failure is one plain line on stderr, whether or not a terminal is attached; the exit codes are
in ``EXIT_CODES`` (and ``pmo --help``).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from connectors.base import ItemError, Line, Window
from connectors.finance.profiles import Profile, ProfileError, builtin_profiles, load_profile
from connectors.finance.reader import ExportFile
from connectors.microsoft.files import inspect_file
from flows import config as cfg
from flows import mappings
from flows.marts import print_rag, rebuilt, run_refresh
from flows.report import report
from flows.runner import AnyStream, failure_lines, in_threads, run, run_streams
from flows.show import console, ok, print_freshness, print_quarantine, print_runs, row, table
from flows.warehouse import EXIT_WAREHOUSE, open_for_cli
from model.records import Rejected, as_json
from model.redact import RedactFilter
from warehouse.db import WarehouseError, describe, masked, resolve_url
from warehouse.freshness import record_retired
from warehouse.grants import GrantError, grant_readonly
from warehouse.marts.refresh import MartResult
from warehouse.quarantine import clear_quarantine, list_quarantine, matching, of_file
from warehouse.runlock import SourceBusy
from warehouse.sync import RunSummary

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3  # and 0: every stream synced
EXIT_CODES = (
    "Exit codes: 0 all streams synced; 1 a stream or source failed (one line each on stderr);"
    " 2 usage or configuration error; 3 refused: another run holds a source and nothing else failed;"
    " 4 the warehouse cannot be opened (wrong password, host down, unusable URL)."
)

PROJECT_FILES = (".xml", ".mpp")
log = logging.getLogger("pmo")

# Help is plain text (rich_markup_mode=None): "[warehouse] url" in a help line is a TOML table, not markup.
app = typer.Typer(
    help="pmo-sync: one reconciled warehouse from Jira, Microsoft Project/Planner and ERP exports.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Warehouse schema.", no_args_is_help=True, rich_markup_mode=None)
config_app = typer.Typer(help="Configuration file.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(mappings.app, name="mappings")
app.command()(mappings.reconcile)
app.command()(report)

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
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        help="Streams in flight at once (default 4), also each source's requests in flight where it"
        " fetches in parallel (default: its own setting); 1 runs everything one after another.",
    ),
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask-address",
        metavar="ADDRESS",
        help="Run the nightly-sync flow (Prefect) with its streams on the Dask cluster whose scheduler is"
        " at ADDRESS (tcp://host:8786); its workers need this checkout, the configuration and environment.",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for another run holding a source, then exit 3."),
]


def _version(show: bool) -> None:
    if show:
        try:
            typer.echo(f"pmo-sync {version('pmo-sync')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("pmo-sync (not installed: no version)")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log more on stderr: -v info, -vv debug.")
    ] = 0,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file", dir_okay=False, help="Append the log to this file too (info, or debug with -vv)."
        ),
    ] = None,
) -> None:
    """The options every command shares: the log's verbosity and file."""
    setup_logging(verbose, log_file)


def setup_logging(verbose: int, log_file: Path | None) -> None:
    """Warnings on stderr (info with -v, debug with -vv); with a log file, info and up there too. Every
    handler redacts: passwords in URLs, tokens, and each secret the configuration resolved."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    handlers[0].setLevel(level)
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except OSError as e:
            raise fail(f"✗ --log-file {log_file}: {e.strerror}", EXIT_USAGE) from None
        handlers[-1].setLevel(min(level, logging.INFO))
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        h.addFilter(RedactFilter())
    logging.basicConfig(level=min(h.level for h in handlers), handlers=handlers, force=True)


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
    concurrency: int = cfg.DEFAULT_CONCURRENCY,
) -> list[RunSummary]:
    """Run the streams with progress bars, ``concurrency`` at once; each failure ends as one line on
    stderr, then exit 1 or 3."""
    try:
        retired = config.retired_sources()
    except cfg.ConfigError as e:
        raise _problems(e) from None
    engine = open_for_cli(url, config.configured_url)
    record_retired(engine, retired)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:

        def one(s: AnyStream, holder: str) -> RunSummary:
            bar = progress.add_task(escape(f"{s.source}/{s.name}"), total=None, rows=0)

            def rows(_what: str, n: int) -> None:
                progress.update(bar, rows=n)

            try:
                summary = run(engine, s, mode, window, rows, allow_mass_delete, holder=holder)
            except Exception:
                failed = f"[red]{escape(f'{s.source}/{s.name}')} failed"
                progress.update(bar, description=failed, total=1, completed=1)
                raise
            progress.update(bar, total=1, completed=1, rows=summary.rows_read)
            log.info("%s/%s: %s", s.source, s.name, summary.as_dict())
            return summary

        with in_threads(one, concurrency) as submit:
            outcomes = run_streams(engine, streams, submit, mode, window, concurrency, wait)
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
        raise fail(f"✗ {e}", EXIT_USAGE) from None
    result = _refresh_marts(config, engine)
    console.print(f"Marts refreshed as of {result.as_of}: {result.seconds:.2f} s.")


def _refresh_marts(config: cfg.Config, engine: Engine, full: bool = False) -> MartResult:
    """``[marts]`` was validated when the configuration loaded, so this only fails on the database."""
    with console.status("Refreshing the BI marts …"):
        return run_refresh(engine, config, full=full)


def _print_summaries(summaries: list[RunSummary]) -> None:
    t = table("source", "stream", "read", "written", "deleted", "quarantined", "requests", title="This run")
    for s in summaries:
        counts = (s.rows_read, s.rows_written, s.rows_deleted, s.rows_quarantined, s.requests)
        row(t, s.source, s.stream, *(f"{v:,}" for v in counts))
    console.print(t)


@app.command()
def sync(
    config: ConfigOpt = Path("pmo.toml"),
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    database_url: UrlOpt = None,
    allow_mass_delete: MassDeleteOpt = False,
    wait: WaitOpt = 0.0,
    concurrency: ConcurrencyOpt = None,
    dask_address: DaskOpt = None,
) -> None:
    """Incremental sync of every configured source (or one)."""
    c = _load(config)
    c.set_concurrency(concurrency)
    streams = _streams(c, source)
    if dask_address:
        _sync_on_dask(config, source, database_url, allow_mass_delete, wait, concurrency, dask_address)
        return
    n = concurrency or cfg.DEFAULT_CONCURRENCY
    _run_streams(c, streams, "incremental", Window(), database_url, allow_mass_delete, wait, n)


def _sync_on_dask(
    config: Path,
    source: str | None,
    database_url: str | None,
    allow_mass_delete: bool,
    wait: float,
    concurrency: int | None,
    address: str,
) -> None:
    """``pmo sync`` as the nightly-sync flow on a Dask cluster; failures end as on the threads."""
    from flows.sync import StreamsFailed, nightly_sync, on_dask  # Prefect: only when asked for

    if database_url:  # a flow parameter is stored by Prefect: the URL (and its password) goes by environment
        os.environ["PMO_WAREHOUSE_URL"] = database_url
    try:
        results = on_dask(nightly_sync, address)(
            config_path=str(config),
            source=source,
            allow_mass_delete=allow_mass_delete,
            wait=wait,
            concurrency=concurrency,
        )
    except StreamsFailed as e:
        for line in e.lines:
            typer.echo(line, err=True)
        raise typer.Exit(EXIT_BUSY if e.busy else EXIT_FAILED) from None
    except cfg.ConfigError as e:
        raise _problems(e) from None
    except WarehouseError as e:
        raise fail(f"✗ {e}", EXIT_WAREHOUSE) from None
    _print_summaries([RunSummary(**r) for r in results])


def _streams(c: cfg.Config, source: str | None, stream: str | None = None) -> list[AnyStream]:
    """The streams to run; an unknown source or stream, or an unresolvable secret, is a usage error. A
    retired source has none: it is named, and its rows stay."""
    try:
        streams = c.streams(source, stream)
    except cfg.ConfigError as e:
        raise fail("; ".join(e.problems), EXIT_USAGE) from None
    for name, day in c.retired(source).items():
        console.print(f"{escape(name)}: retired on {day}, not synced; its rows stay in the warehouse.")
    return streams


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
    concurrency: ConcurrencyOpt = None,
) -> None:
    """Reload a window for one source without moving the nightly watermark."""
    since, until = (d if d.tzinfo else d.replace(tzinfo=UTC) for d in (since, until))
    if since >= until:
        raise fail(f"--since {since} must be before --until {until}", EXIT_USAGE)
    c = _load(config)
    c.set_concurrency(concurrency)
    streams = _streams(c, source, stream)
    n = concurrency or cfg.DEFAULT_CONCURRENCY
    _run_streams(c, streams, "backfill", Window(since, until), database_url, allow_mass_delete, wait, n)


@app.command()
def marts(
    config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
    refresh: Annotated[bool, typer.Option(help="Refresh the marts first (as the nightly run does).")] = True,
    full: Annotated[bool, typer.Option(help="Rebuild every mart, not only what changed.")] = False,
) -> None:
    """Refresh the BI marts (only what changed since the last refresh) and print the portfolio RAG table."""
    c = _load(config)
    engine = open_for_cli(database_url, c.configured_url)
    if refresh:
        console.print(rebuilt(_refresh_marts(c, engine, full)))
    print_rag(engine, console)
    engine.dispose()


@db_app.command("upgrade")
def db_upgrade(database_url: UrlOpt = None, config: ConfigOpt = Path("pmo.toml")) -> None:
    """Migrate the warehouse to the latest schema."""
    engine = _engine(config, database_url)
    ok(f"{describe(engine)} is at the latest schema")


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
    ok(f"{role} may SELECT {len(names)} marts and views: {', '.join(names)}")


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    database_url: UrlOpt = None,
    config: ConfigOpt = Path("pmo.toml"),
) -> None:
    """Recent sync runs, newest first (from sync_run)."""
    engine = _engine(config, database_url)
    print_runs(engine, limit)


@app.command()
def freshness(database_url: UrlOpt = None, config: ConfigOpt = Path("pmo.toml")) -> None:
    """How fresh each source and stream is (rpt_data_freshness): ok, running, failing, or retired."""
    engine = _engine(config, database_url)
    print_freshness(engine)
    engine.dispose()


@config_app.command("check")
def config_check(config: ConfigOpt = Path("pmo.toml")) -> None:
    """Validate the configuration file and say exactly what is wrong and where."""
    c = _load(config)
    try:
        for name in c.sources:
            if day := c.sources[name].retired:
                ok(f"{name}: retired on {day}, not synced (its secrets are not read)")
                continue
            streams = c.streams(name)  # builds them: profiles load, secrets resolve
            sources = ", ".join(sorted({s.source for s in streams}))
            ok(f"{name} ({sources}): {', '.join(s.name for s in streams)}")
        url = resolve_url(None, c.configured_url)
    except cfg.ConfigError as e:
        raise _problems(e) from None
    ok(f"warehouse: {masked(url)}")


@app.command()
def quarantine(
    source: Annotated[
        str | None, typer.Option(help="Only this source: finance:acme-sap, or a type: jira.")
    ] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="Only lines whose place starts with this (a file name).")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Only lines first seen at or after this time (UTC).")
    ] = None,
    clear: Annotated[
        str | None,
        typer.Option("--clear", metavar="FILE", help="Remove FILE's quarantined lines (after fixing it)."),
    ] = None,
    database_url: UrlOpt = None,
    config: ConfigOpt = Path("pmo.toml"),
) -> None:
    """Quarantined lines: where each is, which field, why. --clear FILE removes a fixed file's lines."""
    since = since.replace(tzinfo=UTC) if since and not since.tzinfo else since
    engine = _engine(config, database_url)
    try:
        if clear is not None:
            n = clear_quarantine(engine, matching(source, file, since) & of_file(clear))
            ok(f"{n:,} quarantined line(s) of {clear} removed")
        else:
            print_quarantine(list_quarantine(engine, matching(source, file, since)))
    finally:
        engine.dispose()


@app.command()
def inspect(
    file: Annotated[
        Path,
        typer.Argument(help="A project file (.xml, .mpp) or a finance export (.csv, .xlsx).", exists=True),
    ],
    profile: Annotated[
        str | None,
        typer.Option(
            help="Finance mapping profile: built-in name or .toml; default: the configured stream's."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="How many records of a finance export to show.")] = 20,
    config: ConfigOpt = Path("pmo.toml"),
) -> None:
    """Print the records a file yields and the lines it rejects, one JSON object a line.

    A finance export is read through its mapping profile: --profile, or the profile of the configured
    finance stream whose pattern matches the file's name."""
    try:
        if file.suffix.lower() in PROJECT_FILES and profile is None:
            rows = list(inspect_file(file))
        else:
            rows = _preview_export(file, _profile(file, profile, config), limit)
    except ItemError as e:
        why = str(e)  # a project file's reason names the file already
        raise fail(f"✗ {why}" if why.startswith(file.name) else f"✗ {file}: {why}") from None
    for r in rows:
        typer.echo(json.dumps(r, ensure_ascii=False, sort_keys=True))


def _preview_export(file: Path, profile: Profile, limit: int) -> list[dict]:
    """The first ``limit`` records of a finance export and every line it rejects (the whole file is read:
    a rejection may be on its last line); the counts go to stderr."""
    lines = (x for batch in ExportFile(file, file.name, "finance:inspect", profile).lines() for x in batch)
    records: list[dict] = []
    rejected: list[dict] = []
    total = 0
    for x in lines:
        if isinstance(x, Line):
            total += 1
            if len(records) < limit:
                records.append(as_json(x.record))
        elif isinstance(x, Rejected):
            rejected.append(as_json(x))
    typer.echo(
        f"{file.name} through profile {profile.name}: {total:,} records (showing {len(records):,}),"
        f" {len(rejected):,} rejected",
        err=True,
    )
    return records + rejected


def _profile(file: Path, name: str | None, config: Path) -> Profile:
    """``--profile`` (relative to here), else the profile of the first configured finance stream whose
    pattern matches ``file`` (relative to the configuration); neither is a usage error."""
    c = _load(config) if name is None and config.exists() else None
    if name is None and c is not None:
        name = next(
            (
                s["profile"]
                for sc in c.sources.values()
                if sc.type == "finance"
                for s in sc.streams.values()
                if s["pattern"] and file.match(s["pattern"])
            ),
            None,
        )
    if name is None:
        where = f"no finance stream of {config} matches it" if c else f"no {config} to look in"
        raise fail(
            f"✗ {file}: not a project file ({', '.join(PROJECT_FILES)}), so a finance export: give its"
            f" mapping profile with --profile (built-in: {', '.join(builtin_profiles())}); {where}",
            EXIT_USAGE,
        )
    try:
        return load_profile(name, c.base if c else None)
    except ProfileError as e:
        raise fail(f"✗ {e}", EXIT_USAGE) from None


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where the sandbox data and warehouse go.")] = Path(
        "demo_data"
    ),
    seed: Annotated[int, typer.Option(help="Sandbox portfolio seed.")] = 7,
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Status date of the portfolio (default today)."),
    ] = None,
) -> None:
    """Generate the sandbox portfolio, run nightly_sync on it into SQLite and print a summary."""
    from flows.demo import run_demo  # here, not above: it runs a Prefect flow, and importing Prefect takes s

    run_demo(folder, seed, console, as_of and as_of.date())


if __name__ == "__main__":
    app()
