"""Configuration validation and the pmo CLI, as a PMO engineer meets them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from flows import config as cfg
from flows.cli import app
from flows.demo import prepare
from warehouse.db import make_engine
from warehouse.schema import ENTITY_TABLES, sync_run

runner = CliRunner()

BAD = """
[warehouse]
url = "sqlite:///x.db"

[sources.erp]
type = "finance"
instance = "acme"
folder = "exports"
token = "abc123"

[sources.erp.streams.cost_lines]
pattern = "*.csv"
profile = "sap_cj13"

[sources.erp.streams.more_costs]
pattern = "*.txt"
profile = "generic_costs"
colour = "blue"

[sources.wiki]
type = "confluence"
"""


def test_config_check_lists_every_problem_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    path = tmp_path / "pmo.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path)
    assert err.value.problems == [  # in the order of the file, each at the line of its key
        f"{path}:9: sources.erp.token: secrets may not be written in the file;"
        ' use { env = "NAME" } or { secret = "prefect-block" }',
        f"{path}:13: sources.erp.streams.cost_lines.profile: profile 'sap_cj13' not found"
        " (built-in profiles: generic_budget, generic_costs, sap_cji3)",
        f"{path}:18: sources.erp.streams.more_costs: unknown keys ['colour']",
        f"{path}:21: sources.wiki.type: 'confluence' is not a known source type"
        " (one of dataverse, finance, jira, planner, projectfiles, projectonline, raid)",
    ]
    result = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "abc123" not in result.output  # the literal secret is named, never echoed
    assert f"{path}:13: sources.erp.streams.cost_lines.profile: profile 'sap_cj13' not found" in result.output


GOOD_FINANCE = """\
[sources.erp]
type = "finance"
instance = "acme"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "cji3_*.csv"
profile = "sap_cji3"
"""


def _check(tmp_path: Path, text: str) -> tuple[int, str]:
    """``pmo config check`` on ``text``: exit code and output with rich's line wrapping undone."""
    path = tmp_path / "pmo.toml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def test_config_check_names_a_folder_that_is_not_text_at_its_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    code, out = _check(tmp_path, GOOD_FINANCE.replace('folder = "exports"', "folder = 42"))
    assert code == 2
    assert out == f"{tmp_path / 'pmo.toml'}:4: sources.erp.folder: must be a path (text), got 42"


def test_config_check_refuses_a_missing_folder_and_a_list_for_a_pattern(tmp_path: Path) -> None:
    text = GOOD_FINANCE.replace('pattern = "cji3_*.csv"', 'pattern = ["cji3_*.csv"]')
    code, out = _check(tmp_path, text)
    assert code == 2
    assert f"pmo.toml:4: sources.erp.folder: folder {tmp_path / 'exports'} does not exist" in out
    assert (
        "pmo.toml:7: sources.erp.streams.cost_lines.pattern: input should be a valid string, got list" in out
    )
    (tmp_path / "exports").mkdir()
    code, out = _check(tmp_path, GOOD_FINANCE)
    assert code == 0 and out.startswith("✓ erp (finance:acme): cost_lines ✓ warehouse:")


