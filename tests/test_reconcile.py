"""Reconciliation on the sandbox portfolio, judged against the sandbox's ground truth (``sandbox.truth``).

The sandbox is synced for real once per session (tests/marts_support.py) and loaded into each test's
warehouse, SQLite and PostgreSQL. Every planted discrepancy must be reported and nothing else; identity
matching must reach F1 >= 0.98 on the planted name variants with no wrong automatic match.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from marts_support import Rows, load, sandbox_rows
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from flows import config as cfg
from flows.cli import app
from flows.demo import prepare
from flows.reconcile import read_decisions, render_decisions, run_reconcile, settings
from model.recon import system_of
from sandbox.portfolio import Expected, Portfolio, generate
from sandbox.truth import expected_exceptions, identities
from warehouse.crosswalk import current_members, decide_review
from warehouse.db import make_engine, upgrade
from warehouse.reconcile import open_reviews, reconcile
from warehouse.schema import XREF_TABLES, mapping_review, project_reconciled, recon_exception

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # the sandbox's as-of day: due dates are judged on it
AS_OF = (date(2025, 12, 2), date(2026, 12, 2), date(2027, 12, 2))  # sandbox portfolios a year apart


@pytest.fixture(scope="module")
def pf() -> Portfolio:
    return generate(7)


def truth_of(pf: Portfolio, entity: str, ref: tuple[str, str]) -> str:
    """The real-world thing a warehouse record is (finance instances share the ERP's codes)."""
    return identities(pf)[entity][(system_of(ref[0]), ref[1])]


def reported(engine: Engine, pf: Portfolio) -> set[Expected]:
    """The open exceptions, in the ground truth's terms: subject by truth id, sources by system."""
    out = set()
    with engine.connect() as conn:
        members = {e: current_members(conn, e) for e in ("project", "person")}
        for x in conn.execute(select(recon_exception).where(recon_exception.c.resolved_at.is_(None))):
            if x.subject_type in ("task", "risk", "issue"):
                subject = x.subject_key
            else:
                truths = {truth_of(pf, x.subject_type, m) for m in members[x.subject_type][x.subject_id]}
                assert len(truths) == 1, f"{x.rule} on a canonical {x.subject_type} mixing {truths}"
                subject = truths.pop()
            systems = tuple(sorted(system_of(s) for s in x.sources.split("|")))
            out.add(Expected(x.rule, subject, x.period, systems))
    return out


def pair_counts(engine: Engine, pf: Portfolio, entity: str) -> dict[str, Any]:
    """Pairwise precision/recall of the crosswalk against the truth, over every record it holds."""
    with engine.connect() as conn:
        clusters = current_members(conn, entity)
    predicted = {ref: cid for cid, refs in clusters.items() for ref in refs}
    truth = {ref: truth_of(pf, entity, ref) for ref in predicted}
    tp = fp = fn = 0
    wrong = []
    for a, b in combinations(sorted(predicted), 2):
        same_truth, same_pred = truth[a] == truth[b], predicted[a] == predicted[b]
        tp += same_truth and same_pred
        fn += same_truth and not same_pred
        if same_pred and not same_truth:
            fp += 1
            wrong.append((a, b))
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "f1": f1, "wrong": wrong, "records": len(predicted)}


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """What a re-run must not change: crosswalks, reviews, reconciled projects, exceptions."""
    skip = {"last_seen_at", "updated_at"}
    out = {}
    with engine.connect() as conn:
        for t in (*XREF_TABLES.values(), mapping_review, project_reconciled, recon_exception):
            cols = [c for c in t.columns if c.name not in skip]
            out[t.name] = sorted(map(tuple, conn.execute(select(*cols))), key=repr)
    return out


@pytest.fixture
def sandbox(engine: Engine) -> Engine:
    load(engine, sandbox_rows())
    return engine


@pytest.mark.parametrize("as_of", AS_OF, ids=str)
def test_every_planted_discrepancy_is_reported_and_nothing_else(engine: Engine, as_of: date) -> None:
    pf = generate(7, as_of=as_of)
    load(engine, sandbox_rows(as_of))
    at = datetime.combine(as_of, time(2), UTC)
    result = reconcile(engine, at=at)
    expected = expected_exceptions(pf)
    got = reported(engine, pf)
    assert got - expected == set(), "reported but not planted"
    assert expected - got == set(), "planted but not reported"
    n = len(expected)
    assert n == 29 and result.exceptions == {"opened": n, "reopened": 0, "open": n, "resolved": 0}
    with engine.connect() as conn:
        rows = {
            (r.rule, r.subject_key, r.period, r.sources): r for r in conn.execute(select(recon_exception))
        }
    # The figures a PMO acts on: the planted rate error is 1,500 EUR on top of Project's cost.
    (d4,) = pf.plants("finance_rate_error")
    (e4,) = d4.expect
    cost = rows[(e4.rule, e4.subject, e4.period, "finance:acme-sap|projectonline:acme.sharepoint.example")]
    assert (cost.unit, cost.difference, cost.first_seen_at.replace(tzinfo=UTC)) == ("EUR", -1500, at)
    orphan = rows[("orphan_cost", "P-1099", "", "finance:acme-sap")]
    assert orphan.unit == "EUR" and orphan.actual > 0 and "P-1099" in orphan.detail
    assert cost.severity in ("low", "medium", "high") and cost.detail


