"""``pmo report``: the portfolio as one self-contained HTML page (charts by plotly, its script inline), and
the summary the nightly flow publishes as a Prefect artifact.

The page reads the marts only (``warehouse.marts.report_data``) and needs no network to open: plotly.js
(~4.8 MB) is inlined once and every chart is drawn from the data embedded beside it.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import plotly.graph_objects as go
import typer
from plotly.offline import get_plotlyjs
from sqlalchemy import Engine

from flows import config as cfg
from flows.warehouse import open_for_cli
from warehouse.marts import report_data
from warehouse.marts.report_data import NEVER, ReportData, Row

RAG_COLOURS = {"red": "#c62828", "amber": "#f9a825", "green": "#2e7d32", "grey": "#757575"}
SEVERITY_COLOURS = {"high": "#c62828", "medium": "#f9a825", "low": "#90a4ae"}
# 0% white, 60% yellow, 100% green, above it orange to red (zmax 150%).
UTILISATION_SCALE = [[0, "#ffffff"], [0.4, "#fff59d"], [0.667, "#43a047"], [0.8, "#ef6c00"], [1, "#b71c1c"]]
CHART = dict(template="plotly_white", height=320, margin=dict(l=50, r=20, t=40, b=40))
STYLE = """
body{font-family:system-ui,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 24px;color:#212121}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px} h3{font-size:16px;margin:0 0 6px}
.meta{color:#616161;font-size:13px;margin-bottom:12px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#fafafa;position:sticky;top:0} td.num{text-align:right;font-variant-numeric:tabular-nums}
.rag{display:inline-block;min-width:48px;text-align:center;border-radius:10px;color:#fff;padding:1px 8px;
font-weight:600}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
@media (max-width:1000px){.grid{grid-template-columns:minmax(0,1fr)}}
.project{border:1px solid #e0e0e0;border-radius:6px;padding:12px;margin:12px 0}
.none{color:#9e9e9e;font-style:italic}
"""


# --- numbers as the page shows them ---------------------------------------------------------------------


def fmt(value: Any, places: int = 2) -> str:
    """A number with thousands separators, or an empty cell for NULL (never a made-up 0)."""
    return "" if value is None else f"{Decimal(str(value)):,.{places}f}"


def freshness_text(p: Row, columns: frozenset[str]) -> str:
    """Days the project's data is behind: the marts' stale_days when they carry it, else the hours since
    its stalest source last synced (rpt_data_freshness)."""
    if "stale_days" in columns:
        return "" if p.get("stale_days") is None else f"{p['stale_days']} d"
    hours = p.get("freshness_hours")
    if hours is None:
        return ""
    return "never synced" if hours == NEVER else f"{hours / 24:,.1f} d"


def schedule_column(columns: frozenset[str]) -> tuple[str, str]:
    """SPI(t) (earned schedule) when the marts have it, else the cost-based SPI."""
    return ("spi_t", "SPI(t)") if "spi_t" in columns else ("spi", "SPI")


def portfolio_columns(columns: frozenset[str]) -> list[tuple[str, str, Any]]:
    """(key, heading, cell text of a row) for the portfolio table, in order."""
    spi, spi_label = schedule_column(columns)
    return [
        ("project", "Project", lambda p: p["project_key"] or ""),
        ("name", "Name", lambda p: p["project_name"] or ""),
        ("rag", "RAG", lambda p: p["rag"] or ""),
        ("reason", "Why", lambda p: p["rag_reason"] or ""),
        ("percent_complete", "% complete", lambda p: fmt(p["percent_complete"], 0)),
        ("cpi", "CPI", lambda p: fmt(p["cpi"])),
        (spi, spi_label, lambda p: fmt(p[spi])),
        ("eac_cpi", "EAC", lambda p: fmt(p["eac_cpi"], 0)),
        ("finish_variance_days", "Finish variance (days)", lambda p: fmt(p["finish_variance_days"], 0)),
        ("freshness", "Data freshness", lambda p: freshness_text(p, columns)),
    ]


# --- charts ---------------------------------------------------------------------------------------------


def _figure_html(fig: go.Figure, div_id: str) -> str:
    """The chart's div and the script that draws it. Each script runs as the page is parsed, so the grid's
    columns are fixed (not auto-fit): a chart is sized before the cells after it exist."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def s_curve(data: ReportData, pid: int) -> go.Figure:
    """PV from the plan of record, AC from finance, and the marts' PV/EV/AC at each status date."""
    fig = go.Figure()
    plan, cost = data.plan_curve.get(pid, []), data.cost_curve.get(pid, [])
    history = data.status_history.get(pid, [])
    fig.add_scatter(x=[r["week"] for r in plan], y=[r["pv"] for r in plan], name="PV (baseline plan)",
                    line=dict(color="#1565c0", dash="dot"))  # fmt: skip
    fig.add_scatter(x=[r["week"] for r in cost], y=[r["ac"] for r in cost], name="AC (finance)",
                    line=dict(color="#c62828"))  # fmt: skip
    for measure, colour in (("pv", "#1565c0"), ("ev", "#2e7d32"), ("ac", "#c62828")):
        points = [r for r in history if r[measure] is not None]
        fig.add_scatter(x=[r["status_date"] for r in points], y=[r[measure] for r in points],
                        name=f"{measure.upper()} at status date", mode="lines+markers",
                        line=dict(color=colour, width=1), marker=dict(size=8))  # fmt: skip
    # A date axis even when the project has no dated point yet (no plan, no cost): else the status-date
    # line has no scale to sit on and the browser draws it from NaN.
    fig.update_xaxes(type="date")
    fig.add_vline(x=data.as_of.isoformat(), line=dict(color="#757575", dash="dash"))
    fig.update_layout(title="S-curve: PV, EV and AC", yaxis_title=data.currency, **CHART)
    return fig


def hours_by_tool(rows: list[Row]) -> go.Figure:
    fig = go.Figure()
    for tool in sorted({r["tool"] for r in rows}):
        mine = [r for r in rows if r["tool"] == tool]
        fig.add_bar(x=[r["month"] for r in mine], y=[r["hours"] for r in mine], name=tool)
    fig.update_layout(title="Hours by tool and month", yaxis_title="hours", barmode="group", **CHART)
    return fig


def exceptions_over_time(rows: list[Row]) -> go.Figure:
    fig = go.Figure()
    for rule, severity in sorted({(r["rule"], r["severity"]) for r in rows}, key=lambda k: (k[1], k[0])):
        mine = [r for r in rows if (r["rule"], r["severity"]) == (rule, severity)]
        edge = dict(color=SEVERITY_COLOURS.get(severity, "#000"), width=2)
        fig.add_bar(x=[r["week"] for r in mine], y=[r["open"] for r in mine], name=f"{rule} ({severity})",
                    marker=dict(line=edge))  # fmt: skip
    fig.update_layout(title="Open exceptions by rule and severity, per week", barmode="stack",
                      yaxis_title="open at week end", **CHART)  # fmt: skip
    fig.update_layout(height=420, legend=dict(orientation="h", y=-0.15))
    return fig


def utilisation_heatmap(rows: list[Row], as_of: date) -> go.Figure:
    """Every week of the window for every person who booked in it: a week without bookings shows 0%."""
    people = sorted({r["person"] for r in rows})
    last = as_of - timedelta(days=as_of.weekday())
    weeks = [str(last - timedelta(weeks=n)) for n in reversed(range(report_data.UTILISATION_WEEKS))]
    cell = {(r["person"], str(r["week"])): r["pct"] for r in rows}
    z = [[cell.get((p, w), 0) for w in weeks] for p in people]
    hover = "%{y}<br>week of %{x}<br>%{z}% of capacity<extra></extra>"
    fig = go.Figure(go.Heatmap(z=z, x=weeks, y=people, colorscale=UTILISATION_SCALE, zmin=0, zmax=150,
                               colorbar=dict(title="% of capacity"), hovertemplate=hover))  # fmt: skip
    fig.update_layout(title="Utilisation: booked hours of record ÷ capacity, person × week", **CHART)
    fig.update_layout(height=max(320, 18 * len(people) + 120))
    return fig


def capacity_heatmap(rows: list[Row], as_of: date) -> go.Figure:
    """Planned work ÷ capacity, person × week, from weeks before the status date to weeks after it: the
    people planned beyond what they can give show red before it happens."""
    people = sorted({r["person_name"] or str(r["person_id"]) for r in rows})
    before, after = report_data.CAPACITY_WEEKS
    monday = as_of - timedelta(days=as_of.weekday())
    weeks = [str(monday + timedelta(weeks=n)) for n in range(-before, after + 1)]
    cell = {(r["person_name"] or str(r["person_id"]), str(r["week_start"])): r for r in rows}
    z = [[_load(cell.get((p, w))) for w in weeks] for p in people]
    text = [[_hours(cell.get((p, w))) for w in weeks] for p in people]
    hover = "%{y}<br>week of %{x}<br>%{z}% of capacity<br>%{text}<extra></extra>"
    fig = go.Figure(go.Heatmap(z=z, x=weeks, y=people, text=text, colorscale=UTILISATION_SCALE, zmin=0,
                               zmax=150, colorbar=dict(title="% planned"), hovertemplate=hover))  # fmt: skip
    fig.update_layout(title="Capacity: planned work ÷ capacity, person × week (red: over-allocated)", **CHART)
    fig.update_layout(height=max(320, 18 * len(people) + 120))
    fig.add_vline(x=str(monday), line_dash="dot", line_color="#616161")
    return fig


def _load(row: Row | None) -> float | None:
    return None if row is None or row["load_pct"] is None else float(row["load_pct"])


def _hours(row: Row | None) -> str:
    if row is None:
        return "nothing planned"
    return f"planned {fmt(row['planned_hours'], 1)} h of {fmt(row['capacity_hours'], 1)} h"


def freshness_chart(rows: list[Row]) -> go.Figure:
    """Hours since each stream's last success: green when its last run succeeded, red when not, grey when
    its source is retired (it will never be fresher, and that is not a failure)."""
    label = [f"{r['source']} / {r['stream']}" + _retired(r) for r in rows]
    colours = [_freshness_colour(r) for r in rows]
    hours = [r["hours_since_success"] for r in rows]
    fig = go.Figure(go.Bar(x=hours, y=label, orientation="h", marker_color=colours,
                           customdata=[r["last_status"] for r in rows],
                           hovertemplate="%{y}<br>%{x} h since last success<br>last run %{customdata}"
                                         "<extra></extra>"))  # fmt: skip
    fig.update_layout(title="Freshness: hours since each source's last successful sync",
                      xaxis_title="hours", **CHART)  # fmt: skip
    fig.update_layout(height=max(320, 22 * len(rows) + 100), margin=dict(l=330, r=20, t=40, b=40))
    return fig


def _freshness_colour(r: Row) -> str:
    if r.get("status") == "retired":
        return "#9e9e9e"
    return "#2e7d32" if r["last_status"] == "succeeded" else "#c62828"


def _retired(r: Row) -> str:
    return f" (retired {r['retired_on']})" if r.get("status") == "retired" else ""


# --- the page -------------------------------------------------------------------------------------------


def _rag_badge(rag: str | None) -> str:
    colour = RAG_COLOURS.get(rag or "", "#bdbdbd")
    return f'<span class="rag" style="background:{colour}">{html.escape(rag or "–")}</span>'


def portfolio_table(data: ReportData) -> str:
    columns = portfolio_columns(data.status_columns)
    head = "".join(f'<th data-col="{key}">{html.escape(title)}</th>' for key, title, _ in columns)
    body = []
    for p in data.portfolio:
        cells = []
        for key, _, cell in columns:
            text = cell(p)
            shown = _rag_badge(p["rag"]) if key == "rag" else html.escape(text)
            kind = "" if key in ("project", "name", "rag", "reason") else ' class="num"'
            cells.append(f'<td data-col="{key}"{kind}>{shown}</td>')
        body.append(f'<tr data-project="{p["project_id"]}">{"".join(cells)}</tr>')
    return f'<table id="portfolio"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def exceptions_table(rows: list[Row]) -> str:
    if not rows:
        return '<p class="none">No open exceptions.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("severity", "rule", "subject", "period", "expected", "actual",
                                             "unit", "detail"))  # fmt: skip
    body = "".join(
        "<tr>" + f"<td>{html.escape(r['severity'])}</td><td>{html.escape(r['rule'])}</td>"
        f"<td>{html.escape(r['subject_key'] or '')}</td><td>{html.escape(r['period'] or '')}</td>"
        f'<td class="num">{fmt(r["expected"])}</td><td class="num">{fmt(r["actual"])}</td>'
        f"<td>{html.escape(r['unit'])}</td><td>{html.escape(r['detail'] or '')}</td></tr>"
        for r in rows
    )
    return f'<table class="exceptions"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def raid_summary(rows: list[Row]) -> str:
    """Per project: open risks by band, unowned and overdue for review; open and overdue issues."""
    if not rows:
        return '<p class="none">No open risks or issues.</p>'
    by_project: dict[str, dict[str, int]] = {}
    for r in rows:
        n = by_project.setdefault(r["project_key"] or "(no project)", dict.fromkeys(RAID_COLUMNS, 0))
        if r["entry_type"] == "risk":
            n[r["score_band"] or "unscored"] += 1
            n["unowned"] += bool(r["is_unowned"])
            n["review overdue"] += bool(r["is_review_overdue"])
        else:
            n["issues"] += 1
            n["issues overdue"] += bool(r["is_overdue"])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("project", *RAID_COLUMNS))
    body = "".join(
        f'<tr data-raid-project="{html.escape(key)}"><td>{html.escape(key)}</td>'
        + "".join(f'<td class="num">{n[c]}</td>' for c in RAID_COLUMNS)
        + "</tr>"
        for key, n in sorted(by_project.items(), key=lambda kv: (-kv[1]["high"], kv[0]))
    )
    return f'<table id="raid-summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


RAID_COLUMNS = ("high", "medium", "low", "unscored", "unowned", "review overdue", "issues", "issues overdue")


def top_risks(rows: list[Row]) -> str:
    risks = [r for r in rows if r["entry_type"] == "risk"][: report_data.TOP_RISKS]
    if not risks:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("score", "risk", "project", "owner", "age", "review"))
    body = "".join(
        f'<tr data-risk="{html.escape(r["key"] or "")}"><td class="num">{fmt(r["score"], 0)}</td>'
        f"<td>{html.escape(r['key'] or '')} {html.escape(r['title'] or '')}</td>"
        f"<td>{html.escape(r['project_key'] or '')}</td>"
        f'<td>{html.escape(r["owner"] or "no owner")}</td><td class="num">{fmt(r["age_days"], 0)} d</td>'
        f"<td>{'overdue' if r['is_review_overdue'] else html.escape(str(r['review_date'] or ''))}</td></tr>"
        for r in risks
    )
    return f'<table id="top-risks"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _project_section(data: ReportData, p: Row) -> str:
    pid = p["project_id"]
    hours = data.hours.get(pid, [])
    curve = s_curve(data, pid)
    # A project with no plan, no cost and no status figure yet (the marts call it grey): say so in words.
    has_points = any(any(v is not None for v in (t.y or ())) for t in curve.data)
    charts = [
        _figure_html(curve, f"s-curve-{pid}")
        if has_points
        else f'<p class="none" data-no-curve="{pid}">No plan, cost or status figures yet.</p>'
    ]
    charts.append(_figure_html(hours_by_tool(hours), f"hours-{pid}") if hours
                  else '<p class="none">No hours booked.</p>')  # fmt: skip
    exceptions = data.open_exceptions.get(pid, [])
    return (
        f'<section class="project" id="project-{pid}"><h3>{_rag_badge(p["rag"])} '
        f"{html.escape(p['project_key'] or '')} — {html.escape(p['project_name'] or '')}</h3>"
        f'<div class="grid">{"".join(f"<div>{c}</div>" for c in charts)}</div>'
        f"<h3>Open exceptions ({len(exceptions)})</h3>{exceptions_table(exceptions)}</section>"
    )


