"""The fault scenarios of issue #12, each written against what the issue says must happen.

A scenario sets faults (on the proxies, in the files, or by killing the sync), runs syncs as child
processes, and returns a ``Verdict``. The data oracle is always the same: after the faulty run(s) and, where
the fault was transient or fatal, one clean run, the warehouse's rows of the sources involved equal those
of a clean run from scratch (``Trial.compare``).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.faults.world import (
    PG_NASTY_PASSWORD,
    PG_PASSWORD,
    PG_WRONG_PASSWORD,
    SOURCES,
    Diff,
    Result,
    Trial,
    pg_url,
    set_password,
)
from sandbox.faults import Fault

JQL = "/rest/api/3/search/jql"
ISSUES = '"summary"'  # in the body of the issues stream's searches only
IDS = '"fields": ["id"]'  # id-only searches: changed ids (changelogs), then the deletion scan
OUR_PACKAGES = {"connectors", "warehouse", "flows", "model"}


@dataclass
class Verdict:
    ok: bool
    detail: str = ""
    lost: int = 0
    duplicated: int = 0
    kills: int = 0


@dataclass
class Scenario:
    name: str
    run: Callable[[Trial], Verdict]
    tags: set[str] = field(default_factory=set)


SCENARIOS: list[Scenario] = []


def scenario(name: str, *tags: str) -> Callable[[Callable[[Trial], Verdict]], Callable[[Trial], Verdict]]:
    def register(fn: Callable[[Trial], Verdict]) -> Callable[[Trial], Verdict]:
        SCENARIOS.append(Scenario(name, fn, set(tags)))
        return fn

    return register


def _data(diff: Diff, what: str, kills: int = 0, extra_ok: bool = True, why: str = "") -> Verdict:
    ok = diff.clean and extra_ok
    detail = f"{what}: {diff}" + (f"; {why}" if why else "")
    return Verdict(ok, detail, len(diff.lost), len(diff.duplicated), kills)


def _failed_line(r: Result) -> str:
    return next((ln for ln in r.stderr.splitlines() if ln.startswith("FAILED")), r.stderr.strip()[-200:])


def _failures(r: Result) -> dict[str, str]:
    """source/stream -> the exception (``module.Class``) it failed with, from the child's FAILED lines."""
    lines = [
        ln.removeprefix("FAILED ").split(": ") for ln in r.stderr.splitlines() if ln.startswith("FAILED ")
    ]
    return {parts[0]: parts[1] for parts in lines if len(parts) > 2}


def _ours(kind: str) -> bool:
    """One of our exceptions, which carries a clear reason: not a library's that leaked through."""
    return kind.split(".")[0] in OUR_PACKAGES


# -- kills: the sync is SIGKILLed at a chosen point, then a clean run resumes -----------------------------
def killed_then_resumed(
    source: str, faults: dict[str, list[Fault]] | None = None, kill_item: str | None = None
) -> Callable[[Trial], Verdict]:
    def run(t: Trial) -> Verdict:
        first = t.sync(source, faults, kill_item)
        if not first.killed:
            return Verdict(False, f"the kill point was not reached (exit {first.returncode})")
        resumed = t.sync(source)
        if resumed.returncode != 0:
            return Verdict(False, f"the resuming run failed: {_failed_line(resumed)}", kills=1)
        return _data(t.compare([source]), "killed, resumed", kills=1)

    return run


def _kill(name: str, source: str, kill_item: str | None = None, **proxy: Fault) -> None:
    faults = {k: [v] for k, v in proxy.items()}
    scenario(f"kill-{name}", "kill")(killed_then_resumed(source, faults, kill_item))


