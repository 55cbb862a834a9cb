"""msal sign-in, Graph client, Planner: offline request shapes, mappings, syncs against the simulator."""

from __future__ import annotations

import base64
import json
import stat
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, func, select
from support import SkippedTime, count_rows

from connectors.base import SourceError, StreamState
from connectors.microsoft.auth import AuthError, Certificate, MicrosoftAuth
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.planner import PlannerStream, map_task
from flows.runner import run
from sandbox.graph import GraphSimulator, PlannerData
from sandbox.portfolio import generate
from warehouse.schema import ENTITY_TABLES, sync_item

TENANT = "contoso.onmicrosoft.com"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
SRC = f"planner:{TENANT}"
G = "https://graph.microsoft.com/v1.0"


def _login(
    rm: responses.RequestsMock, token: str = "tok-1", status: int = 200, body: dict | None = None
) -> None:
    rm.get(
        f"{LOGIN}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{LOGIN}/oauth2/v2.0/token",
            "authorization_endpoint": f"{LOGIN}/oauth2/v2.0/authorize",
            "issuer": f"{LOGIN}/v2.0",
        },
    )
    rm.post(
        f"{LOGIN}/oauth2/v2.0/token",
        status=status,
        json=body
        or {"access_token": token, "expires_in": 3600, "token_type": "Bearer", "refresh_token": "rt-2"},
    )


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _delegated_body(token: str) -> dict:
    """What Entra answers a refresh-token grant: tokens plus the account (id_token, client_info)."""
    claims = {"iss": f"{LOGIN}/v2.0", "aud": "cid", "sub": "s", "oid": "u1", "tid": "t1",
              "preferred_username": "svc-pmo@contoso.com", "exp": 4102444800, "iat": 1767225600}  # fmt: skip
    return {
        "access_token": token, "expires_in": 3600, "token_type": "Bearer", "refresh_token": "rt-2",
        "scope": "https://contoso.sharepoint.com/.default",
        "id_token": f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
        "client_info": _b64({"uid": "u1", "utid": "t1"}),
    }  # fmt: skip


def _token_calls(rm: responses.RequestsMock) -> list[dict[str, list[str]]]:
    return [parse_qs(c.request.body) for c in rm.calls if c.request.url.endswith("/token")]


# -- msal ---------------------------------------------------------------------------------------------------
def test_client_secret_token_is_requested_once_and_cached() -> None:
    with responses.RequestsMock() as rm:
        _login(rm)
        auth = MicrosoftAuth(TENANT, "cid", client_secret="s3cret-value")
        assert [auth.token(), auth.token(), auth()] == ["tok-1"] * 3
        (body,) = _token_calls(rm)
        assert body["grant_type"] == ["client_credentials"] and body["client_secret"] == ["s3cret-value"]
        assert body["scope"] == ["https://graph.microsoft.com/.default"] and body["client_id"] == ["cid"]
        assert auth.token_requests == 1 and len(rm.calls) == 2  # discovery + one token call
        assert "s3cret" not in repr(auth)


