"""``pmo reconcile`` and ``pmo mappings``: run reconciliation, read the crosswalks, decide review items."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy import Engine, func, select

from flows import config as cfg
from flows.reconcile import decisions_path, export_decisions, run_reconcile
from flows.show import console, ok, row, table
from flows.warehouse import open_for_cli
from warehouse.crosswalk import decide_review
from warehouse.reconcile import ReconResult, open_reviews
from warehouse.schema import XREF_TABLES, recon_exception

app = typer.Typer(
    help="Identity crosswalks and the review queue.", no_args_is_help=True, rich_markup_mode=None
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Configuration file (TOML).")]
UrlOpt = Annotated[str | None, typer.Option("--database-url", help="Warehouse URL (see `pmo sync --help`).")]
EntityOpt = Annotated[str | None, typer.Option("--entity", "-e", help="project, person or task.")]
ByOpt = Annotated[str, typer.Option("--by", help="Who decides (recorded with the decision).")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why, for the next person who reads it.")]


def _setup(config: Path, database_url: str | None) -> tuple[cfg.Config, Engine]:
    try:
        c = cfg.load(config)
    except cfg.ConfigError as e:
        for p in e.problems:
            console.print(f"[red]✗[/red] {escape(p)}")
        raise typer.Exit(2) from None
    return c, open_for_cli(database_url, c.configured_url)


def reconcile_and_report(c: cfg.Config, engine: Engine) -> ReconResult:
    with console.status("Reconciling identities and checking the rules …"):
        result = run_reconcile(engine, c)
    print_summary(engine, result)
    return result


def print_summary(engine: Engine, result: ReconResult | None = None) -> None:
    ex = recon_exception.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(ex.rule, ex.severity, func.count())
            .where(ex.resolved_at.is_(None))
            .group_by(ex.rule, ex.severity)
            .order_by(ex.rule, ex.severity)
        ).all()
        resolved = conn.execute(select(func.count()).where(ex.resolved_at.is_not(None))).scalar()
        reviews = len(open_reviews(conn))
    counts: dict[str, dict[str, int]] = {}
    for rule, sev, n in rows:
        counts.setdefault(rule, {})[sev] = n
    t = table("rule", "high", "medium", "low", "open", title="Open reconciliation exceptions")
    for rule, by_sev in counts.items():
        row(t, rule, *(by_sev.get(s, 0) for s in ("high", "medium", "low")), sum(by_sev.values()))
    console.print(t)
    if result is not None:
        ids = ", ".join(f"{n:,} {e}s" for e, n in result.canonical.items())
        console.print(f"Canonical: {ids}. Exceptions: {result.exceptions}. {result.seconds:.2f} s.")
    console.print(
        f"{resolved:,} exceptions resolved so far; {reviews} mapping(s) to review (`pmo mappings review`)."
    )


def reconcile(config: ConfigOpt = Path("pmo.toml"), database_url: UrlOpt = None) -> None:
    """Match projects, people and tasks across the tools and print the exceptions a PMO must act on."""
    c, engine = _setup(config, database_url)
    try:
        reconcile_and_report(c, engine)
    except ValueError as e:
        console.print(f"[red]✗[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


@app.command("list")
def list_(
    entity: EntityOpt = None,
    status: Annotated[str | None, typer.Option(help="auto, approved, pending or unmatched.")] = None,
    config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
) -> None:
    """The current crosswalk: canonical id, source record, how it was matched."""
    _, engine = _setup(config, database_url)
    t = table("entity", "canonical", "source", "source id", "method", "conf.", "status", "reason")
    with engine.connect() as conn:
        for name, x in XREF_TABLES.items():
            if entity and name != entity:
                continue
            q = select(x).where(x.c.valid_to.is_(None)).order_by(x.c.canonical_id, x.c.source, x.c.source_id)
            if status:
                q = q.where(x.c.review_status == status)
            for r in conn.execute(q):
                conf = "" if r.confidence is None else f"{float(r.confidence):.0f}"
                row(t, name, r.canonical_id, r.source, r.source_id, r.method, conf, r.review_status, r.reason)
    console.print(t)


@app.command()
def review(
    entity: EntityOpt = None, config: ConfigOpt = Path("pmo.toml"), database_url: UrlOpt = None
) -> None:
    """Matches the engine was not sure of: approve or reject each by its id."""
    _, engine = _setup(config, database_url)
    with engine.connect() as conn:
        items = open_reviews(conn, entity)
    t = table("id", "entity", "record", "probably the same as", "score", "reason", title="Review queue")
    for r in items:
        row(t, r.id, r.entity, f"{r.name} ({r.source})", f"{r.candidate_name} ({r.candidate_source})",
            f"{float(r.score):.0f}", r.reason)  # fmt: skip
    console.print(t)
    console.print("Decide with `pmo mappings approve ID` or `pmo mappings reject ID`.")


def _decide(
    review_id: int, same: bool, by: str, note: str | None, config: Path, database_url: str | None
) -> None:
    c, engine = _setup(config, database_url)
    try:
        with engine.begin() as conn:
            item = decide_review(conn, review_id, same, by, datetime.now(UTC), note)
    except LookupError as e:
        console.print(f"[red]✗[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    verdict = "the same" if same else "different"
    ok(f"{item.name!r} and {item.candidate_name!r} are {verdict} {item.entity}s.")
    reconcile_and_report(c, engine)
    path = decisions_path(c)
    if path is not None:
        console.print(
            f"Run `pmo mappings export` to write the decision to {escape(str(path))} for version control."
        )


@app.command()
def approve(
    review_id: int, by: ByOpt = "pmo", note: NoteOpt = None, config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
) -> None:  # fmt: skip
    """The pair is the same project/person/task: merge them, now and in every later run."""
    _decide(review_id, True, by, note, config, database_url)


@app.command()
def reject(
    review_id: int, by: ByOpt = "pmo", note: NoteOpt = None, config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
) -> None:  # fmt: skip
    """The pair are different things: never match them again."""
    _decide(review_id, False, by, note, config, database_url)


@app.command()
def export(
    file: Annotated[
        Path | None, typer.Option(help="Default: [reconcile] decisions of the configuration.")
    ] = None,
    config: ConfigOpt = Path("pmo.toml"),
    database_url: UrlOpt = None,
) -> None:
    """Write every identity decision to the decisions file, to keep under version control."""
    c, engine = _setup(config, database_url)
    path = file or decisions_path(c)
    if path is None:
        console.print('[red]✗[/red] no --file and no \\[reconcile] decisions = "…" in the configuration')
        raise typer.Exit(2)
    n = export_decisions(engine, path)
    ok(f"{n} decision(s) written to {path}")