def render(data: ReportData, generated: datetime | None = None) -> str:
    """The whole page: plotly.js once in the head, then the table, portfolio charts and project sections."""
    generated = generated or datetime.now(UTC)
    counts = {rag: sum(p["rag"] == rag for p in data.portfolio) for rag in RAG_COLOURS}
    summary = " · ".join(f"{_rag_badge(rag)} {n}" for rag, n in counts.items())
    portfolio_charts = [
        _figure_html(exceptions_over_time(data.exception_weeks), "exceptions-over-time"),
        _figure_html(utilisation_heatmap(data.utilisation, data.as_of), "utilisation"),
        _figure_html(freshness_chart(data.freshness), "freshness"),
    ]
    capacity = (_figure_html(capacity_heatmap(data.capacity, data.as_of), "capacity") if data.capacity
                else '<p class="none">No planned work around the status date.</p>')  # fmt: skip
    sections = "".join(_project_section(data, p) for p in data.portfolio)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Portfolio report {data.as_of}</title>
<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>
<body><h1>Portfolio report — status date {data.as_of}</h1>
<div class="meta">{len(data.portfolio)} projects: {summary} · amounts in {html.escape(data.currency)}
· generated {generated:%Y-%m-%d %H:%M} UTC from the warehouse marts</div>
{portfolio_table(data)}
<h2>Portfolio</h2><div class="grid">{"".join(f"<div>{c}</div>" for c in portfolio_charts)}</div>
<h2>Risks and issues</h2>
<div class="grid"><div>{raid_summary(data.raid)}</div><div>{top_risks(data.raid)}</div></div>
<h2>Capacity against demand</h2>{capacity}
<h2>Projects</h2>{sections}
</body></html>
"""


def write_report(engine: Engine, out: Path, as_of: date | None = None) -> ReportData:
    """Read the marts and write the page to ``out``; returns what it showed."""
    with engine.connect() as conn:
        data = report_data.read(conn, as_of)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    return data


def markdown_summary(data: ReportData, path: Path) -> str:
    """The RAG table in markdown, and where the full report is: the nightly flow's artifact."""
    columns = portfolio_columns(data.status_columns)
    lines = [
        f"# Portfolio RAG, status date {data.as_of}",
        "",
        f"Full report: `{path}`",
        "",
        "| " + " | ".join(title for _, title, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += [
        "| " + " | ".join(cell(p).replace("|", "\\|") for _, _, cell in columns) + " |"
        for p in data.portfolio
    ]
    return "\n".join(lines) + "\n"


def publish(engine: Engine, out: Path, as_of: date | None = None) -> Path | None:
    """Write the report and publish its summary as the ``portfolio-report`` markdown artifact (in a flow).

    A warehouse with no project yet (a first sync of people or costs only) has nothing to report: that is
    logged, not a failed night; ``None`` then."""
    from prefect import get_run_logger
    from prefect.artifacts import create_markdown_artifact

    try:
        data = write_report(engine, out, as_of)
    except report_data.NoStatus as e:
        get_run_logger().warning("portfolio report not written: %s", e)
        return None
    create_markdown_artifact(
        markdown=markdown_summary(data, out.resolve()),
        key="portfolio-report",
        description=f"Portfolio RAG as of {data.as_of}",
    )
    return out


def report(
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="Status date (YYYY-MM-DD); default the latest."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    config: Annotated[Path, typer.Option("--config", "-c", help="Configuration file (TOML).")] = Path(
        "pmo.toml"
    ),
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Warehouse URL; default as for `pmo sync`.")
    ] = None,
) -> None:
    """Write the portfolio report: one HTML file (RAG table, S-curves, hours, exceptions, utilisation,
    freshness) that opens without a network."""
    try:
        configured = cfg.load(config).configured_url if config.exists() else None
    except cfg.ConfigError as e:
        for problem in e.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2) from None
    engine = open_for_cli(database_url, configured)
    try:
        data = write_report(engine, out, as_of.date() if as_of else None)
    except report_data.NoStatus as e:
        typer.echo(f"✗ {e}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    size = out.stat().st_size / 1e6
    typer.echo(f"Report as of {data.as_of}: {len(data.portfolio)} projects, {size:.1f} MB → {out.resolve()}")
