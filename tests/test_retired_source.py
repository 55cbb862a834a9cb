"""A retired source (``retired = <date>``): not synced, its rows kept and reconciled, freshness says retired.

Real finance loads through ``pmo sync`` into real warehouses (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from support import count_rows
from typer.testing import CliRunner

from flows import config as cfg
from flows.cli import app
from sandbox.finance import GENERIC_HEADER
from warehouse.freshness import record_retired
from warehouse.schema import XREF_TABLES, source_retired, sync_run

LIVE = """\
[sources.erp]
type = "finance"
instance = "acme-sap"
folder = "sap"

[sources.erp.streams.cost_lines]
pattern = "cji3_*.csv"
profile = "generic_costs"

[sources.ap]
type = "finance"
instance = "acme-ap"
folder = "ap"
{retired}
[sources.ap.streams.cost_lines]
pattern = "ap_*.csv"
profile = "generic_costs"
"""
# Gone with Project Online: its password variable was removed too, and must not be read.
PROJECT_ONLINE = """
[sources.pwa]
type = "projectonline"
pwa_url = "https://project.acme.local/pwa"
auth = "windows"
username = "ACME\\\\svc-pmo"
password = { env = "PMO_TEST_GONE_PASSWORD" }
retired = 2026-09-30
"""


def export(path: Path, *lines: tuple[str, str, str]) -> None:
    """A generic cost export: (document, project code, amount) per line, one labour hour each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([GENERIC_HEADER, *(
            [doc, "1", "2026-06-01", code, f"{code}.01", "CC-1", "619000", amount, "EUR", "", "1", "Labour"]
            for doc, code, amount in lines
        )])  # fmt: skip


