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
# concurrency = 4                         # requests in flight at once (1: one at a time); `pmo sync
#                                         # --concurrency N` sets it for every source of the run
# sprint_field = "customfield_10020", story_points_field = "customfield_10016"
# custom_fields = { team = "customfield_10001" }
# risk_issue_types = ["Risk"], issue_issue_types = ["Issue"]   # RAID log: streams risks, raid_issues
# raid_fields = { probability = "Probability", impact = "Impact", mitigation = "Mitigation",
#                 review_date = "Review Date" }               # field names as users see them
# [sources.acme.streams.issues] ...      # optional: only the streams listed run (default: all)
```
Issue types named in ``risk_issue_types`` / ``issue_issue_types`` are the RAID log
(``connectors.jira.raid``): they leave the task streams' scope and come as risks and issues instead.
The scope limits every stream, Cloud's site-wide worklog listings included. Narrowing it retires the
issues left outside as ``deleted_reason = "out of scope: <jql>"`` (not "deleted at the source"); like any
deletion scan it refuses to retire more than a fifth of the live tasks in one run unless the run allows a
mass delete. A wider scope brings retired issues back when they are loaded again (a full run).

``concurrency`` bounds the site, not a stream: its requests share one client and one token bucket
(``rate_per_second``), so a Retry-After holds every thread, and pages are still stored in order
(docs/architecture.md, "Jira: parallel fetch").

``JiraSource`` is the table's model (joined into the union on ``type`` by ``flows.config``); ``build`` gets
``resolve_secret`` handed in.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, PlainValidator, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors.config import (
    NotNegative,
    Positive,
    Resolve,
    SecretRef,
    SourceTable,
    Table,
    at,
    check_source,
    file_path,
)
from connectors.jira.client import JiraClient
from connectors.jira.mapping import FieldMap
from connectors.jira.raid import RAID_STREAMS, RISK_FIELDS, RaidTypes, raid_streams
from connectors.jira.streams import STREAMS, WHOLE_SITE


def _verify(value: Any, info: ValidationInfo) -> bool | Path:
    """``true``/``false``, or the CA bundle (a file) to trust."""
    if isinstance(value, bool):
        return value
    return file_path(value, info)


class NoKeys(Table):
    """``[sources.X.streams.issues]``: listing a stream is all there is to it."""


class JiraSource(SourceTable):
    type: Literal["jira"]
    token: SecretRef | None = None  # before email, whose check reads it
    pat: SecretRef | None = None
    url: str = Field(description="e.g. https://acme.atlassian.net")
    email: str | None = Field(default=None, validate_default=True)
    jql: str | None = None
    deployment: str = "auto"
    lookback_minutes: NotNegative = 5
    rate_per_second: Positive = 10
    concurrency: int = 4
    connect_timeout: Positive = 5
    read_timeout: Positive = 60
    verify: Annotated[bool | Path, PlainValidator(_verify)] = True
    browse_url: str | None = None
    sprint_field: str = "customfield_10020"
    story_points_field: str = "customfield_10016"
    custom_fields: dict[str, str] = Field(default_factory=dict)
    risk_issue_types: list[str] = Field(default_factory=list)
    issue_issue_types: list[str] = Field(default_factory=list)
    raid_fields: dict[str, str] = Field(default_factory=dict)
    streams: dict[str, NoKeys] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise PydanticCustomError("rule", "{url} is not an http(s) URL", {"url": repr(url)})
        return url

    @field_validator("email")
    @classmethod
    def _email_with_token(cls, email: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("token") is not None and not email:
            raise PydanticCustomError("rule", "missing (Cloud API tokens authenticate as email + token)")
        return email

    @field_validator("jql")
    @classmethod
    def _scope(cls, jql: str | None) -> str | None:
        if jql is not None and not jql.strip():
            raise PydanticCustomError("rule", "must be a non-empty JQL string (the scope of this site)")
        if jql is not None and "order by" in jql.lower():
            raise PydanticCustomError(
                "rule", "leave out ORDER BY; the streams order their queries themselves"
            )
        return jql

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, n: int) -> int:
        if n < 1:
            raise PydanticCustomError(
                "rule", "must be at least 1 (1: one request at a time), got {n}", {"n": n}
            )
        return n

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: str) -> str:
        if value not in ("auto", "cloud", "datacenter"):
            raise PydanticCustomError("rule", "{got} is not auto, cloud or datacenter", {"got": repr(value)})
        return value

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, streams: dict[str, NoKeys]) -> dict[str, NoKeys]:
        unknown = sorted(set(streams) - set(STREAMS) - set(RAID_STREAMS))
        if unknown:
            raise PydanticCustomError(
                "rule",
                "unknown streams {unknown} (known: {known})",
                {"unknown": unknown, "known": sorted([*STREAMS, *RAID_STREAMS])},
            )
        return streams

    @field_validator("raid_fields")
    @classmethod
    def _raid_fields(cls, names: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(names) - set(RISK_FIELDS))
        if unknown:
            raise PydanticCustomError(
                "rule",
                "unknown keys {unknown} (known: {known})",
                {"unknown": unknown, "known": list(RISK_FIELDS)},
            )
        return names

    @model_validator(mode="after")
    def _one_credential(self) -> JiraSource:
        if self.token is not None and self.pat is not None:
            raise PydanticCustomError("rule", "give token (Cloud, with email) or pat (Data Center), not both")
        if self.token is None and self.pat is None:
            raise at("token", 'missing (token = { env = "JIRA_TOKEN" }, or pat for Data Center)')
        return self


def build(sc: Any, base: Path, resolve: Resolve) -> list[Any]:
    """The site's streams, sharing one client (one token bucket) per site.

    ``resolve`` turns ``{ env = .. }`` / ``{ secret = .. }`` into the secret (flows hands it in). Records
    carry ``jira:<instance>``, or ``jira:<site host>`` when no instance is configured.
    """
    s = JiraSource.of(sc, base)
    where = f"sources.{sc.name}"
    source = f"jira:{s.instance or urlsplit(s.url).netloc}"
    client = JiraClient(
        s.url,
        source,
        email=s.email,
        token=resolve(s.token, f"{where}.token") if s.token else None,
        pat=resolve(s.pat, f"{where}.pat") if s.pat else None,
        deployment=None if s.deployment == "auto" else s.deployment,
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        rate=s.rate_per_second,
        concurrency=s.concurrency,
        verify=str(s.verify) if isinstance(s.verify, Path) else s.verify,
        browse_url=s.browse_url,
    )
    fields = FieldMap(sprint=s.sprint_field, story_points=s.story_points_field, custom=dict(s.custom_fields))
    common: dict[str, Any] = {
        "client": client,
        "source": source,
        "fields": fields,
        "lookback": timedelta(minutes=s.lookback_minutes),
    }
    types = RaidTypes(
        tuple(s.risk_issue_types), tuple(s.issue_issue_types), {**RaidTypes().fields, **s.raid_fields}
    )
    scope, raid_types = s.jql or WHOLE_SITE, [*types.risks, *types.issues]
    raid = raid_streams(common, types, scope)
    if s.jql or raid_types:  # the RAID types are no tasks: they leave the task streams' scope
        common["scope"] = types.scope(scope, raid_types, keep=False) if raid_types else scope
    wanted = list(s.streams) or [*STREAMS, *(r.name for r in raid)]
    return [STREAMS[n](**common) for n in wanted if n in STREAMS] + [r for r in raid if r.name in wanted]


def check(sc: Any, where: str, base: Path) -> list[str]:
    """Every problem of one jira source table, each with its dotted path; secrets are not resolved here."""
    return check_source(JiraSource, sc, where, base)