def test_config_check_names_misspelt_keys_with_a_guess(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    text = GOOD_FINANCE.replace('folder = "exports"', 'folder = "exports"\ninstanse = "x"').replace(
        "pattern =", "patern ="
    )
    code, out = _check(tmp_path, text)
    assert code == 2
    assert "pmo.toml:5: sources.erp: unknown keys ['instanse'] (did you mean 'instance'?)" in out
    assert (
        "pmo.toml:8: sources.erp.streams.cost_lines: unknown keys ['patern'] (did you mean 'pattern'?)" in out
    )


def test_config_check_refuses_a_literal_token_and_names_an_unset_one_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jira = """\
[sources.acme]
type = "jira"
url = "https://acme.atlassian.net"
email = "pmo@acme.example"
token = "abc"
"""
    code, out = _check(tmp_path, jira)
    assert code == 2 and "abc" not in out.replace("acme", "")
    assert f"{tmp_path / 'pmo.toml'}:5: sources.acme.token: secrets may not be written in the file" in out
    monkeypatch.delenv("PMO_TEST_UNSET", raising=False)
    code, out = _check(tmp_path, jira.replace('"abc"', '{ env = "PMO_TEST_UNSET" }'))
    assert code == 2
    assert out == (
        f"{tmp_path / 'pmo.toml'}:5: sources.acme.token: environment variable PMO_TEST_UNSET is not set"
    )


def test_secrets_resolve_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMO_TEST_TOKEN", "s3cr3t")
    assert cfg.resolve_secret({"env": "PMO_TEST_TOKEN"}, "sources.jira.token") == "s3cr3t"
    monkeypatch.delenv("PMO_TEST_TOKEN")
    with pytest.raises(
        cfg.ConfigError, match=r"sources\.jira\.token: environment variable PMO_TEST_TOKEN is not set"
    ):
        cfg.resolve_secret({"env": "PMO_TEST_TOKEN"}, "sources.jira.token")


def test_cli_sync_backfill_and_runs_on_the_sandbox(tmp_path: Path) -> None:
    config = prepare(tmp_path / "demo")
    assert runner.invoke(app, ["config", "check", "--config", str(config)]).exit_code == 0
    first = runner.invoke(app, ["sync", "--config", str(config)])
    assert first.exit_code == 0, first.output
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'warehouse.db'}")
    cost_line = ENTITY_TABLES["cost_line"]
    data = select(
        cost_line.c.source_id, cost_line.c.amount, cost_line.c.file, cost_line.c.deleted_at.is_(None)
    )
    with engine.connect() as c:
        lines = c.execute(select(func.count()).select_from(cost_line)).scalar()
        before = c.execute(data.order_by(cost_line.c.source_id)).all()
    assert lines > 2000
    again = runner.invoke(
        app,
        [
            "backfill",
            "erp",
            "--stream",
            "cost_lines",
            "--since",
            "2026-01-01",
            "--until",
            "2026-07-01",
            "--config",
            str(config),
        ],
    )
    assert again.exit_code == 0, again.output
    with engine.connect() as c:
        modes = c.execute(
            select(sync_run.c.stream, sync_run.c.mode, sync_run.c.rows_written).order_by(sync_run.c.id)
        ).all()
    assert modes[-1][:2] == ("cost_lines", "backfill")
    with engine.connect() as c:  # replaying every export in order ends where the nightly left off
        assert c.execute(data.order_by(cost_line.c.source_id)).all() == before
    shown = runner.invoke(app, ["runs", "--config", str(config)])
    assert shown.exit_code == 0 and "backfill" in shown.output and "succeeded" in shown.output
    bad = runner.invoke(
        app, ["backfill", "erp", "--since", "2026-02-01", "--until", "2026-01-01", "--config", str(config)]
    )
    assert bad.exit_code == 2 and "must be before" in bad.output


def test_inspect_prints_one_json_record_a_line_and_refuses_hostile_files(tmp_path: Path) -> None:
    import json

    from sandbox.mspdi import render
    from sandbox.portfolio import generate

    (plan, *_) = render(generate(7), tmp_path / "plans")
    result = runner.invoke(app, ["inspect", str(plan)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    kinds = {r["entity"] for r in records}
    assert kinds == {"project", "task", "person", "planned_work", "capacity"}
    assert all(r["source_id"] for r in records)
    hostile = tmp_path / "laughs.xml"
    hostile.write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        '<Project xmlns="http://schemas.microsoft.com/project">&lol;</Project>'
    )
    refused = runner.invoke(app, ["inspect", str(hostile)])
    assert refused.exit_code == 1 and "DTD" in refused.output


def test_warehouse_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    from warehouse.db import DEFAULT_URL, resolve_url

    monkeypatch.delenv("PMO_WAREHOUSE_URL", raising=False)
    assert resolve_url(None, None) == DEFAULT_URL
    assert resolve_url(None, "sqlite:///from-file.db") == "sqlite:///from-file.db"
    monkeypatch.setenv("PMO_WAREHOUSE_URL", "sqlite:///from-env.db")
    assert resolve_url(None, "sqlite:///from-file.db") == "sqlite:///from-env.db"
    assert resolve_url("sqlite:///flag.db", "sqlite:///from-file.db") == "sqlite:///flag.db"
