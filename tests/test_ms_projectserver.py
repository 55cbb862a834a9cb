"""Project Server Subscription Edition: Windows sign-in (NTLM through requests_ntlm) against a ProjectData
answered by ``responses``, whose NTLM acceptor is pyspnego's server side checking the real password."""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
import spnego
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from connectors.microsoft.config import build, check
from connectors.microsoft.projectdata import WindowsClient
from flows import config as cfg
from flows.cli import app
from flows.config import SourceConfig
from warehouse.schema import sync_run

PWA = "http://project.acme.local/pwa"
API = f"{PWA}/_api/ProjectData"
USER, PASSWORD = "ACME\\svc-pmo", "Corr3ct-Horse-Battery"
CONFIG = f"""\
[sources.pwa]
type = "projectonline"
pwa_url = "{PWA}"
auth = "windows"
username = "ACME\\\\svc-pmo"
password = {{ env = "PWA_PASSWORD" }}
"""
NEGOTIATE, AUTHENTICATE = 1, 3  # NTLM message types: the client's first and last message


def _type(header: str | None) -> tuple[str, int] | None:
    """An Authorization header as (scheme, NTLM message type); None when there is none."""
    if header is None:
        return None
    scheme, token = header.split(" ", 1)
    raw = base64.b64decode(token)
    assert raw[:8] == b"NTLMSSP\0"
    return scheme, int.from_bytes(raw[8:12], "little")


class NtlmSite:
    """IIS with Windows authentication: 401 offering ``offer``, a challenge for the client's first message,
    and the answer only when pyspnego's acceptor accepts the client's proof of the password."""

    def __init__(self, rs: responses.RequestsMock, offer: str = "Negotiate, NTLM") -> None:
        self._server: spnego.ContextProxy | None = None
        self.offer = offer
        rs.add_callback(responses.GET, re.compile(rf"{re.escape(API)}/\w+"), callback=self._answer)

    def _answer(self, request) -> tuple[int, dict[str, str], str]:  # type: ignore[no-untyped-def]
        header = request.headers.get("Authorization")
        refuse = (401, {"WWW-Authenticate": self.offer}, "")
        if header is None:
            return refuse
        scheme, token = header.split(" ", 1)
        if _type(header) == (scheme, NEGOTIATE):
            self._server = spnego.server(protocol="ntlm")
            challenge = base64.b64encode(self._server.step(base64.b64decode(token)) or b"").decode()
            return 401, {"WWW-Authenticate": f"{scheme} {challenge}"}, ""
        try:
            assert self._server is not None
            self._server.step(base64.b64decode(token))
        except spnego.exceptions.SpnegoError:
            return refuse
        return 200, {}, '{"value": [{"ProjectId": "8a3d6c1e-0000-0000-0000-000000000001"}]}'


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    users = tmp_path / "ntlm_users"
    users.write_text(f"ACME:svc-pmo:{PASSWORD}\n", encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))  # the accounts pyspnego's acceptor knows


@pytest.fixture
def site(accounts: None) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rs:
        NtlmSite(rs)
        yield rs


def _sc(**settings) -> SourceConfig:  # type: ignore[no-untyped-def]
    base = dict(pwa_url=PWA, auth="windows", username=USER, password={"env": "PWA_PASSWORD"})
    return SourceConfig("pwa", "projectonline", None, {**base, **settings})


def _resolve(password: str):  # type: ignore[no-untyped-def]
    return lambda ref, where: {"PWA_PASSWORD": password}[str(ref.env)]