def test_identity_matching_on_planted_variants(sandbox: Engine, pf: Portfolio) -> None:
    reconcile(sandbox, at=T0)
    for entity in ("project", "person"):
        c = pair_counts(sandbox, pf, entity)
        print(entity, {k: v for k, v in c.items() if k != "wrong"})
        assert c["wrong"] == [], f"{entity}: records of different things matched"
        assert c["f1"] >= 0.98, f"{entity}: {c}"
    with sandbox.connect() as conn:
        x = XREF_TABLES["person"].c
        methods = {
            r.source_id: (r.method, r.matched_source_id)
            for r in conn.execute(
                select(x.source_id, x.method, x.matched_source_id).where(x.valid_to.is_(None))
            )
        }
    anna = next(p for p in pf.people if p.name == "Anna Dubois")
    assert methods[anna.jira_account_id][0] == "fuzzy"  # Jira's "Anna Dubis" hides her e-mail


def test_reconciled_project_takes_each_field_from_the_preferred_source(
    sandbox: Engine, pf: Portfolio
) -> None:
    import json

    reconcile(sandbox, at=T0)
    slipped = next(p for p in pf.planted if p.kind == "finish_slip_in_file").where
    with sandbox.connect() as conn:
        rows = [r for r in conn.execute(select(project_reconciled)) if r.key == slipped]
    assert len(rows) == 1
    row, won = rows[0], json.loads(rows[0].field_sources)
    assert system_of(won["finish_date"]) == "projectonline"  # dates: Project Online before the file
    assert row.finish_date == pf.project(slipped).finish
    assert system_of(won["budget_amount"]) == "finance"
    assert system_of(won["status"]) == "projectonline"  # Jira is preferred, but a Jira project has no status
    assert {system_of(s.split("/")[0]) for s in row.sources.split(" | ")} >= {
        "jira",
        "projectonline",
        "finance",
    }


def test_running_again_without_new_data_changes_nothing(sandbox: Engine) -> None:
    reconcile(sandbox, at=T0)
    before = snapshot(sandbox)
    again = reconcile(sandbox, at=T0 + timedelta(days=1))
    assert snapshot(sandbox) == before
    assert again.mappings_changed == {"project": 0, "person": 0, "task": 0}
    assert again.exceptions["opened"] == again.exceptions["resolved"] == 0
    with sandbox.connect() as conn:
        seen = {r.replace(tzinfo=UTC) for r in conn.scalars(select(recon_exception.c.last_seen_at))}
    assert seen == {T0 + timedelta(days=1)}


def hidden_jira_person(pf: Portfolio, rows: Rows) -> tuple[Rows, str, str]:
    """The sandbox with one planted person's Jira account misspelt and e-mail hidden: a review case.

    Returns the rows, the employee number and the Jira account id. That person has planted Jira hour
    discrepancies, so whether the account is matched decides whether those exceptions are reported.
    """
    emp = next(
        e.subject for e in sorted(expected_exceptions(pf), key=repr)
        if e.rule == "hours_person_week" and "jira" in e.systems
    )  # fmt: skip
    account = next(p.jira_account_id for p in pf.people if p.employee_number == emp)
    changed = copy.deepcopy(rows)
    for r in changed["person"]:
        if system_of(r["source"]) == "jira" and r["source_id"] == account:
            first, last = r["display_name"].split(" ", 1)
            r.update(email=None, display_name=f"{first[:-1]}z {last}s")  # "Ines Hansen" -> "Inez Hansens"
    return changed, emp, account


def jira_hour_exceptions(pf: Portfolio, emp: str) -> set[Expected]:
    return {e for e in expected_exceptions(pf) if e.subject == emp and "jira" in e.systems}


