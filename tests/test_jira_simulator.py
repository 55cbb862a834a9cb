"""The simulator keeps Jira Cloud's limits and shapes, so the connector's tests against it mean something."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from connectors.base import SourceError
from connectors.jira.client import JiraClient
from sandbox.jira import JiraSimulator, SimConfig


@pytest.fixture(scope="module")
def sim():
    with JiraSimulator(SimConfig(issues=6000, worklog_settle_ms=0)) as s:
        yield s


def session(sim: JiraSimulator) -> requests.Session:
    s = requests.Session()
    s.auth = (sim.config.email, sim.config.token)
    return s


def test_page_caps_and_token_paging(sim: JiraSimulator) -> None:
    s = session(sim)
    url = f"{sim.url}/rest/api/3/search/jql"
    full = s.post(
        url, json={"jql": "project = IRX ORDER BY id", "fields": ["summary"], "maxResults": 1000}
    ).json()
    ids = s.post(
        url, json={"jql": 'created >= "1970-01-01" ORDER BY id', "fields": ["id"], "maxResults": 9000}
    ).json()
    assert len(full["issues"]) == 100 and full["isLast"] is False and full["nextPageToken"]
    assert len(ids["issues"]) == 5000 and ids["issues"][0] == {"id": "10000"}  # id-only: just the id
    default = s.post(url, json={"jql": "project = IRX"}).json()
    assert len(default["issues"]) == 50 and set(default["issues"][0]) == {"id"}  # fields default to id only


def test_embedded_worklogs_stop_at_20(sim: JiraSimulator) -> None:
    got = session(sim).get(
        f"{sim.url}/rest/api/3/search/jql", params={"jql": "key in (DLM-3)", "fields": "worklog"}
    )
    wl = got.json()["issues"][0]["fields"]["worklog"]
    assert wl["total"] > 20 and len(wl["worklogs"]) == 20 and wl["maxResults"] == 20


def test_removed_search_unbounded_jql_and_worklog_list_limit(sim: JiraSimulator) -> None:
    s = session(sim)
    for v in ("2", "3"):
        assert s.get(f"{sim.url}/rest/api/{v}/search", params={"jql": "project = IRX"}).status_code == 410
    r = s.post(f"{sim.url}/rest/api/3/search/jql", json={"jql": "ORDER BY id"})
    assert r.status_code == 400 and "Unbounded JQL" in r.json()["errorMessages"][0]
    r = s.post(f"{sim.url}/rest/api/3/worklog/list", json={"ids": list(range(1001))})
    assert r.status_code == 400


def test_payload_realism(sim: JiraSimulator) -> None:
    s = session(sim)
    issue = s.post(
        f"{sim.url}/rest/api/3/search/jql", json={"jql": "key in (IRX-2)", "fields": ["*all"]}
    ).json()
    f = issue["issues"][0]["fields"]
    assert f["description"]["type"] == "doc"  # ADF
    assert "customfield_10020" in f and "customfield_10016" in f
    users = s.get(f"{sim.url}/rest/api/3/users/search", params={"maxResults": 1000}).json()
    assert sum(u["emailAddress"] is None for u in users) == 11  # every third person, and the decoy


def test_tls_when_given_cert_and_key(tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    with JiraSimulator(SimConfig(cert=cert, key=key)) as sim:
        assert sim.url.startswith("https://")
        c = JiraClient(sim.url, "jira:tls", email=sim.config.email, token=sim.config.token, verify=str(cert))
        assert c.deployment == "cloud"
        untrusted = JiraClient(sim.url, "jira:tls", email=sim.config.email, token=sim.config.token)
        with pytest.raises(SourceError, match="TLS handshake failed"):  # at once: no retries on a bad cert
            untrusted.get("/rest/api/2/serverInfo")


def test_a_query_naming_a_deleted_issue_is_refused_unless_validation_is_off(sim: JiraSimulator) -> None:
    s = session(sim)
    r = s.post(f"{sim.url}/rest/api/3/search/jql", json={"jql": "id in (10000, 99999999)"})
    assert r.status_code == 400
    assert r.json()["errorMessages"] == ["An issue with key '99999999' does not exist for field 'id'."]
    bulk = s.post(f"{sim.url}/rest/api/3/issue/bulkfetch", json={"issueIdsOrKeys": ["10000", "99999999"]})
    assert [i["id"] for i in bulk.json()["issues"]] == ["10000"]
    assert bulk.json()["issueErrors"][0]["issueIdsOrKeys"] == ["99999999"]