@pytest.mark.parametrize(
    ("offer", "scheme"), [("NTLM", "NTLM"), ("Negotiate", "Negotiate"), ("Negotiate, NTLM", "NTLM")]
)
def test_windows_sign_in_answers_the_challenge_with_an_ntlm_handshake(
    accounts: None, offer: str, scheme: str, tmp_path: Path
) -> None:
    assert check(_sc(), "cfg: sources.pwa", tmp_path) == []
    streams = build(_sc(), tmp_path, _resolve(PASSWORD))
    client = streams[0].client
    assert isinstance(client, WindowsClient) and {s.client for s in streams} == {client}  # one sign-in
    with responses.RequestsMock() as rs:
        NtlmSite(rs, offer)
        body = client.get("Projects", {"$select": "ProjectId"})
        calls = list(rs.calls)
    assert body["value"][0]["ProjectId"].endswith("0001")  # the acceptor verified the password
    sent = [_type(c.request.headers.get("Authorization")) for c in calls]
    assert sent == [None, (scheme, NEGOTIATE), (scheme, AUTHENTICATE)]  # 401 → NTLM, never a bearer token
    assert all(PASSWORD not in str(c.request.headers) for c in calls)


def test_a_wrong_password_fails_the_run_in_one_line_without_the_password(
    site: responses.RequestsMock, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "Wr0ng-Horse-Battery"
    (tmp_path / "pmo.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("PWA_PASSWORD", wrong)
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["sync", "--config", str(tmp_path / "pmo.toml"), "--database-url", url])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"projectonline:project.acme.local: Windows sign-in refused for {USER}: wrong user name or password,"
        " a locked account, or no access to the PWA site (8 streams not synced: projects, tasks, resources,"
        " planned_work, time_entries, risks, issues, capacity)"
    ]
    assert wrong not in result.output
    assert len(site.calls) == 3  # one handshake: one failed logon towards the lockout, not one per stream
    with engine.connect() as c:
        runs = c.execute(select(sync_run.c.stream, sync_run.c.status, sync_run.c.error)).all()
    streams = [
        "projects",
        "tasks",
        "resources",
        "planned_work",
        "time_entries",
        "risks",
        "issues",
        "capacity",
    ]
    assert sorted(r.stream for r in runs) == sorted(streams)
    assert {r.status for r in runs} == {"failed"} and all(wrong not in r.error for r in runs)


def test_without_the_projectserver_extra_windows_sign_in_is_one_configuration_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "requests_ntlm", None)  # what an install without the extra imports
    monkeypatch.setenv("PWA_PASSWORD", PASSWORD)
    (tmp_path / "pmo.toml").write_text(CONFIG, encoding="utf-8")
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(tmp_path / "pmo.toml").streams()
    assert e.value.problems == [
        f'{tmp_path / "pmo.toml"}:1: sources.pwa: auth = "windows" needs the projectserver extra:'
        " pip install 'pmo-sync[projectserver]'"
    ]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"password": None}, 'password: missing (password = { env = "NAME" } or { secret = "block-name" })'),
        ({"username": None}, "username: missing (DOMAIN\\user of the service account)"),
        ({"tenant": "t", "client_id": "c"}, "auth: auth = \"windows\" takes username and password; remove"
                                            " ['tenant', 'client_id']"),
        ({"auth": "entra", "tenant": "t", "client_id": "c", "token": {"env": "T"}},
         'auth: username and password sign in to Project Server: set auth = "windows"'),
        ({"auth": "kerberos"}, "auth: input should be 'entra' or 'windows'"),
    ],
)  # fmt: skip
def test_windows_sign_in_settings_are_checked(settings: dict, problem: str, tmp_path: Path) -> None:
    sc = _sc(**settings)
    sc.settings = {k: v for k, v in sc.settings.items() if v is not None}
    assert check(sc, "cfg: sources.pwa", tmp_path) == [f"cfg: sources.pwa.{problem}"]


def test_the_password_is_a_reference_never_a_value(tmp_path: Path) -> None:
    (tmp_path / "pmo.toml").write_text(CONFIG.replace('{ env = "PWA_PASSWORD" }', '"hunter2-hunter2"'))
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(tmp_path / "pmo.toml")
    assert "hunter2" not in str(e.value)
    assert "sources.pwa.password: secrets may not be written" in str(e.value)