_kill("jira-issues-page-2", "jira", jira=Fault("kill", JQL, nth=2, where=ISSUES))
_kill("jira-people", "jira", jira=Fault("kill", "/users/search"))
_kill("jira-worklog-updated", "jira", jira=Fault("kill", "/worklog/updated", nth=3))
_kill("jira-worklog-list", "jira", jira=Fault("kill", "/worklog/list", nth=4))
_kill("jira-changelogs", "jira", jira=Fault("kill", "/changelog/bulkfetch"))
_kill("jira-deletion-scan", "jira", jira=Fault("kill", JQL, nth=2, where=IDS))
_kill("planner-task-lists", "m365", graph=Fault("kill", "/tasks", nth=5))
_kill("planner-details-batch", "m365", graph=Fault("kill", "/$batch", nth=3))
_kill("projectdata-tasks", "pwa", pwa=Fault("kill", "/ProjectData/Tasks", nth=2))
_kill("projectdata-timephased", "pwa", pwa=Fault("kill", "/ProjectData/", nth=100))
# Export names carry the sandbox's export dates (sandbox/finance.py), so kill points name their stable part.
_kill("finance-mid-file", "erp", "cji3_:1")
_kill("finance-before-correction", "erp", "correction.csv:0")  # no leading "-": argparse
_kill("finance-mid-xlsx", "erp", "budget_:1")
_kill("finance-ap-mid-file", "ap", "invoices_:1")
_kill("projectfile-mid-file", "plans", "P-1002.xml#task:1")
_kill("projectfile-between-its-items", "plans", "P-1002.xml#planned_work:0")


@scenario("killed-run-marked-abandoned", "kill")
def _abandoned(t: Trial) -> Verdict:
    """A run that dies is marked ``abandoned`` by the next run, not left ``running`` forever."""
    first = t.sync("jira", {"jira": [Fault("kill", "/worklog/updated", nth=2)]})
    if not first.killed:
        return Verdict(False, "the kill point was not reached")
    t.sync("jira")
    states = dict(t.query("SELECT status, count(*) FROM sync_run GROUP BY status"))
    ok = not states.get("running") and states.get("abandoned", 0) >= 1
    return Verdict(ok, f"sync_run statuses after the next run: {states}", kills=1)


# -- transient faults: retried, nothing lost ----------------------------------------------------------------
def recovers(source: str, min_seconds: float = 0, **proxy: Fault) -> Callable[[Trial], Verdict]:
    def run(t: Trial) -> Verdict:
        r = t.sync(source, {k: [v] for k, v in proxy.items()})
        if r.returncode != 0:
            return Verdict(False, f"the run failed: {_failed_line(r)}")
        waited = r.seconds >= min_seconds
        return _data(t.compare([source]), "one run", extra_ok=waited, why=f"{r.seconds:.1f} s")

    return run


def _storm(path: str, replies: int) -> Fault:
    """``replies`` 429s in a row from the third request on, each asking for a second's pause."""
    return Fault("status", path, nth=3, times=replies, status=429, headers={"Retry-After": "1"})


def _transient(name: str, source: str, min_seconds: float = 0, **proxy: Fault) -> None:
    scenario(name, "transient")(recovers(source, min_seconds, **proxy))


_transient("jira-5xx-burst", "jira", jira=Fault("status", JQL, nth=2, times=2, status=502, where=ISSUES))
_transient("planner-5xx-burst", "m365", graph=Fault("status", "/tasks", nth=3, times=2, status=503))
_transient("projectdata-5xx-burst", "pwa", pwa=Fault("status", "/ProjectData/Tasks", times=2, status=500))
_transient("jira-connection-reset", "jira", jira=Fault("reset", "/worklog/list", nth=2))
_transient("planner-connection-reset", "m365", graph=Fault("reset", "/$batch", nth=2))
_transient("jira-truncated-once", "jira", jira=Fault("truncate", JQL, nth=2, where=ISSUES))
_transient("jira-429-storm", "jira", 4, jira=_storm("/rest/api/3/", 4))
_transient("planner-429-storm", "m365", 4, graph=_storm("/v1.0/", 4))
_transient("projectdata-429-storm", "pwa", 3, pwa=_storm("/ProjectData/", 3))


