"""``pmo report``: the page opened in headless Chromium (Debian's, driven by playwright), its numbers against
the marts on SQLite and PostgreSQL, the command line, and the nightly flow's artifact.

One warehouse per dialect for the module: the sandbox's base rows loaded, reconciled and refreshed on two
status dates. The browser test leaves ``report.html`` and ``report.png`` (the first screen) side by side in
its temporary folder, or in ``PMO_REPORT_DIR`` when set (pytest prunes old temporary folders), and prints
where.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from marts_support import fresh_warehouse, load, sandbox_rows
from sqlalchemy import Engine, create_engine, inspect, text
from typer.testing import CliRunner

from flows.cli import app
from flows.report import render, write_report
from sandbox.portfolio import AS_OF
from warehouse.marts import report_data as rd
from warehouse.marts.refresh import refresh_marts
from warehouse.reconcile import reconcile

D1, D2 = date(2026, 10, 1), AS_OF  # the sandbox is dated from AS_OF: status mid-way and at the end
CHROMIUM = "/usr/bin/chromium"
# Without these Chromium tries the network (component updates, sync) and hangs on a machine that has none;
# playwright adds --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
PG_URL = os.environ.get("PMO_TEST_POSTGRES_URL")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def marts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The sandbox warehouse with marts refreshed on D1 and D2 (the last refresh: D2)."""
    if request.param == "sqlite":
        like = create_engine("sqlite://")
    elif PG_URL:
        like = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    else:
        pytest.skip(
            "PostgreSQL tests need PMO_TEST_POSTGRES_URL (set by .ci/run, which starts PostgreSQL 15)"
        )
    with fresh_warehouse(like, tmp_path_factory.mktemp("report")) as engine:
        load(engine, sandbox_rows())
        for day in (D1, D2):
            reconcile(engine, at=datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC))
            refresh_marts(engine, day)
        yield engine


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def shown(value: Any, places: int) -> Decimal | None:
    """A mart value as the page rounds it."""
    return None if value is None else Decimal(str(value)).quantize(Decimal(1).scaleb(-places))


def parsed(cell: str) -> Decimal | None:
    return None if cell == "" else Decimal(cell.replace(",", ""))


def test_the_report_opens_offline_in_chromium_with_every_chart_and_the_marts_numbers(
    marts: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    out = Path(os.environ.get("PMO_REPORT_DIR") or tmp_path) / f"report-{marts.dialect.name}.html"
    data = write_report(marts, out)
    assert data.as_of == D2
    errors: list[str] = []
    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # a fresh profile each time
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", lambda r: r.continue_() if r.request.url == out.as_uri() else
                   (blocked.append(r.request.url), r.abort()))  # fmt: skip
        page.goto(out.as_uri(), wait_until="load")
        charts = page.evaluate(
            """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => [el.id,
                 el.data.map(t => (t.z || t.x || []).flat().filter(v => v !== null).length),
                 el._fullLayout.width <= el.parentElement.clientWidth])"""
        )
        table = page.evaluate(
            """() => Array.from(document.querySelectorAll('#portfolio tbody tr')).map(tr =>
                 [tr.dataset.project,
                  Object.fromEntries(Array.from(tr.cells).map(td =>
                    [td.dataset.col, td.innerText.trim()]))])"""
        )
        no_curve = set(
            page.evaluate(
                "() => Array.from(document.querySelectorAll('[data-no-curve]')).map(e => +e.dataset.noCurve)"
            )
        )
        headings = page.evaluate(
            "() => Array.from(document.querySelectorAll('#portfolio th')).map(t => t.innerText)"
        )
        shot = out.with_suffix(".png")
        page.screenshot(path=str(shot))
        browser.close()
    print(f"report {out} ({out.stat().st_size:,} bytes), first screen {shot}")
    assert errors == [] and blocked == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    status = rows(
        marts,
        "SELECT s.*, p.key FROM fact_project_status s JOIN dim_project p ON p.project_id = s.project_id "
        "AND p.is_current WHERE s.status_date = :d",
        d=D2.isoformat(),
    )
    with_hours = {r["project_id"] for r in rows(marts, "SELECT DISTINCT project_id FROM fact_time_entry")}
    ids = sorted(r["project_id"] for r in status)
    expected_charts = {"exceptions-over-time", "utilisation", "freshness", "capacity"}
    no_data = {r["project_id"] for r in status if r["pv"] is None and r["ev"] is None and r["ac"] is None}
    assert no_curve <= no_data  # only a project with no figures at all goes without its S-curve
    expected_charts |= {f"s-curve-{i}" for i in ids if i not in no_curve}
    expected_charts |= {f"hours-{i}" for i in ids if i in with_hours}
    assert {chart_id for chart_id, _, _ in charts} == expected_charts
    empty = [chart_id for chart_id, points, _ in charts if sum(points) == 0]
    assert empty == [], f"charts without data: {empty}"
    cut = [chart_id for chart_id, _, fits in charts if not fits]
    assert cut == [], f"charts wider than their place on the page (cut off): {cut}"

    # The marts carry earned schedule, so the schedule column is SPI(t), not the cost-based SPI.
    assert headings[:8] == ["Project", "Name", "RAG", "Why", "% complete", "CPI", "SPI(t)", "EAC"]
    assert sorted(int(pid) for pid, _ in table) == ids
    for pid, cells in table:
        mart = next(r for r in status if r["project_id"] == int(pid))
        assert cells["project"] == (mart["key"] or "")
        assert (cells["rag"], cells["reason"]) == (mart["rag"], mart["rag_reason"] or "")
        assert parsed(cells["percent_complete"]) == shown(mart["percent_complete"], 0)
        assert parsed(cells["cpi"]) == shown(mart["cpi"], 2)
        assert parsed(cells["spi_t"]) == shown(mart["spi_t"], 2)
        assert parsed(cells["eac_cpi"]) == shown(mart["eac_cpi"], 0)
        assert parsed(cells["finish_variance_days"]) == shown(mart["finish_variance_days"], 0)
        assert cells["freshness"].endswith(" d")