def pmo(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def freshness(engine: Engine) -> dict[str, tuple[str, object]]:
    """source → (status, retired_on) of its rows in rpt_data_freshness (one stream each here)."""
    with engine.connect() as c:
        rows = c.execute(text("SELECT source, status, retired_on FROM rpt_data_freshness")).all()
    return {r.source: (r.status, r.retired_on and str(r.retired_on)[:10]) for r in rows}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    export(tmp_path / "sap" / "cji3_01.csv", ("S1", "P-1", "100.00"), ("S2", "P-2", "50.00"))
    export(tmp_path / "ap" / "ap_01.csv", ("A1", "P-1", "10.00"), ("A2", "P-9", "20.00"))
    (tmp_path / "pmo.toml").write_text(LIVE.format(retired=""), encoding="utf-8")
    return tmp_path / "pmo.toml"


def test_a_retired_source_is_not_synced_its_rows_stay_reconciled_and_freshness_says_retired(
    engine: Engine, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PMO_TEST_GONE_PASSWORD", raising=False)
    opts = ("--config", str(site), "--database-url", engine.url.render_as_string(hide_password=False))
    assert pmo("sync", *opts)[0] == 0  # both live: the AP system's history is loaded
    assert freshness(engine) == {"finance:acme-sap": ("ok", None), "finance:acme-ap": ("ok", None)}

    site.write_text(LIVE.format(retired="retired = 2026-09-30\n") + PROJECT_ONLINE, encoding="utf-8")
    export(site.parent / "ap" / "ap_02.csv", ("A3", "P-1", "30.00"))  # arrives after it retired: not read
    export(site.parent / "sap" / "cji3_02.csv", ("S3", "P-2", "5.00"))
    with engine.connect() as c:
        runs_before = c.execute(select(sync_run.c.source)).scalars().all()
    code, out, err = pmo("sync", *opts)
    assert (code, err) == (0, "")
    assert "ap: retired on 2026-09-30, not synced; its rows stay in the warehouse." in out
    assert "pwa: retired on 2026-09-30, not synced" in out
    assert count_rows(engine, "cost_line", "finance:acme-ap") == 2  # kept, and ap_02.csv not loaded
    assert count_rows(engine, "cost_line", "finance:acme-sap") == 3
    with engine.connect() as c:
        new_runs = c.execute(select(sync_run.c.source, sync_run.c.status)).all()[len(runs_before) :]
        retired = dict(c.execute(select(source_retired.c.source, source_retired.c.retired_on)).tuples().all())
        x = XREF_TABLES["project"].c
        mine = (x.source == "finance:acme-ap") & x.valid_to.is_(None)
        reconciled = c.execute(select(x.source_id).where(mine)).scalars().all()
    assert new_runs == [("finance:acme-sap", "succeeded")]  # nothing of the retired ones ran or failed
    assert retired == {
        "finance:acme-ap": date(2026, 9, 30),
        "projectonline:project.acme.local": date(2026, 9, 30),  # named, its password never read
    }
    assert sorted(reconciled) == ["P-1", "P-9"]  # the retired source's projects still reconcile
    assert freshness(engine) == {
        "finance:acme-sap": ("ok", None),
        "finance:acme-ap": ("retired", "2026-09-30"),
    }
    code, out, _ = pmo("freshness", *opts)
    rows = [" ".join(line.split()) for line in out.splitlines() if "finance:acme" in line]
    assert code == 0 and [r.split("│")[1:4] for r in rows] == [
        [" finance:acme-ap ", " cost_lines ", " retired 2026-09-30 "],
        [" finance:acme-sap ", " cost_lines ", " ok "],
    ]

    # Months later its last success is old; it is retired, so no project of it goes stale (grey) for it.
    with engine.begin() as c:
        long_ago = datetime.now(UTC) - timedelta(days=60)  # a value: SQLite's date arithmetic gives a number
        c.execute(update(sync_run).where(sync_run.c.source == "finance:acme-ap").values(finished_at=long_ago))
    assert pmo("marts", *opts)[0] == 0
    with engine.connect() as c:
        stale = c.execute(text("SELECT p.key, s.stale_days FROM fact_project_status s JOIN dim_project p "
                               "ON p.project_id = s.project_id AND p.is_current")).tuples().all()  # fmt: skip
    assert dict(stale) == {"P-1": 0, "P-2": 0, "P-9": None}  # P-9: only the retired source has it

    site.write_text(LIVE.format(retired=""), encoding="utf-8")  # brought back: live again
    assert pmo("sync", *opts)[0] == 0
    assert count_rows(engine, "cost_line", "finance:acme-ap") == 3
    assert freshness(engine)["finance:acme-ap"] == ("ok", None)


def test_config_check_names_a_retired_source_without_reading_its_secrets(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PMO_TEST_GONE_PASSWORD", raising=False)
    site.write_text(LIVE.format(retired="") + PROJECT_ONLINE, encoding="utf-8")
    code, out, err = pmo("config", "check", "--config", str(site))
    assert (code, err) == (0, "")
    assert "✓ pwa: retired on 2026-09-30, not synced (its secrets are not read)" in out
    assert [s.source for s in cfg.load(site).streams()] == ["finance:acme-sap", "finance:acme-ap"]


def test_retired_must_be_a_date(site: Path) -> None:
    site.write_text(LIVE.format(retired='retired = "last autumn"\n'), encoding="utf-8")
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(site)
    assert e.value.problems == [f"{site}:14: sources.ap.retired: input should be a valid date, got str"]


def test_record_retired_keeps_when_a_retirement_was_first_noted(engine: Engine) -> None:
    record_retired(engine, {"finance:a": date(2026, 9, 30), "finance:b": date(2026, 1, 1)})
    with engine.connect() as c:
        first = dict(c.execute(select(source_retired.c.source, source_retired.c.noted_at)).tuples().all())
    record_retired(engine, {"finance:a": date(2026, 10, 1)})
    with engine.connect() as c:
        rows = c.execute(select(source_retired)).all()
    assert [(r.source, r.retired_on, r.noted_at) for r in rows] == [
        ("finance:a", date(2026, 10, 1), first["finance:a"])
    ]


def test_a_retired_sources_silence_after_its_retirement_is_no_discrepancy(engine: Engine) -> None:
    """Jira and Project Server both hold Ann's hours until Project Server is retired on 2026-09-30. The
    weeks after hold hours only in Jira: no exception. A week before it with Project Server silent still
    is one (it should have held them)."""
    from decimal import Decimal

    from model.records import Person, Project, TimeEntry
    from warehouse.load import upsert
    from warehouse.reconcile import reconcile

    jira, pwa = "jira:acme.example", "projectonline:pwa.example"
    weeks = [date(2026, 9, 7), date(2026, 9, 14), date(2026, 10, 5), date(2026, 10, 12)]  # Mondays
    people = [Person(source=src, source_id="ann", display_name="Ann Archer", email="ann@example.com")
              for src in (jira, pwa)]  # fmt: skip
    projects = [Project(source=src, source_id="p", key="P-1", name="Alpha") for src in (jira, pwa)]
    hours = [
        TimeEntry(source=src, source_id=f"{src}-{w}", person_source_id="ann", project_source_id="p",
                  work_date=w, hours=Decimal(40))
        for w in weeks
        for src in (jira, pwa)
        if src == jira or w == weeks[0]  # Project Server: the first week only; silent the second
    ]  # fmt: skip
    with engine.begin() as conn:
        for batch in (people, projects, hours):
            upsert(conn, batch)
    record_retired(engine, {pwa: date(2026, 9, 30)})
    reconcile(engine, at=datetime(2026, 10, 20, tzinfo=UTC))
    with engine.connect() as c:
        found = c.execute(
            text("SELECT rule, period FROM recon_exception WHERE rule IN ('hours_person_week', "
                 "'hours_project_month') AND resolved_at IS NULL ORDER BY rule, period")
        ).tuples().all()  # fmt: skip
    # September: Project Server silent in week 38 while live; October: retired, its silence expected.
    assert found == [("hours_person_week", "2026-W38"), ("hours_project_month", "2026-09")]


def test_a_retired_plans_silence_after_its_retirement_is_no_cost_discrepancy(engine: Engine) -> None:
    """Finance books Alpha's labour cost every month; Project Server's plan held its actual cost until it
    was retired on 2026-09-30. September disagrees (the plan is silent while live); October does not."""
    from decimal import Decimal

    from model.records import CostLine, PlannedWork, Project
    from warehouse.load import upsert
    from warehouse.reconcile import reconcile

    erp, pwa = "finance:acme-sap", "projectonline:pwa.example"
    months = [date(2026, 8, 14), date(2026, 9, 14), date(2026, 10, 14)]
    records = [
        Project(source=erp, source_id="P-1", key="P-1"),
        Project(source=pwa, source_id="p", key="P-1", name="Alpha"),
        *(CostLine(source=erp, source_id=f"c{d}", posting_date=d, fiscal_period=f"{d:%Y-%m}",
                   project_code="P-1", amount=Decimal(1000), currency="EUR", hours=Decimal(10))
          for d in months),
        PlannedWork(source=pwa, source_id="w-aug", project_source_id="p", work_date=months[0],
                    actual_cost=Decimal(1000), currency="EUR"),
    ]  # fmt: skip
    with engine.begin() as conn:
        for kind in (Project, CostLine, PlannedWork):
            upsert(conn, [r for r in records if type(r) is kind])
    record_retired(engine, {pwa: date(2026, 9, 30)})
    reconcile(engine, at=datetime(2026, 11, 2, tzinfo=UTC))
    with engine.connect() as c:
        rule = "rule = 'cost_project_period' AND resolved_at IS NULL"
        found = c.execute(text(f"SELECT period FROM recon_exception WHERE {rule}")).scalars().all()
    assert found == ["2026-09"]
