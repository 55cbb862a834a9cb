"""What the ``pmo`` commands print: tables that wrap rather than cut, and text printed as written.

Shared by ``flows.cli``, ``flows.mappings`` and ``flows.demo``. Values from the warehouse or an error are
escaped before they reach rich: a source's ``[warehouse] url`` is text, not a markup tag to swallow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, select, text

from warehouse.schema import sync_run

# A terminal's own width; 150 columns in logs and cron mails, where rich would otherwise assume 80.
console = Console(width=None if Console().is_terminal else 150)

STATUS_COLOUR = {"succeeded": "green", "failed": "red", "abandoned": "red", "ok": "green", "failing": "red",
                 "retired": "dim"}  # fmt: skip


def table(*columns: str, title: str | None = None) -> Table:
    """A table whose cells wrap, long words folded: a source name or an error is shown whole."""
    t = Table(title=title)
    for name in columns:
        t.add_column(name, overflow="fold")
    return t


def row(t: Table, *cells: Any) -> None:
    """Add a row of plain values: escaped, so brackets in them print as they are."""
    t.add_row(*(escape("" if c is None else str(c)) for c in cells))


def ok(message: str) -> None:
    """``✓ message``, the message printed as written."""
    console.print(f"[green]✓[/green] {escape(message)}")


def print_runs(engine: Engine, limit: int = 20, out: Console = console) -> None:
    """The latest sync runs, newest first (from ``sync_run``)."""
    with engine.connect() as c:
        rows = c.execute(select(sync_run).order_by(sync_run.c.id.desc()).limit(limit)).mappings().all()
    counts = ("rows_read", "rows_written", "rows_deleted", "rows_quarantined", "requests")
    t = table("id", "source", "stream", "mode", "status", "read", "written", "deleted", "quarantined",
              "requests", "started", "error", title="Sync runs")  # fmt: skip
    for r in rows:
        colour = STATUS_COLOUR.get(r["status"], "yellow")
        t.add_row(
            *(escape(str(r[k])) for k in ("id", "source", "stream", "mode")),
            f"[{colour}]{escape(r['status'])}[/{colour}]",
            *(f"{r[k]:,}" for k in counts),
            str(r["started_at"])[:19],
            escape(r["error"] or ""),
        )
    out.print(t)


def print_quarantine(rows: Iterable[Mapping[str, Any]], out: Console = console) -> None:
    """Quarantined lines: where, which field, why, and when first seen."""
    rows = list(rows)
    t = table("source", "stream", "where", "field", "reason", "first seen",
              title=f"Quarantine ({len(rows):,} lines)")  # fmt: skip
    for r in rows:
        row(t, r["source"], r["stream"], r["locator"], r["field"], r["reason"], str(r["first_seen_at"])[:19])
    out.print(t)


def _text(value: Any) -> str:
    return "" if value is None else escape(str(value))


def print_freshness(engine: Engine, out: Console = console) -> None:
    """Per source and stream (``rpt_data_freshness``): ok, running, failing, or retired and since when."""
    with engine.connect() as c:
        rows = c.execute(text("SELECT * FROM rpt_data_freshness ORDER BY source, stream")).mappings().all()
    t = table("source", "stream", "status", "last success", "hours since", "failed runs", title="Freshness")
    for r in rows:
        colour = STATUS_COLOUR.get(r["status"], "yellow")
        since = str(r["retired_on"])[:10] if r["status"] == "retired" else ""
        t.add_row(
            escape(r["source"]), escape(r["stream"]), f"[{colour}]{escape(r['status'])}[/{colour}] {since}",
            str(r["last_success_at"] or "never")[:19], _text(r["hours_since_success"]),
            str(r["failed_runs"]),
        )  # fmt: skip
    out.print(t)