# -- replies that make no sense: the run fails loudly, believes nothing, and a clean run recovers ---------
def fails_loudly(
    source: str, stream: str, prior_clean_run: bool = False, timeout: float = 60, **proxy: Fault
) -> Callable[[Trial], Verdict]:
    def run(t: Trial) -> Verdict:
        if prior_clean_run and t.sync(source).returncode != 0:
            return Verdict(False, "the clean run before the fault failed")
        r = t.sync(source, {k: [v] for k, v in proxy.items()}, timeout=timeout)
        src = SOURCES[source]
        failed = t.query(
            "SELECT count(*) FROM sync_run WHERE source = :s AND stream = :n AND status = 'failed'",
            s=src,
            n=stream,
        )[0][0]
        deleted = sum(v[-1] for k, v in t.snapshot().items() if k[1] == src)
        problems = []
        if r.returncode is None:
            problems.append(f"still running after {timeout:.0f} s")
        elif r.returncode == 0 or not failed:
            problems.append(f"{stream} did not fail (exit {r.returncode}, failed runs {failed})")
        elif not _ours(_failures(r).get(f"{src}/{stream}", "")):
            problems.append(f"not the project's own error: {_failed_line(r)[:160]}")
        if deleted:
            problems.append(f"{deleted} rows marked deleted from an incomplete reply")
        if t.sync(source).returncode != 0:
            problems.append("the clean run after it failed")
        return _data(t.compare([source]), "after a clean run", extra_ok=not problems, why="; ".join(problems))

    return run


def _fatal(
    name: str, source: str, stream: str, prior: bool = False, timeout: float = 60, **proxy: Fault
) -> None:
    scenario(name, "fatal")(fails_loudly(source, stream, prior, timeout, **proxy))


_fatal("jira-empty-body-issues", "jira", "issues", jira=Fault("empty", JQL, nth=2, where=ISSUES))
_fatal(
    "jira-empty-body-deletion-scan",
    "jira",
    "issue_deletions",
    True,
    jira=Fault("empty", JQL, nth=2, where=IDS),
)
_fatal("jira-empty-body-worklogs", "jira", "worklogs", jira=Fault("empty", "/worklog/updated", nth=2))
_fatal("jira-html-body", "jira", "issues", jira=Fault("html", JQL, nth=2, times=0, where=ISSUES))
_fatal("jira-truncated-always", "jira", "issues", jira=Fault("truncate", JQL, nth=2, times=0, where=ISSUES))
_fatal("jira-repeated-page-token", "jira", "issues", timeout=20,
       jira=Fault("repeat_token", JQL, times=0, where=ISSUES))  # fmt: skip
_fatal("planner-repeated-next-link", "m365", "tasks", timeout=20,
       graph=Fault("repeat_token", "/tasks", times=0, token_key="@odata.nextLink"))  # fmt: skip
_fatal("planner-empty-body-task-list", "m365", "tasks", True, graph=Fault("empty", "/tasks", nth=2))
_fatal("projectdata-html-body", "pwa", "tasks", pwa=Fault("html", "/ProjectData/Tasks", nth=2, times=0))


# -- bad records: quarantined, the rest loads, the stream goes on ------------------------------------------
def quarantined(
    source: str,
    proxy: str,
    fault: Callable[[set[str]], Fault],
    must_not_load: bool = False,
    table: str = "task",
) -> Callable[[Trial], Verdict]:
    """``fault(bad)`` plants bad records of ``table`` and adds their source ids to ``bad`` (ids are unique
    per table only: worklog 10003 and issue 10003 are different records)."""

    def run(t: Trial) -> Verdict:
        bad: set[str] = set()
        r = t.sync(source, {proxy: [fault(bad)]})
        src = SOURCES[source]
        allowed = {k for k in t.world.clean if k[0] == table and k[1] == src and k[2] in bad}
        kept = t.query("SELECT count(*) FROM quarantine WHERE source = :s", s=src)[0][0]
        baseline = t.world.quarantined.get(src, 0)
        loaded = {k for k, v in t.snapshot().items() if k in allowed and not v[-1]}
        problems = []
        if r.returncode != 0:
            problems.append(f"a stream stopped: {_failed_line(r)}")
        if not bad:
            problems.append("no record was planted")
        if kept <= baseline:
            problems.append("nothing quarantined")
        if must_not_load and loaded:
            problems.append(f"{len(loaded)} bad records loaded")
        return _data(t.compare([source], allowed), "rows besides the bad ones", extra_ok=not problems,
                     why="; ".join(problems))  # fmt: skip

    return run