def test_approving_a_review_item_changes_the_crosswalk_and_the_exceptions(
    engine: Engine, pf: Portfolio
) -> None:
    rows, emp, account = hidden_jira_person(pf, sandbox_rows())
    load(engine, rows)
    reconcile(engine, at=T0)
    with engine.connect() as conn:
        items = [r for r in open_reviews(conn, "person") if account in (r.source_id, r.candidate_source_id)]
    assert len(items) == 1, "the misspelt account waits for a person's decision"
    assert 80 <= float(items[0].score) < 95
    missing = jira_hour_exceptions(pf, emp)
    assert len(missing) == 2
    assert reported(engine, pf) == expected_exceptions(pf) - missing  # its Jira hours belong to nobody yet

    with engine.begin() as conn:
        decide_review(conn, items[0].id, True, "jane.doe", T0 + timedelta(hours=1), "maiden name in Jira")
    result = reconcile(engine, at=T0 + timedelta(hours=2))
    assert result.exceptions["opened"] == 2
    assert reported(engine, pf) == expected_exceptions(pf)
    x = XREF_TABLES["person"].c
    with engine.connect() as conn:
        history = conn.execute(
            select(x.canonical_id, x.method, x.review_status, x.decided_by, x.valid_to)
            .where(x.source_id == account)
            .order_by(x.valid_from)
        ).all()
        members = current_members(conn, "person")
        assert open_reviews(conn, "person") == []
    assert [(h.method, h.review_status, h.decided_by) for h in history] == [
        (None, "pending", "pmo-sync"),
        ("manual", "approved", "jane.doe"),
    ]
    assert history[0].valid_to is not None and history[1].valid_to is None
    cluster = next(refs for refs in members.values() if any(r[1] == account for r in refs))
    assert {truth_of(pf, "person", r) for r in cluster} == {emp}

    # The decision survives later runs and is not asked again.
    reconcile(engine, at=T0 + timedelta(days=1))
    assert reported(engine, pf) == expected_exceptions(pf)
    with engine.connect() as conn:
        assert open_reviews(conn) == []


def test_rejecting_a_review_item_keeps_the_records_apart_for_good(
    sqlite_engine: Engine, pf: Portfolio
) -> None:
    rows, emp, _ = hidden_jira_person(pf, sandbox_rows())
    load(sqlite_engine, rows)
    reconcile(sqlite_engine, at=T0)
    with sqlite_engine.begin() as conn:
        item = open_reviews(conn, "person")[0]
        decide_review(conn, item.id, False, "jane.doe", T0, None)
    reconcile(sqlite_engine, at=T0 + timedelta(days=1))
    with sqlite_engine.connect() as conn:
        assert open_reviews(conn) == []
        statuses = [r.status for r in conn.execute(select(mapping_review))]
    assert statuses == ["rejected"]
    assert reported(sqlite_engine, pf) == expected_exceptions(pf) - jira_hour_exceptions(pf, emp)
    with (
        pytest.raises(LookupError, match=f"review item {item.id} is rejected, not open"),
        sqlite_engine.begin() as conn,
    ):
        decide_review(conn, item.id, True, "jane.doe", T0, None)


# --- the CLI and the versioned decisions file ----------------------------------------------------------


def cli_setup(tmp_path: Path, engine: Engine, pf: Portfolio) -> tuple[Path, list[str], str]:
    rows, _, account = hidden_jira_person(pf, sandbox_rows())
    load(engine, rows)
    config = prepare(tmp_path / "pmo")
    text = config.read_text(encoding="utf-8")
    extra = 'decisions = "mappings.toml"\naccept = 95\nreview = 80\n'
    config.write_text(text.replace("[reconcile]\n", f"[reconcile]\n{extra}"), encoding="utf-8")
    url = engine.url.render_as_string(hide_password=False)
    return config, ["--config", str(config), "--database-url", url], account


def test_cli_review_approve_export_and_the_file_rebuilds_the_decision(
    tmp_path: Path, sqlite_engine: Engine, pf: Portfolio
) -> None:
    config, opts, account = cli_setup(tmp_path, sqlite_engine, pf)
    cli = CliRunner()
    out = cli.invoke(app, ["reconcile", *opts])
    assert out.exit_code == 0, out.output
    assert "hours_person_week" in out.output and "1 mapping(s) to review" in out.output

    out = cli.invoke(app, ["mappings", "review", *opts])
    assert out.exit_code == 0, out.output
    with sqlite_engine.connect() as conn:
        item = open_reviews(conn)[0]
    assert item.name in out.output and item.candidate_name in out.output

    out = cli.invoke(
        app, ["mappings", "approve", str(item.id), "--by", "jane.doe", "--note", "same person", *opts]
    )
    assert out.exit_code == 0, out.output
    assert "are the same persons" in out.output and "0 mapping(s) to review" in out.output

    out = cli.invoke(app, ["mappings", "list", "--entity", "person", "--status", "approved", *opts])
    assert out.exit_code == 0 and account in out.output

    out = cli.invoke(app, ["mappings", "export", *opts])
    assert out.exit_code == 0 and "1 decision(s) written" in out.output
    decisions = read_decisions(config.parent / "mappings.toml")
    assert [(d["entity"], d["same"], d["by"], d["note"]) for d in decisions] == [
        ("person", True, "jane.doe", "same person")
    ]
    assert account in {decisions[0]["a"][1], decisions[0]["b"][1]}

    # A warehouse rebuilt from scratch gets the decision back from the file alone.
    rebuilt = tmp_path / "rebuilt.db"
    fresh = make_engine(f"sqlite:///{rebuilt}")
    upgrade(fresh)
    load(fresh, hidden_jira_person(pf, sandbox_rows())[0])
    run_reconcile(fresh, cfg.load(config))
    assert reported(fresh, pf) == expected_exceptions(pf)
    fresh.dispose()

    out = cli.invoke(app, ["mappings", "approve", "999", *opts])
    assert out.exit_code == 1 and "no review item 999" in out.output