def test_the_report_reads_the_marts_of_the_status_date_asked_for(marts: Engine) -> None:
    with marts.connect() as conn:
        latest, earlier = rd.read(conn), rd.read(conn, date(2026, 11, 1))
        with pytest.raises(rd.NoStatus, match="no project status on or before 2026-09-30 in the marts"):
            rd.read(conn, date(2026, 9, 30))
    assert (latest.as_of, earlier.as_of) == (D2, D1)
    view = {r["project_id"]: r for r in rows(marts, "SELECT * FROM rpt_portfolio_status")}
    assert {p["project_id"]: (p["ev"], p["rag"]) for p in latest.portfolio} == {
        pid: (r["ev"], r["rag"]) for pid, r in view.items()
    }
    assert [p["rag"] for p in latest.portfolio] == sorted(
        (p["rag"] for p in latest.portfolio), key=lambda rag: rd.RAG_ORDER[rag]
    )
    d1 = {
        r["project_id"]: r["ac"]
        for r in rows(marts, "SELECT * FROM fact_project_status WHERE status_date = :d", d=D1.isoformat())
    }
    assert {p["project_id"]: p["ac"] for p in earlier.portfolio} == d1
    # Hours by tool: each tool's own bookings and finance's labour hours, summed as the facts hold them.
    booked = rows(
        marts,
        "SELECT s.system_name AS tool, SUM(f.hours) AS hours FROM fact_time_entry f JOIN dim_source s "
        "ON s.source = f.source WHERE f.project_id IS NOT NULL AND f.work_date <= :d GROUP BY s.system_name "
        "UNION ALL SELECT s.system_name, SUM(c.hours) FROM fact_cost c "
        "JOIN dim_source s ON s.source = c.source WHERE c.is_labour AND c.project_id IS NOT NULL "
        "AND c.posting_date <= :d GROUP BY s.system_name",
        d=D2.isoformat(),
    )
    totals: dict[str, Decimal] = {}
    for per_project in latest.hours.values():
        for r in per_project:
            totals[r["tool"]] = totals.get(r["tool"], Decimal(0)) + Decimal(str(r["hours"]))
    assert totals == {r["tool"]: Decimal(str(r["hours"])) for r in booked}
    assert len(totals) == 3  # Jira, Project Online and finance
    # Open exceptions: every one of the project's own, counted as fact_project_status counts them.
    for p in latest.portfolio:
        own = [e for e in latest.open_exceptions.get(p["project_id"], []) if e["subject_type"] == "project"]
        assert len(own) == p["open_exceptions"]