def _issue_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[set[str]], Fault]:
    """Change the 4th issue of the first issues page."""

    def make(bad: set[str]) -> Fault:
        def edit(body: Any) -> Any:
            issues = body.get("issues") or []
            if len(issues) > 3 and "fields" in issues[3]:
                bad.add(issues[3]["id"])
                change(issues[3])
            return body

        return Fault("edit", JQL, times=0, where=ISSUES, edit=edit)

    return make


def _summary(value: str) -> Callable[[dict[str, Any]], None]:
    return lambda issue: issue["fields"].update(summary=value)


def _negative_worklog(bad: set[str]) -> Fault:
    def edit(body: Any) -> Any:
        if body:
            body[0]["timeSpentSeconds"] = -3600
            bad.add(body[0]["id"])
        return body

    return Fault("edit", "/worklog/list", edit=edit)


def _task_without_id(bad: set[str]) -> Fault:
    def edit(body: Any) -> Any:
        tasks = body.get("value") or []
        if tasks and "id" in tasks[0]:
            bad.add(tasks[0].pop("id"))
        return body

    return Fault("edit", "/tasks", edit=edit)


for _name, _source, _proxy, _fault, _strict, _table in (
    ("jira-nul-in-summary", "jira", "jira", _issue_edit(_summary("Ledger\x00 export")), False, "task"),
    ("jira-lone-surrogate", "jira", "jira", _issue_edit(_summary("Half \ud800 a pair")), False, "task"),
    ("jira-issue-without-fields", "jira", "jira", _issue_edit(lambda i: i.pop("fields")), True, "task"),
    ("jira-negative-worklog", "jira", "jira", _negative_worklog, True, "time_entry"),
    ("planner-task-without-id", "m365", "graph", _task_without_id, True, "task"),
):
    scenario(f"bad-record-{_name}", "bad-record")(quarantined(_source, _proxy, _fault, _strict, _table))


# -- operations: locks, fail fast, credentials, files ------------------------------------------------------
@scenario("two-concurrent-runs", "operations")
def _concurrent(t: Trial) -> Verdict:
    """Two syncs of one source at once: one waits for or refuses the other; none corrupts the warehouse."""
    if t.sync("ap").returncode != 0:  # the schema first: this is about the sync lock, not migrations
        return Verdict(False, "the first run failed")
    a, b = t.start("jira"), t.start("jira")
    ra, rb = t.wait(a, 120), t.wait(b, 120)
    # One process runs a source's streams one after another: runs of one source that overlap in time ran
    # in both processes at once, which the per-source lock forbids.
    runs = t.query(
        "SELECT started_at, finished_at, status FROM sync_run WHERE source = :s", s=SOURCES["jira"]
    )
    done = [r for r in runs if r[2] == "succeeded"]
    overlaps = sum(1 for i, x in enumerate(done) for y in done[i + 1 :] if x[0] < y[1] and y[0] < x[1])
    foreign = sorted({k for r in (ra, rb) for k in _failures(r).values() if not _ours(k)})
    running = sum(1 for r in runs if r[2] == "running")
    problems = []
    if 0 not in (ra.returncode, rb.returncode):
        problems.append(f"neither run succeeded ({_failed_line(ra)} | {_failed_line(rb)})")
    if "Traceback" in ra.stderr + rb.stderr or foreign:
        problems.append(f"a run crashed instead of waiting or refusing: {foreign or 'a traceback'}")
    if overlaps:
        problems.append(f"{overlaps} pairs of runs of one source overlapped in time")
    if running:
        problems.append(f"{running} runs left running")
    t.sync("jira")
    return _data(t.compare(["jira"]), "after a clean run", extra_ok=not problems, why="; ".join(problems))