def test_a_bad_decisions_file_names_the_entry_and_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "mappings.toml"
    path.write_text(
        '[[decision]]\nentity = "person"\nrecord = { source = "jira:x", id = "a" }\n'
        'same_as = { source = "finance:y", id = "1" }\ndecided_at = 2026-11-22T10:00:00Z\n'
        '\n[[decision]]\nentity = "programme"\nrecord = { source = "jira:x", id = "b" }\n'
        'same_as = { source = "finance:y", id = "2" }\ndecided_at = 2026-11-22T10:00:00Z\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"mappings.toml: decision #2: entity must be one of .*'programme'"):
        read_decisions(path)
    path.write_text('[[decision]]\nentity = "person"\nrecord = "jira:x/a"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="decision #1: needs record and one of same_as / distinct_from"):
        read_decisions(path)


def test_reconcile_settings_problems_are_reported_together() -> None:
    _, problems = settings({"accept": "high", "review": 90, "hours_person_week": 3, "colour": "red"})
    assert problems == [
        "reconcile.colour: unknown setting (known: accept, as_of, budget_version, cost_plan_systems, "
        "cost_project_period, currency, decisions, finish_date_days, fiscal_year_start_month, high_pct, "
        "hours_per_day, hours_person_week, hours_project_month, medium_pct, overallocation, "
        "percent_complete_points, percent_complete_systems, plan_systems, prefer, review, risk_high_score, "
        "timesheet_min_share, timesheet_systems)",
        "reconcile.hours_person_week: expected { absolute = N, relative = 0.05 }",
        "reconcile.accept: not a number: 'high'",
        "reconcile: need 0 <= review (90.0) <= accept (0.0) <= 100",
    ]


def test_decisions_file_round_trips_any_note_and_id(tmp_path: Path) -> None:
    from types import SimpleNamespace

    note = 'says "same"\\ on\nthree\tlines\r and a bell \x07'
    row = SimpleNamespace(
        entity="person", source="jira:acme", source_id='5b10"ac', other_source="projectonline:acme",
        other_source_id="9d63", verdict="distinct", decided_by="jane.doe", note=note,
        decided_at=datetime(2026, 11, 22, 10, tzinfo=UTC),
    )  # fmt: skip
    path = tmp_path / "mappings.toml"
    path.write_text(render_decisions([row]), encoding="utf-8")
    (d,) = read_decisions(path)
    assert d == dict(
        entity="person", a=("jira:acme", '5b10"ac'), b=("projectonline:acme", "9d63"), same=False,
        by="jane.doe", at=datetime(2026, 11, 22, 10, tzinfo=UTC), note=note,
    )  # fmt: skip


def test_cli_marts_refreshes_and_prints_the_rag_table(
    tmp_path: Path, sqlite_engine: Engine, pf: Portfolio
) -> None:
    _, opts, _ = cli_setup(tmp_path, sqlite_engine, pf)
    cli = CliRunner()
    assert cli.invoke(app, ["reconcile", *opts]).exit_code == 0
    out = cli.invoke(app, ["marts", *opts])
    assert out.exit_code == 0, out.output
    slipped = next(p for p in pf.planted if p.kind == "finish_slip_in_file").where
    assert "Portfolio RAG as of" in out.output
    row = next(ln for ln in out.output.splitlines() if slipped in ln)
    assert "green" not in row  # its finish-date exception: never green
    with sqlite_engine.connect() as conn:
        reason = conn.execute(
            select(text("rag_reason"))
            .select_from(text("rpt_portfolio_status"))
            .where(text("project_key = :k")),
            {"k": slipped},
        ).scalar_one()
    assert "open high exceptions" in reason