def test_the_report_shows_earned_schedule_and_staleness_once_the_marts_carry_them(marts: Engine) -> None:
    """Before the earned-schedule columns exist the table shows SPI; once they do, SPI(t) and stale days."""
    with marts.connect() as conn:
        data = rd.read(conn)
    assert "SPI(t)" not in render(data) or "spi_t" in data.status_columns
    missing = {"spi_t": "NUMERIC(12, 4)", "stale_days": "INTEGER"}
    have = {c["name"] for c in inspect(marts).get_columns("fact_project_status")}
    with marts.begin() as conn:
        for name, type_ in missing.items():
            if name not in have:
                conn.execute(text(f"ALTER TABLE fact_project_status ADD COLUMN {name} {type_}"))
        conn.execute(text("UPDATE fact_project_status SET spi_t = 0.8125, stale_days = 9"))
    try:
        with marts.connect() as conn:
            data = rd.read(conn)
        page = render(data)
        assert '<th data-col="spi_t">SPI(t)</th>' in page and '<th data-col="spi">' not in page
        assert page.count('<td data-col="spi_t" class="num">0.81</td>') == len(data.portfolio)
        assert page.count('<td data-col="freshness" class="num">9 d</td>') == len(data.portfolio)
    finally:
        with marts.begin() as conn:
            for name in missing:
                if name not in have:
                    conn.execute(text(f"ALTER TABLE fact_project_status DROP COLUMN {name}"))


def test_pmo_report_writes_the_page_or_says_in_one_line_why_not(marts: Engine, tmp_path: Path) -> None:
    url = marts.url.render_as_string(hide_password=False)
    out = tmp_path / "sub" / "portfolio.html"
    runner = CliRunner()
    done = runner.invoke(app, ["report", "--as-of", "2026-11-01", "--out", str(out), "--database-url", url,
                               "--config", str(tmp_path / "none.toml")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"Report as of {D1}: " in done.output and str(out.resolve()) in done.output
    page = out.read_text(encoding="utf-8")
    assert f"status date {D1}" in page and "https://" not in page.split("<body>")[1]
    refused = runner.invoke(app, ["report", "--as-of", "2026-01-01", "--out", str(tmp_path / "x.html"),
                                  "--database-url", url, "--config", "none.toml"])  # fmt: skip
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "✗ no project status on or before 2026-01-01 in the marts: run a sync (or refresh the marts) first"
    )
    assert not (tmp_path / "x.html").exists()


@pytest.mark.flow
def test_refresh_marts_flow_writes_the_report_and_publishes_its_rag_table(
    prefect_harness: None, marts: Engine, tmp_path: Path
) -> None:
    from prefect.artifacts import Artifact

    from flows.sync import refresh_marts_flow

    config = tmp_path / "pmo.toml"
    url = marts.url.render_as_string(hide_password=False)
    config.write_text(
        f'[warehouse]\nurl = "{url}"\n[sources.erp]\ntype = "finance"\ninstance = "erp"\nfolder = "."\n'
        '[sources.erp.streams.cost_lines]\npattern = "*.csv"\nprofile = "generic_costs"\n',
        encoding="utf-8",
    )
    refresh_marts_flow(config_path=str(config), at=D2)
    out = tmp_path / "report.html"
    assert f"status date {D2}" in out.read_text(encoding="utf-8")
    artifact = Artifact.get("portfolio-report")
    assert artifact is not None and artifact.type == "markdown"
    assert f"Full report: `{out.resolve()}`" in artifact.data
    assert "| Project | Name | RAG | Why | % complete | CPI | SPI(t) | EAC |" in artifact.data
    (p1001,) = [
        line for line in artifact.data.splitlines() if line.startswith("| P-1001 | Intranet Relaunch |")
    ]
    mart = rows(
        marts,
        "SELECT s.rag, s.rag_reason, s.cpi FROM fact_project_status s JOIN dim_project p"
        " ON p.project_id = s.project_id AND p.is_current WHERE p.key = 'P-1001' AND s.status_date = :d",
        d=D2.isoformat(),
    )[0]
    assert p1001.startswith(f"| P-1001 | Intranet Relaunch | {mart['rag']} | {mart['rag_reason'] or ''} |")