@scenario("unreachable-source-fails-fast", "operations")
def _unreachable(t: Trial) -> Verdict:
    """``pmo sync`` against a Jira that refuses connections: fails within seconds with one line on stderr."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t.config = t.write_config(jira_url=f"http://127.0.0.1:{port}")
    cli = [sys.executable, "-m", "flows.cli", "sync", "-c", str(t.config)]
    r = t.sync("jira", command=cli, timeout=30)
    running = t.query("SELECT count(*) FROM sync_run WHERE status = 'running'")[0][0]
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    ok = r.returncode not in (0, None) and r.seconds <= 15 and bool(lines) and not running
    return Verdict(
        ok, f"exit {r.returncode} after {r.seconds:.0f} s, {len(lines)} stderr lines, {running} running"
    )


@scenario("msal-401-mid-run", "operations")
def _revoked(t: Trial) -> Verdict:
    """A token revoked mid-run (real msal, client credentials): dropped, fetched once more, nothing lost."""
    t.config = t.write_config(msal=True)
    issued = t.world.login.issued
    r = t.sync("m365", {"graph": [Fault("revoke", "/v1.0/", nth=10, times=0)]})
    tokens = t.world.login.issued - issued
    if r.returncode != 0:
        return Verdict(False, f"the run failed after {tokens} token(s): {_failed_line(r)}")
    return _data(t.compare(["m365"]), "one run", extra_ok=tokens == 2, why=f"{tokens} tokens fetched")


@scenario("planner-next-link-to-a-foreign-host", "operations")
def _foreign_link(t: Trial) -> Verdict:
    """A ``nextLink`` naming another host: the client sends it no token (and a clean run loses nothing)."""
    port = urlsplit(t.world.catcher.url).port
    foreign = f"http://localhost:{port}/v1.0/planner/plans/stolen/tasks"
    fault = Fault("edit", "/tasks", nth=2, edit=lambda body: body | {"@odata.nextLink": foreign})
    t.sync("m365", {"graph": [fault]})
    sent = [a for a in t.world.catcher.authorizations if a]  # the trial began with none
    clean = t.sync("m365").returncode == 0
    why = f"{len(sent)} requests with credentials to the foreign host" + (
        "" if clean else "; clean run failed"
    )
    return _data(t.compare(["m365"]), "after a clean run", extra_ok=clean and not sent, why=why)


NARROW_SCOPE = "project in (MDH, DLM)"


@scenario("jira-scope-narrowed-deletes-nothing", "scope")
def _narrowed(t: Trial) -> Verdict:
    """Narrowing a site's ``jql`` deletes nothing: the issues left outside are retired as out of scope (the
    site still has them), never as deleted at the source. Retiring most of the site needs the operator's
    ``--allow-mass-delete``: the run without it refuses and changes nothing."""
    if t.sync("jira").returncode != 0:
        return Verdict(False, "the first run failed")
    t.config = t.write_config(jql=NARROW_SCOPE)
    src = SOURCES["jira"]
    count = "SELECT count(*) FROM task WHERE source = :s AND deleted_at IS NOT NULL"
    refused = t.sync("jira")
    retired_by_refused = t.query(count, s=src)[0][0] if refused.returncode else 0
    allowed = [sys.executable, "-m", "bench.faults.child", str(t.config), "--allow-mass-delete"]
    r = t.sync("jira", command=allowed)
    reasons = t.query(
        "SELECT deleted_reason, count(*) FROM task WHERE source = :s AND deleted_at IS NOT NULL"
        " GROUP BY deleted_reason",
        s=src,
    )
    out = sum(n for why, n in reasons if (why or "").startswith("out of scope"))
    deleted = sum(n for why, n in reasons if not (why or "").startswith("out of scope"))
    ok = r.returncode == 0 and not retired_by_refused and out > 0 and not deleted
    return Verdict(
        ok,
        f"without --allow-mass-delete: exit {refused.returncode}, {retired_by_refused} retired; with it:"
        f" exit {r.returncode}, {out} out of scope, {deleted} marked deleted at the source",
        lost=deleted,
    )


@scenario("jira-scope-limits-worklogs", "scope")
def _scoped_worklogs(t: Trial) -> Verdict:
    """Cloud worklogs are read for the issues in scope only, not for every issue of the site."""
    t.config = t.write_config(jql=NARROW_SCOPE)
    r = t.sync("jira")
    stray = t.query(
        "SELECT count(*) FROM time_entry e WHERE e.source = :s AND NOT EXISTS"
        " (SELECT 1 FROM task k WHERE k.source = e.source AND k.source_id = e.task_source_id)",
        s=SOURCES["jira"],
    )[0][0]
    return Verdict(
        r.returncode == 0 and not stray, f"exit {r.returncode}; {stray} worklogs of issues out of scope"
    )


@scenario("finance-two-daily-ap-files", "files")
def _two_files(t: Trial) -> Verdict:
    """A second AP file of the same months (new documents) adds its lines and retires none of the first's."""
    if t.sync("ap").returncode != 0:
        return Verdict(False, "the first load failed")
    (first,) = (t.folder / "exports").glob("invoices_*.csv")  # named by its export date
    head, *lines = first.read_text(encoding="utf-8-sig").splitlines()
    second = [ln.replace(ln.split(",")[0], "B" + ln.split(",")[0], 1) for ln in lines if ln]
    (first.parent / f"{first.stem}_b.csv").write_text("\n".join([head, *second]) + "\n", encoding="utf-8-sig")
    r = t.sync("ap")
    diff = t.compare(["ap"])
    src = SOURCES["ap"]
    live = sum(1 for k, v in t.snapshot().items() if k[1] == src and not v[-1])
    expected = 2 * sum(1 for k, v in t.world.clean.items() if k[1] == src and not v[-1])
    diff.duplicated = []  # the second file's lines are new rows, on purpose
    return _data(diff, "the first file's lines", extra_ok=r.returncode == 0 and live == expected,
                 why=f"{live} live lines, {expected} expected")  # fmt: skip