def test_certificate_signs_a_client_assertion_and_sends_no_secret() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pmo-sync")])
    import datetime as dt

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(dt.datetime(2026, 1, 1)).not_valid_after(dt.datetime(2030, 1, 1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    thumb = cert.fingerprint(hashes.SHA1()).hex().upper()
    with responses.RequestsMock() as rm:
        _login(rm)
        auth = MicrosoftAuth(TENANT, "cid", certificate=Certificate(pem, thumb))
        assert auth.token() == "tok-1"
        (body,) = _token_calls(rm)
    assert body["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assert body["client_assertion"][0].count(".") == 2 and "client_secret" not in body
    assert "PRIVATE" not in repr(auth.certificate)


def test_delegated_refresh_token_and_persistent_cache(tmp_path: Path) -> None:
    cache = tmp_path / "msal.json"
    scope = "https://contoso.sharepoint.com/.default"
    with responses.RequestsMock() as rm:
        _login(rm, body=_delegated_body("pwa-token"))
        auth = MicrosoftAuth(TENANT, "cid", scopes=(scope,), refresh_token="rt-1", cache_path=cache)
        assert auth.token() == "pwa-token" and auth.token() == "pwa-token"
        (body,) = _token_calls(rm)
        assert body["grant_type"] == ["refresh_token"] and body["refresh_token"] == ["rt-1"]
        assert scope in body["scope"][0].split()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    with responses.RequestsMock() as rm:  # a new process: the cached token answers, no token request
        _login(rm)
        again = MicrosoftAuth(TENANT, "cid", scopes=(scope,), refresh_token="rt-1", cache_path=cache)
        assert again.token() == "pwa-token" and _token_calls(rm) == []
        rm.assert_all_requests_are_fired = False


def test_sign_in_failure_names_the_error_never_the_secret() -> None:
    with responses.RequestsMock() as rm:
        _login(
            rm,
            status=401,
            body={"error": "invalid_client", "error_description": "AADSTS7000215: Invalid secret."},
        )
        with pytest.raises(AuthError) as e:
            MicrosoftAuth(TENANT, "cid", client_secret="s3cret-value").token()
    msg = str(e.value)
    assert "invalid_client" in msg and "AADSTS7000215" in msg and "app-only client secret" in msg
    assert "s3cret" not in msg


# -- Graph client -------------------------------------------------------------------------------------------
def _client(time: SkippedTime) -> GraphClient:
    return GraphClient(lambda: "tok", **time.kw(), backoff=0.5)


@responses.activate
def test_paging_follows_next_link_and_honours_retry_after() -> None:
    nxt = f"{G}/planner/plans/p1/tasks?$skiptoken=400"
    responses.get(f"{G}/planner/plans/p1/tasks", status=429, headers={"Retry-After": "7"}, json={})
    responses.get(f"{G}/planner/plans/p1/tasks", json={"value": [{"id": "a"}], "@odata.nextLink": nxt})
    responses.get(nxt, status=503, json={})
    responses.get(nxt, json={"value": [{"id": "b"}]})
    t = SkippedTime()
    c = _client(t)
    assert [[t["id"] for t in p] for p in c.pages("planner/plans/p1/tasks")] == [["a"], ["b"]]
    assert t.slept == [7.0, 0.5]  # Retry-After exactly; without one, the first backoff step
    assert c.requests == 4
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"
    assert responses.calls[3].request.url == nxt  # the link is followed verbatim


@responses.activate
def test_batch_sends_twenty_a_call_and_retries_only_throttled_ones() -> None:
    calls: list[list[str]] = []
    throttled_once = {"t3"}

    def answer(request):  # type: ignore[no-untyped-def]
        reqs = json.loads(request.body)["requests"]
        calls.append([r["id"] for r in reqs])
        out = []
        for r in reqs:
            assert r["method"] == "GET" and r["url"] == f"/planner/tasks/{r['id']}/details"
            if r["id"] in throttled_once:
                throttled_once.discard(r["id"])
                out.append({"id": r["id"], "status": 429, "headers": {"Retry-After": "2"}, "body": {}})
            else:
                out.append({"id": r["id"], "status": 200, "body": {"id": r["id"], "description": "d"}})
        return 200, {}, json.dumps({"responses": out})

    responses.add_callback(responses.POST, f"{G}/$batch", callback=answer)
    t = SkippedTime()
    c = _client(t)
    ids = [f"t{i}" for i in range(45)]
    got = c.batch([{"id": i, "url": f"/planner/tasks/{i}/details"} for i in ids])
    assert sorted(got) == sorted(ids)
    assert [len(x) for x in calls] == [20, 1, 20, 5] and calls[1] == ["t3"]
    assert t.slept == [2.0]


@responses.activate
def test_expired_token_is_renewed_once_and_errors_are_readable() -> None:
    tokens = iter(["old", "new"])
    responses.get(f"{G}/groups", status=401, json={"error": {"code": "InvalidAuthenticationToken"}})
    responses.get(f"{G}/groups", json={"value": []})
    responses.get(
        f"{G}/groups/x", status=403, json={"error": {"code": "Authorization_RequestDenied", "message": "no"}}
    )
    c = GraphClient(lambda: next(tokens), **SkippedTime().kw())
    assert c.get("groups") == {"value": []}
    assert [r.request.headers["Authorization"] for r in responses.calls] == ["Bearer old", "Bearer new"]
    with pytest.raises(SourceError, match=r"graph GET .*/groups/x: HTTP 403: Authorization_RequestDenied no"):
        c.get("groups/x")


def test_map_task_keeps_bucket_status_and_assignees() -> None:
    t = {
        "id": "T1", "planId": "P1", "bucketId": "B1", "title": "Pilot", "percentComplete": 50, "priority": 3,
        "createdDateTime": "2026-02-01T09:00:00Z", "dueDateTime": "2026-03-01T17:00:00Z",
        "startDateTime": "2026-02-02T08:00:00Z", "completedDateTime": None,
        "checklistItemCount": 4, "activeChecklistItemCount": 1,
        "appliedCategories": {"category3": True, "category1": True, "category2": False},
        "assignments": {
            "u2": {"assignedDateTime": "2026-02-03T00:00:00Z"},
            "u1": {"assignedDateTime": "2026-02-01T00:00:00Z"},
        },
        "createdBy": {"user": {"id": "u9"}},
    }  # fmt: skip
    rec = map_task(SRC, t, "Build", {"description": " Scope ", "references": {"a": {}}})
    assert (rec.source_id, rec.project_source_id, rec.bucket, rec.name) == ("T1", "P1", "Build", "Pilot")
    assert (rec.status, rec.status_category, rec.percent_complete) == ("In progress", "in_progress", 50)
    assert (rec.assignee_source_id, rec.reporter_source_id, rec.labels) == ("u1", "u9", "category1,category3")
    assert (str(rec.start_date), str(rec.due_date), rec.resolved_at) == ("2026-02-02", "2026-03-01", None)
    assert rec.estimate_hours is None  # Planner has no effort
    assert json.loads(rec.extra) == {
        "assignees": "u1,u2", "checklist": "3/4", "description": "Scope", "priority": 3, "references": 1,
    }  # fmt: skip
    assert map_task(SRC, {**t, "percentComplete": 100}, None, None).status_category == "done"
    assert map_task(SRC, {**t, "percentComplete": 0}, None, None).status_category == "todo"


# -- end to end against the simulator -----------------------------------------------------------------------
def _count(engine: Engine, entity: str, deleted: bool = False) -> int:
    return count_rows(engine, entity, SRC, deleted)


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    with GraphSimulator(PlannerData.from_portfolio(generate()), page_size=5) as s:
        yield s


TODAY = date(2026, 12, 2)


def _stream(
    sim: GraphSimulator,
    time: SkippedTime | None = None,
    today: date = TODAY,
    concurrency: int = 4,
    **client_kw: Any,
) -> PlannerStream:
    client = GraphClient(lambda: "sim-token", sim.url, **(time or SkippedTime()).kw(), **client_kw)
    return PlannerStream(SRC, client, today=lambda: today, concurrency=concurrency)


def _slice(sim: GraphSimulator, today: date = TODAY) -> set[str]:
    """The tasks whose details a run on ``today`` checks although the task is unchanged."""
    return {t for t in sim.data.tasks if zlib.crc32(t.encode()) % 7 == today.toordinal() % 7}


def test_planner_sync_end_to_end_incremental_and_deletes(engine: Engine, sim: GraphSimulator) -> None:
    pf = generate()
    n_tasks = len(pf.tasks)
    first = run(engine, _stream(sim))
    assert first.status == "succeeded"
    assert _count(engine, "task") == n_tasks and _count(engine, "project") == len(pf.projects)
    assert _count(engine, "person") == len({e for p in pf.projects for e in p.team})
    paths = [p for _, p, _ in sim.log]
    assert paths[0] == "/v1.0/groups" and sim.log[0][2]["$filter"] == "groupTypes/any(c:c eq 'Unified')"
    assert not any("security" in p for p in paths)
    assert sim.batch_calls == sum((len(v) + 19) // 20 for v in _tasks_by_plan(sim).values())
    with engine.connect() as c:
        t = ENTITY_TABLES["task"]
        row = c.execute(select(t).where(t.c.source_id == next(iter(sim.data.tasks)))).one()
    assert row.bucket and row.bucket.startswith("P-10") and row.assignee_source_id

    sim.log.clear()
    sim.details_read.clear()
    second = run(engine, _stream(sim))
    assert (second.rows_written, second.rows_deleted) == (0, 0)
    assert set(sim.details_read) == _slice(sim) and 0 < len(_slice(sim)) < n_tasks / 4  # a seventh
    assert second.requests < first.requests

    # ~1% of tasks change, one vanishes: only those are written, the vanished one is marked deleted.
    ids = list(sim.data.tasks)
    changed = ids[:: max(1, len(ids) // 2)][:2]
    for tid in changed:
        sim.data.change_task(tid)  # a new title, a new etag
    gone = ids[-1]
    sim.data.delete_task(gone)
    sim.details_read.clear()
    third = run(engine, _stream(sim))
    assert third.rows_written == len(changed) and third.rows_deleted == 1
    assert set(sim.details_read) == set(changed) | (_slice(sim) - {gone})
    assert _count(engine, "task", deleted=True) == 1 and _count(engine, "task") == n_tasks - 1
    with engine.connect() as c:
        t = ENTITY_TABLES["task"]
        names = c.execute(select(t.c.name).where(t.c.source_id.in_(changed))).scalars().all()
        assert len(names) == len(changed) and all(n.endswith(" (edited)") for n in names)
        items = c.execute(
            select(func.count()).select_from(sync_item).where(sync_item.c.source == SRC)
        ).scalar()
    assert items == n_tasks - 1 + len(pf.projects)  # tasks + plans remembered, the vanished one forgotten


def test_a_details_only_change_reloads_its_task_within_the_sweep(engine: Engine, sim: GraphSimulator) -> None:
    run(engine, _stream(sim))
    today, later = TODAY, TODAY + timedelta(days=1)
    seen_today = sorted(_slice(sim, today))[0]
    seen_later = sorted(_slice(sim, later))[0]
    for tid in (seen_today, seen_later):
        sim.data.change_details(tid)  # the details' etag moves, the task's does not
        assert sim.data.etag("d" + tid) != sim.data.etag(tid)

    sim.details_read.clear()
    first = run(engine, _stream(sim, today=today))
    assert first.rows_written == 1  # the task whose slice is today's; the other waits for its day
    assert set(sim.details_read) == _slice(sim, today)  # unchanged tasks outside the slice: not read
    assert _description(engine, seen_today).endswith("(edited)")
    assert not _description(engine, seen_later).endswith("(edited)")

    again = run(engine, _stream(sim, today=today))
    assert again.rows_written == 0  # remembered with the new details etag: no reload
    later_run = run(engine, _stream(sim, today=later))
    assert later_run.rows_written == 1 and _description(engine, seen_later).endswith("(edited)")
    with engine.connect() as c:
        remembered = c.execute(
            select(sync_item.c.fingerprint).where(sync_item.c.item == f"task:{seen_later}")
        ).scalar_one()
    assert remembered == f"{sim.data.etag(seen_later)}|{sim.data.etag('d' + seen_later)}"


def _description(engine: Engine, tid: str) -> str:
    with engine.connect() as c:
        t = ENTITY_TABLES["task"]
        extra = c.execute(select(t.c.extra).where(t.c.source_id == tid)).scalar_one()
    return json.loads(extra)["description"]


def _tasks_by_plan(sim: GraphSimulator) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in sim.data.tasks.values():
        out.setdefault(t["planId"], []).append(t["id"])
    return out


def test_planner_sync_survives_throttling_top_level_and_inside_batch(sqlite_engine: Engine) -> None:
    with GraphSimulator(PlannerData.from_portfolio(generate()), page_size=400) as sim:
        sim.throttle(times=2, retry_after=1.5)
        sim.throttle(times=3, retry_after=2.5, inner=True)
        t = SkippedTime()
        # No pacing waits (the bucket sleeps through the same ``sleep``): what is slept is the retries;
        # one batch takes all three 429s.
        result = run(sqlite_engine, _stream(sim, t, concurrency=1, rate=1e9, burst=10**6))
        assert result.status == "succeeded" and _count(sqlite_engine, "task") == len(sim.data.tasks)
    assert t.slept == [1.5, 1.5, 2.5]  # two top-level waits; one wait covers the batch's three 429s


def test_full_mode_rescans_everything_and_group_ids_skip_the_filter(
    sqlite_engine: Engine, sim: GraphSimulator
) -> None:
    run(sqlite_engine, _stream(sim))
    sim.batch_calls = 0
    full = run(sqlite_engine, _stream(sim), mode="full")
    assert full.rows_written == 0 and sim.batch_calls > 0  # details re-read, identical rows not rewritten
    gid = next(iter(sim.data.groups))
    stream = PlannerStream(SRC, GraphClient(lambda: "t", sim.url), group_ids=(gid,), details=False)
    pages = list(stream.read(StreamState()))
    assert sim.log[-1][1].startswith("/v1.0/planner/plans/")
    assert pages[-1].watermark is None  # a full rescan has no cursor
    assert sum(len(p.records) for p in pages) > 0
