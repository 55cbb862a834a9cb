"""``[sources.<name>]`` tables of ``type = "jira"``: one site each, with its URL, credentials and JQL scope.

```toml
[sources.acme]
type = "jira"
instance = "acme.atlassian.net"          # records carry source = "jira:acme.atlassian.net"
url = "https://acme.atlassian.net"        # plain http works too (simulators, proxies)
email = "pmo-sync@acme.example"
token = { env = "JIRA_TOKEN" }            # Cloud API token; Data Center: pat = { env = "JIRA_PAT" }
jql = "project in (CRM, DLM)"             # the scope of this site
# deployment = "cloud" | "datacenter"    # default: asked of serverInfo
# lookback_minutes = 5, rate_per_second = 10, connect_timeout = 5, read_timeout = 60, verify = true
# sprint_field = "customfield_10020", story_points_field = "customfield_10016"
# custom_fields = { team = "customfield_10001" }
# [sources.acme.streams.issues] ...      # optional: only the streams listed run (default: all)
```
The scope limits every stream, Cloud's site-wide worklog listings included. Narrowing it retires the
issues left outside as ``deleted_reason = "out of scope: <jql>"`` (not "deleted at the source"); like any
deletion scan it refuses to retire more than a fifth of the live tasks in one run unless the run allows a
mass delete. A wider scope brings retired issues back when they are loaded again (a full run).

``build``/``check`` are registered by ``flows.config``, which hands ``resolve_secret`` to ``build``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.jira.client import JiraClient
from connectors.jira.mapping import FieldMap
from connectors.jira.streams import STREAMS

KEYS = {
    "url",
    "email",
    "token",
    "pat",
    "jql",
    "deployment",
    "lookback_minutes",
    "rate_per_second",
    "connect_timeout",
    "read_timeout",
    "verify",
    "browse_url",
    "sprint_field",
    "story_points_field",
    "custom_fields",
}
NUMBERS = ("lookback_minutes", "rate_per_second", "connect_timeout", "read_timeout")


def build(sc: Any, base: Path, resolve: Callable[[Any, str], str]) -> list[Any]:
    """The site's streams, sharing one client (one token bucket) per site.

    ``resolve`` turns ``{ env = .. }`` / ``{ secret = .. }`` into the secret (flows hands it in). Records
    carry ``jira:<instance>``, or ``jira:<site host>`` when no instance is configured.
    """
    resolve_secret = resolve
    s = sc.settings
    where = f"sources.{sc.name}"
    source = f"jira:{sc.instance or urlsplit(s['url']).netloc}"
    token = resolve_secret(s["token"], f"{where}.token") if "token" in s else None
    pat = resolve_secret(s["pat"], f"{where}.pat") if "pat" in s else None
    deployment = s.get("deployment")
    client = JiraClient(
        s["url"],
        source,
        email=s.get("email"),
        token=token,
        pat=pat,
        deployment=None if deployment in (None, "auto") else deployment,
        connect_timeout=float(s.get("connect_timeout", 5)),
        read_timeout=float(s.get("read_timeout", 60)),
        rate=float(s.get("rate_per_second", 10)),
        verify=_verify(s.get("verify", True), base),
        browse_url=s.get("browse_url"),
    )
    fields = FieldMap(
        sprint=s.get("sprint_field", "customfield_10020"),
        story_points=s.get("story_points_field", "customfield_10016"),
        custom=dict(s.get("custom_fields") or {}),
    )
    names = list(sc.streams) or list(STREAMS)
    common = {
        "client": client,
        "source": source,
        "fields": fields,
        "lookback": timedelta(minutes=float(s.get("lookback_minutes", 5))),
    }
    if s.get("jql"):
        common["scope"] = s["jql"]
    return [STREAMS[n](**common) for n in names]


def _verify(value: Any, base: Path) -> bool | str:
    if isinstance(value, str):
        p = Path(value)
        return str(p if p.is_absolute() else base / p)
    return bool(value)


def check(sc: Any, where: str, base: Path) -> list[str]:
    """Every problem of one jira source table, each with its dotted path; secrets are not resolved here."""
    s = sc.settings
    problems = [f"{where}: unknown keys {sorted(set(s) - KEYS)}"] if set(s) - KEYS else []
    url = s.get("url")
    if not url:
        problems.append(f"{where}.url: missing (e.g. https://acme.atlassian.net)")
    elif urlsplit(str(url)).scheme not in ("http", "https") or not urlsplit(str(url)).netloc:
        problems.append(f"{where}.url: {url!r} is not an http(s) URL")
    if "pat" in s and "token" in s:
        problems.append(f"{where}: give token (Cloud, with email) or pat (Data Center), not both")
    elif "token" in s and not s.get("email"):
        problems.append(f"{where}.email: missing (Cloud API tokens authenticate as email + token)")
    elif "token" not in s and "pat" not in s:
        problems.append(f'{where}.token: missing (token = {{ env = "JIRA_TOKEN" }}, or pat for Data Center)')
    if "jql" in s and (not isinstance(s["jql"], str) or not s["jql"].strip()):
        problems.append(f"{where}.jql: must be a non-empty JQL string (the scope of this site)")
    elif isinstance(s.get("jql"), str) and "order by" in s["jql"].lower():
        problems.append(f"{where}.jql: leave out ORDER BY; the streams order their queries themselves")
    if s.get("deployment", "auto") not in ("auto", "cloud", "datacenter"):
        problems.append(f"{where}.deployment: {s['deployment']!r} is not auto, cloud or datacenter")
    for key in NUMBERS:
        if key in s and (
            not isinstance(s[key], int | float)
            or isinstance(s[key], bool)
            or s[key] < 0
            or (key != "lookback_minutes" and s[key] == 0)
        ):
            problems.append(f"{where}.{key}: must be a positive number")
    custom = s.get("custom_fields", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        problems.append(
            f'{where}.custom_fields: must map names to field ids, e.g. {{ team = "customfield_10001" }}'
        )
    unknown = sorted(set(sc.streams) - set(STREAMS))
    if unknown:
        problems.append(f"{where}.streams: unknown streams {unknown} (known: {sorted(STREAMS)})")
    return problems