@scenario("postgres-password-with-url-syntax", "operations", "postgres")
def _nasty_password(t: Trial) -> Verdict:
    """``%``, ``@``, ``:`` and ``/`` in the warehouse password: upgrade and config check work and print
    no password; a wrong password fails in a few lines, without it."""
    admin = t.world.pg_admin_url
    assert admin is not None
    nasty = set_password(admin, PG_NASTY_PASSWORD)
    try:
        t.config = t.write_config(warehouse_url=nasty)
        cli = [sys.executable, "-m", "flows.cli"]
        upgrade = t.sync(command=[*cli, "db", "upgrade", "-c", str(t.config)], database_url="")
        check = t.sync(command=[*cli, "config", "check", "-c", str(t.config)], database_url="")
        wrong = t.sync(command=[*cli, "db", "upgrade"], database_url=pg_url(admin, PG_WRONG_PASSWORD))
    finally:
        set_password(admin, PG_PASSWORD)
    said = len((wrong.stdout + wrong.stderr).strip().splitlines())
    ok = upgrade.returncode == 0 and check.returncode == 0 and wrong.returncode not in (0, None) and said <= 5
    return Verdict(
        ok,
        f"upgrade exit {upgrade.returncode}, config check exit {check.returncode}, "
        f"wrong password exit {wrong.returncode} in {said} lines",
    )


@scenario("prefect-stores-no-secret", "operations")
def _prefect(t: Trial) -> Verdict:
    """``nightly_sync`` through Prefect: its stored flow-run parameters and logs hold no secret."""
    home = t.folder / "prefect"
    code = (
        "import sys; from flows.sync import nightly_sync; "
        "nightly_sync(config_path=sys.argv[1], source='ap', warehouse='env:PMO_FAULTS_WAREHOUSE')"
    )
    # The flow takes a reference, never the URL; the --database-url that start() appends is ignored
    r = t.sync(command=[sys.executable, "-c", code, str(t.config)], timeout=240,
               env={"PREFECT_HOME": str(home), "PMO_FAULTS_WAREHOUSE": t.database_url})  # fmt: skip
    leaked = [
        p.name
        for p in home.rglob("*")
        if p.is_file() and any(s.encode() in p.read_bytes() for s in t.world.secrets)
    ]
    ok = r.returncode == 0 and not leaked
    return Verdict(
        ok, f"exit {r.returncode} in {r.seconds:.0f} s; files of Prefect's holding a secret: {leaked}"
    )
