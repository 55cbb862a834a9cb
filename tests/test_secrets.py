"""Secrets never leave their place (issue #12, parts 5 and 8): redaction, the warehouse password, tokens
that go only to their own hosts, a refused token dropped from msal's cache, and what a BI role may read."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import responses
from conftest import PG_SKIP, PG_URL
from sqlalchemy import Engine, create_engine, exc, select, text
from sqlalchemy.engine import make_url
from support import SkippedTime
from test_ms_planner import LOGIN, TENANT, _login, _token_calls
from typer.testing import CliRunner

from connectors.base import SourceError
from connectors.jira.client import JiraClient
from connectors.microsoft.auth import MicrosoftAuth
from connectors.microsoft.graph import GraphClient
from flows import config as cfg
from flows.cli import app
from model.redact import redact, redact_logs, register
from warehouse.db import make_engine
from warehouse.schema import sync_run
from warehouse.sync import SyncRun

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
G = "https://graph.microsoft.com/v1.0"

CONFIG = """\
[warehouse]
url = "{url}"

[sources.erp]
type = "finance"
instance = "acme"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "*.csv"
profile = "generic_costs"
"""


# -- one redaction ---------------------------------------------------------------------------------------
def test_redaction_masks_urls_tokens_and_secrets_but_not_host_letters() -> None:
    register("acme", "Zq7-secret-token-42")  # a short value is no secret worth masking: it is ignored
    text = (
        "jira:acme.atlassian.net GET https://acme.atlassian.net/x: postgresql://bi:p%25%40x@db.acme/pmo;"
        " Authorization: Bearer eyJ0eXAi.abc.def; token Zq7-secret-token-42; client_secret=hunter2hunter2"
    )
    assert redact(text) == (
        "jira:acme.atlassian.net GET https://acme.atlassian.net/x: postgresql://bi:***@db.acme/pmo;"
        " Authorization: Bearer ***; token ***; client_secret=***"
    )
    assert redact("xZq7-secret-token-42") == "xZq7-secret-token-42"  # whole words only


@responses.activate
def test_a_short_jira_token_leaves_the_host_name_readable() -> None:
    responses.get("https://acme.atlassian.net/rest/api/3/myself", status=404, json={"errorMessages": ["no"]})
    client = JiraClient("https://acme.atlassian.net", "jira:acme.atlassian.net", email="a@b.c", token="acme")
    with pytest.raises(SourceError) as e:
        client.get("/rest/api/3/myself")
    assert str(e.value) == "jira:acme.atlassian.net: GET /rest/api/3/myself: HTTP 404: no"


def test_a_failed_run_stores_its_error_redacted(sqlite_engine: Engine) -> None:
    register("sk-live-0123456789abcdef")
    with pytest.raises(RuntimeError), SyncRun(sqlite_engine, "jira:acme", "issues"):
        raise RuntimeError("postgresql://pmo:Se%40cret@db/pmo refused key sk-live-0123456789abcdef")
    with sqlite_engine.connect() as c:
        error = c.execute(select(sync_run.c.error)).scalar_one()
    assert error == "RuntimeError: postgresql://pmo:***@db/pmo refused key ***"


def test_logs_are_redacted_by_every_handler_they_reach() -> None:
    out = io.StringIO()
    logger = logging.getLogger("pmo-test-redact")
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    logger.propagate = False
    redact_logs("pmo-test-redact")
    redact_logs("pmo-test-redact")  # idempotent: one filter per handler
    try:
        raise RuntimeError("refused: api_key=abcdef123456")
    except RuntimeError:
        logger.exception("cannot open %s", "postgresql://pmo:Pg-Pa55word@db/pmo")
    logger.removeHandler(handler)
    assert out.getvalue().splitlines()[0] == "cannot open postgresql://pmo:***@db/pmo"
    assert "RuntimeError: refused: api_key=***" in out.getvalue()
    assert "Pa55word" not in out.getvalue() and "abcdef" not in out.getvalue() and len(handler.filters) == 1


# -- the warehouse password --------------------------------------------------------------------------------
def test_config_check_prints_the_warehouse_url_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PMO_WAREHOUSE_URL", raising=False)
    path = tmp_path / "pmo.toml"
    (tmp_path / "exports").mkdir()
    path.write_text(CONFIG.format(url="postgresql://bi:Hunter2%40secret@db.internal/pmo"), encoding="utf-8")
    result = runner.invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "warehouse: postgresql://bi:***@db.internal/pmo" in result.output
    assert "Hunter2" not in result.output


@pytest.fixture
def pg_admin() -> Iterator[Engine]:
    if not PG_URL:
        pytest.skip(PG_SKIP)
    admin = create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    yield admin
    admin.dispose()


def _url(role: str, password: str, database: str) -> str:
    base = make_url(PG_URL or "")
    return f"postgresql://{role}:{quote(password, safe='')}@{base.host}:{base.port or 5432}/{database}"


def test_db_upgrade_works_with_a_password_full_of_url_characters(pg_admin: Engine, tmp_path: Path) -> None:
    name, password = f"pmo_sec_{uuid.uuid4().hex[:8]}", "p%@:/x"
    with pg_admin.connect() as c:
        c.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD 'p%@:/x'"))
        c.execute(text(f"CREATE DATABASE {name} OWNER {name}"))
    try:
        url = _url(name, password, name)
        result = runner.invoke(
            app, ["db", "upgrade", "--database-url", url, "--config", str(tmp_path / "none.toml")]
        )
        assert result.exit_code == 0, result.output
        assert f"{name}:***@" in result.output and "is at the latest schema" in result.output
        assert password not in result.output and quote(password, safe="") not in result.output
        engine = make_engine(url)
        with engine.connect() as c:  # migrated, as that role
            assert c.execute(text("SELECT count(*) FROM rag_rule")).scalar() > 0
        engine.dispose()
    finally:
        with pg_admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            c.execute(text(f"DROP ROLE IF EXISTS {name}"))


def test_a_wrong_password_is_one_line_without_traceback_or_password(pg_admin: Engine, tmp_path: Path) -> None:
    base = make_url(PG_URL or "")
    url = _url(base.username or "pmo", "Wr0ng-Passw0rd", base.database or "postgres")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "db",
            "upgrade",
            "--database-url",
            url,
            "-c",
            str(tmp_path / "x"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert done.returncode == 4
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(
        f"✗ cannot connect to the warehouse postgresql+psycopg://{base.username}:***@"
    )
    assert "password authentication failed" in done.stderr
    assert "Wr0ng" not in done.stderr and "Traceback" not in done.stderr


# -- tokens go to their own hosts only ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("base", "body"),
    [
        (G, {"value": [{"id": "a"}], "@odata.nextLink": "https://evil.example/v1.0/groups?$skiptoken=2"}),
        (
            "https://contoso.sharepoint.com/sites/pwa/_api/ProjectData",
            {
                "d": {
                    "results": [{"id": "a"}],
                    "__next": "https://evil.example/_api/ProjectData/Projects?$skip=1",
                }
            },
        ),
    ],
)
@responses.activate
def test_a_next_link_to_another_host_is_refused_before_the_token_is_sent(base: str, body: dict) -> None:
    responses.get(f"{base}/groups", json=body)
    evil = responses.get(re.compile(r"https://evil\.example/.*"), json={"value": []})
    client = GraphClient(lambda: "tok-long-enough-to-matter", base, **SkippedTime().kw())
    pages = client.pages("groups")
    assert next(pages) == [{"id": "a"}]
    with pytest.raises(SourceError, match=r"refusing to send the token to https://evil\.example:443"):
        next(pages)
    assert [c.request.url.split("?")[0] for c in responses.calls] == [f"{base}/groups"]
    assert evil.call_count == 0


def _revoking_api(rm: responses.RequestsMock, revoked: set[str]) -> None:
    """Graph answers 401 to a revoked token, 200 to any other."""

    def answer(request):  # type: ignore[no-untyped-def]
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if token in revoked:
            return 401, {}, json.dumps({"error": {"code": "InvalidAuthenticationToken"}})
        return 200, {}, json.dumps({"value": [{"id": token}]})

    rm.add_callback(responses.GET, f"{G}/groups", callback=answer)


def _login_twice(rm: responses.RequestsMock, first: str, second: str) -> None:
    _login(rm, token=first)
    rm.post(
        f"{LOGIN}/oauth2/v2.0/token",
        json={"access_token": second, "expires_in": 3600, "token_type": "Bearer"},
    )


def test_a_token_revoked_mid_run_is_dropped_from_the_msal_cache_and_fetched_once_more() -> None:
    with responses.RequestsMock() as rm:
        _login_twice(rm, "tok-revoked-mid-run", "tok-fresh-after-401")
        auth = MicrosoftAuth(TENANT, "cid", client_secret="s3cret-value")
        revoked: set[str] = set()
        _revoking_api(rm, revoked)
        client = GraphClient(auth, **SkippedTime().kw())
        assert client.get("groups") == {"value": [{"id": "tok-revoked-mid-run"}]}
        revoked.add("tok-revoked-mid-run")  # revoked by an admin, an hour before msal thinks it expires
        assert client.get("groups") == {"value": [{"id": "tok-fresh-after-401"}]}
        assert len(_token_calls(rm)) == 2 and auth.token_requests == 2
        assert auth.token() == "tok-fresh-after-401" and len(_token_calls(rm)) == 2  # cached again
        sent = [c.request.headers.get("Authorization") for c in rm.calls if "/groups" in c.request.url]
        assert sent == ["Bearer tok-revoked-mid-run"] * 2 + ["Bearer tok-fresh-after-401"]


def test_a_second_401_after_a_fresh_token_fails_loudly() -> None:
    with responses.RequestsMock() as rm:
        _login_twice(rm, "tok-one-rejected-x", "tok-two-rejected-y")
        _revoking_api(rm, {"tok-one-rejected-x", "tok-two-rejected-y"})
        client = GraphClient(MicrosoftAuth(TENANT, "cid", client_secret="s3cret-value"), **SkippedTime().kw())
        with pytest.raises(
            SourceError, match=r"graph GET .*/groups: HTTP 401: InvalidAuthenticationToken"
        ) as e:
            client.get("groups")
        assert len(_token_calls(rm)) == 2 and "tok-" not in str(e.value)


JIRA_INSECURE = """\
[sources.jira]
type = "jira"
url = "https://jira.acme.example"
email = "pmo@acme.example"
token = {{ env = "PMO_TEST_JIRA_TOKEN" }}
verify = false
"""


def test_verify_false_warns_on_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PMO_TEST_JIRA_TOKEN", "jira-api-token-123")
    path = tmp_path / "pmo.toml"
    path.write_text(JIRA_INSECURE.format(), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        for _run in range(2):  # each run builds its streams from the configuration
            cfg.load(path).streams("jira")
    warned = [r.getMessage() for r in caplog.records if "verify = false" in r.getMessage()]
    assert (
        warned
        == [
            "jira:jira.acme.example: verify = false: the TLS certificate of https://jira.acme.example is not"
            " checked; anyone on the way can read the credentials"
        ]
        * 2
    )


# -- flows take a reference, never a URL with a password -----------------------------------------------------
@pytest.mark.flow
def test_flow_parameters_name_the_warehouse_and_never_hold_its_password(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.sync import refresh_marts_flow

    warehouse = tmp_path / "wh.db"
    monkeypatch.setenv("PMO_TEST_WAREHOUSE", f"sqlite:///{warehouse}")
    config = tmp_path / "pmo.toml"
    (tmp_path / "exports").mkdir()
    config.write_text(CONFIG.format(url="sqlite:///elsewhere.db"), encoding="utf-8")
    result = refresh_marts_flow(config_path=str(config), warehouse="env:PMO_TEST_WAREHOUSE")
    assert result["as_of"] and warehouse.exists() and not (tmp_path / "elsewhere.db").exists()
    deployment = refresh_marts_flow.to_deployment(name="secrets-test").apply()
    password = "Pg-Pa55word-in-a-param"

    async def stored() -> list[dict]:
        async with get_client() as client:
            with pytest.raises(Exception, match="409 Conflict"):  # refused by the server, before storing
                await client.create_flow_run_from_deployment(
                    deployment, parameters={"warehouse": f"postgresql://pmo:{password}@db/pmo"}
                )
            return [r.parameters for r in await client.read_flow_runs()]

    parameters = asyncio.run(stored())  # every run of the session's shared server: find this test's
    mine = [p for p in parameters if p.get("config_path") == str(config)]
    assert [p.get("warehouse") for p in mine] == ["env:PMO_TEST_WAREHOUSE"]
    assert password not in json.dumps(parameters)


def test_a_flow_refuses_a_url_with_a_password_in_one_line() -> None:
    from flows.warehouse import WarehouseRefError, warehouse_url

    with pytest.raises(WarehouseRefError) as e:
        warehouse_url("postgresql://pmo:Pg-Pa55word@db/pmo")
    assert "Pa55word" not in str(e.value) and "\n" not in str(e.value)
    assert warehouse_url("sqlite:///wh.db") == "sqlite:///wh.db"


def test_warehouse_url_in_the_configuration_may_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flows import config as cfg

    monkeypatch.delenv("PMO_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("PMO_TEST_WH_URL", f"sqlite:///{tmp_path / 'wh.db'}")
    (tmp_path / "drops").mkdir()
    sources = '[sources.erp]\ntype = "finance"\nfolder = "drops"\n'
    sources += '[sources.erp.streams.costs]\npattern = "*.csv"\nprofile = "generic_costs"\n'
    path = tmp_path / "pmo.toml"
    path.write_text('[warehouse]\nurl = { env = "PMO_TEST_WH_URL" }\n' + sources, encoding="utf-8")
    config = cfg.load(path)
    assert config.warehouse_url is None
    assert config.engine().url.database == str(tmp_path / "wh.db")
    monkeypatch.delenv("PMO_TEST_WH_URL")
    with pytest.raises(cfg.ConfigError, match=r"warehouse\.url: environment variable PMO_TEST_WH_URL"):
        config.engine()


# -- BI reads only what it should ----------------------------------------------------------------------
def test_grant_readonly_lets_a_bi_role_read_the_marts_and_nothing_else(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    role = f"bi_{uuid.uuid4().hex[:8]}"
    if engine.dialect.name != "postgresql":
        result = runner.invoke(app, ["db", "grant-readonly", role, "--database-url", url, "-c", "none.toml"])
        assert result.exit_code == 2 and "grant-readonly needs PostgreSQL" in result.output
        print("SQLite has no roles: the grant itself is tested on PostgreSQL")
        return
    with engine.connect() as c:
        c.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'bi-Pa55word'"))
        c.commit()
    try:
        result = runner.invoke(app, ["db", "grant-readonly", role, "--database-url", url, "-c", "none.toml"])
        assert result.exit_code == 0, result.output
        bi = make_engine(str(engine.url.set(username=role, password="bi-Pa55word").render_as_string(False)))
        with bi.connect() as c:
            for view in ("rpt_portfolio_status", "rpt_data_freshness", "dim_project_current", "fact_cost"):
                c.execute(text(f"SELECT * FROM {view}")).all()
        for table in ("quarantine", "sync_run", "sync_state", "mapping_decision", "project", "time_entry"):
            with bi.connect() as c, pytest.raises(exc.ProgrammingError, match="permission denied"):
                c.execute(text(f"SELECT * FROM {table}"))
        with bi.connect() as c, pytest.raises(exc.ProgrammingError, match="permission denied"):
            c.execute(text("DELETE FROM rag_rule"))
        bi.dispose()
    finally:
        with engine.connect() as c:
            c.execute(text(f"DROP OWNED BY {role}"))
            c.execute(text(f"DROP ROLE {role}"))
            c.commit()
