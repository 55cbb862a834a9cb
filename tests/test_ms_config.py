"""Configuration of the Microsoft source types: checks, streams built, secrets through the resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.config import SecretRef
from connectors.microsoft.auth import MicrosoftAuth
from connectors.microsoft.config import build, check
from connectors.microsoft.files import ProjectFilesStream
from connectors.microsoft.planner import PlannerStream
from connectors.microsoft.projectdata import ProjectDataStream
from flows.config import SourceConfig


def _sc(kind: str, **settings) -> SourceConfig:  # type: ignore[no-untyped-def]
    return SourceConfig("ms", kind, None, settings)  # no instance configured: derived by the connector


def _resolve(value: SecretRef, where: str) -> str:
    return {"GRAPH_SECRET": "s3cret", "PWA_RT": "rt"}[str(value.env)]


def test_planner_builds_one_stream_with_msal_auth(tmp_path: Path) -> None:
    sc = _sc("planner", tenant="contoso.onmicrosoft.com", client_id="cid",
             client_secret={"env": "GRAPH_SECRET"}, token_cache="state/msal.json")  # fmt: skip
    assert check(sc, "cfg: sources.ms", tmp_path) == []
    (stream,) = build(sc, tmp_path, _resolve)
    assert isinstance(stream, PlannerStream) and stream.source == "planner:contoso.onmicrosoft.com"
    auth = stream.client.token_provider
    assert isinstance(auth, MicrosoftAuth) and auth.client_secret == "s3cret"
    assert auth.cache_path == tmp_path / "state/msal.json" and auth.scopes == (
        "https://graph.microsoft.com/.default",
    )
    assert stream.group_filter == "groupTypes/any(c:c eq 'Unified')"
    assert (stream.concurrency, stream.details_sweep_days) == (4, 7)  # the defaults the docs promise


def test_projectonline_builds_eight_streams_with_delegated_scope(tmp_path: Path) -> None:
    sc = _sc("projectonline", pwa_url="https://contoso.sharepoint.com/sites/pwa",
             tenant="contoso.onmicrosoft.com", client_id="cid", refresh_token={"env": "PWA_RT"},
             project_code_field="ErpProjectCode")  # fmt: skip
    assert check(sc, "cfg: sources.ms", tmp_path) == []
    streams = build(sc, tmp_path, _resolve)
    assert {s.project_code_field for s in streams} == {"ErpProjectCode"}
    assert [s.name for s in streams] == [
        "projects", "tasks", "resources", "planned_work", "time_entries", "risks", "issues", "capacity",
    ]  # fmt: skip
    assert all(isinstance(s, ProjectDataStream) for s in streams)
    assert {s.source for s in streams} == {"projectonline:contoso.sharepoint.com"}
    auth = streams[0].client.token_provider
    assert auth.refresh_token == "rt" and auth.scopes == ("https://contoso.sharepoint.com/.default",)
    assert streams[0].client.base_url == "https://contoso.sharepoint.com/sites/pwa/_api/ProjectData"


def test_projectfiles_builds_a_folder_stream(tmp_path: Path) -> None:
    sc = _sc("projectfiles", folder="drops/plans", patterns=["*.xml"])
    assert check(sc, "cfg: sources.ms", tmp_path) == [
        "cfg: sources.ms.folder: folder " + str(tmp_path / "drops/plans") + " does not exist"
    ]
    (tmp_path / "drops/plans").mkdir(parents=True)
    assert check(sc, "cfg: sources.ms", tmp_path) == []
    (stream,) = build(sc, tmp_path, _resolve)
    assert isinstance(stream, ProjectFilesStream) and stream.source == "projectfiles:ms"
    assert stream.folder == tmp_path / "drops/plans" and tuple(stream.patterns) == ("*.xml",)


@pytest.mark.parametrize(
    ("kind", "settings", "problem"),
    [
        ("planner", {"tenant": "t", "client_id": "c"}, "cfg: sources.ms: no credential: set client_secret"),
        ("planner", {"client_id": "c", "client_secret": {"env": "X"}}, "cfg: sources.ms.tenant: missing"),
        ("planner", {"tenant": "t", "client_id": "c", "client_secret": {"env": "X"}, "colour": 1},
         "cfg: sources.ms: unknown keys ['colour']"),
        ("planner", {"tenant": "t", "client_id": "c", "certificate": {"private_key": {"env": "K"}}},
         "cfg: sources.ms.certificate.thumbprint: missing"),
        ("planner", {"token": {"env": "X"}, "concurrency": 0},
         "cfg: sources.ms.concurrency: must be a positive number"),
        ("planner", {"token": {"env": "X"}, "concurrency": True},
         "cfg: sources.ms.concurrency: input should be a valid integer, got True"),
        ("planner", {"token": {"env": "X"}, "details_sweep_days": -1},
         "cfg: sources.ms.details_sweep_days: input should be greater than or equal to 0"),
        ("projectonline", {"tenant": "t", "client_id": "c", "refresh_token": {"env": "X"}},
         "cfg: sources.ms.pwa_url: missing"),
        ("projectonline", {"pwa_url": "contoso/pwa", "tenant": "t", "client_id": "c",
                           "refresh_token": {"env": "X"},
                           "streams_enabled": ["tasks", "gantt"]},
         "cfg: sources.ms.streams_enabled: unknown ['gantt']"),
        ("projectonline", {"pwa_url": "https://c/pwa", "token": {"env": "X"},
                           "project_code_field": "ERP code"},
         "cfg: sources.ms.project_code_field: not an OData property name: 'ERP code'"),
        ("projectfiles", {}, "cfg: sources.ms.folder: missing"),
    ],
)  # fmt: skip
def test_check_reports_problems(kind: str, settings: dict, problem: str, tmp_path: Path) -> None:
    problems = check(_sc(kind, **settings), "cfg: sources.ms", tmp_path)
    assert any(p.startswith(problem) for p in problems), problems
