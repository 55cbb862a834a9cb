"""``[sources.X]`` tables of type ``planner``, ``projectonline`` and ``projectfiles``: models and build.

``flows.config`` joins the models into its union on ``type``. Secrets are resolved at build time through
``flows.config.resolve_secret`` — passed in, so connectors never import flows::

    [sources.m365]
    type = "planner"
    tenant = "contoso.onmicrosoft.com"
    client_id = "11111111-2222-3333-4444-555555555555"
    client_secret = { env = "GRAPH_CLIENT_SECRET" }     # or: certificate = { private_key = { env = "K" },
    group_filter = "groupTypes/any(c:c eq 'Unified')"   #       thumbprint = "AB12…" }
    # groups = ["<group id>", …]   token_cache = "state/msal-m365.json"   graph_url = "http://127.0.0.1:…"
    concurrency = 4           # plans fetched at once (≥1; 1 = one after another); `pmo sync --concurrency`
    details_sweep_days = 7    # a details-only edit is seen within this many days (≥0; 0 = every run)

    [sources.pwa]                                        # Project Server Subscription Edition
    type = "projectonline"
    pwa_url = "https://project.acme.local/pwa"
    auth = "windows"                                     # NTLM, as the server's Negotiate or NTLM asks
    username = "ACME\\\\svc-pmo-sync"                      # DOMAIN\\user (or user@domain)
    password = { env = "PWA_PASSWORD" }                  # or { secret = "pwa-password" }
    modified_since = "2026-01-01"                        # optional floor for the first run
    project_code_field = "ProjectCode"   # optional: the project custom field holding the ERP project code

    [sources.pwa_cloud]                                  # Project Online: retired on 2026-09-30
    type = "projectonline"
    pwa_url = "https://contoso.sharepoint.com/sites/pwa"
    tenant = "contoso.onmicrosoft.com"
    client_id = "…"
    refresh_token = { env = "PWA_REFRESH_TOKEN" }       # delegated; app-only via client_secret/certificate
    retired = 2026-09-30                                 # not synced any more; its history stays

    [sources.planner_premium]
    type = "dataverse"                                   # Planner premium / Project for the web
    environment_url = "https://contoso.crm4.dynamics.com"
    tenant = "contoso.onmicrosoft.com"
    client_id = "…"                                      # an application user in the environment
    client_secret = { env = "DATAVERSE_SECRET" }         # or certificate = { … }
    project_code_column = "cr123_projectcode"   # optional: the msdyn_project column with the ERP code
    concurrency = 4          # reads in flight at once (1–52; 1 = one after another); pmo sync --concurrency
    # streams_enabled = ["projects", "tasks", "planned_work", "people"]  (tasks bring their dependencies,
    #                                                                    people the plans' team members)

    [sources.plans]
    type = "projectfiles"
    folder = "drops/plans"
    patterns = ["*.xml", "*.mpp"]

A ``dataverse`` source signs in app-only (scope ``<environment_url>/.default``): register an Entra app with a
secret or certificate, then add it to the environment as an application user (Power Platform admin centre →
the environment → Settings → Users + permissions → Application users) with a security role that may read the
project tables (msdyn_project, msdyn_projecttask, msdyn_resourceassignment, msdyn_projectbucket,
msdyn_projectsprint, msdyn_projectteam, msdyn_projecttaskdependency, bookableresource) and their
EntityDefinitions; reads need no licence. Every source on one environment shares one pace: 6,000 requests
per 5 minutes, and a 429 holds them all for its Retry-After.
``token = { env = "X" }`` instead of client credentials uses a pre-issued bearer token (the simulators).

``auth = "windows"`` (Project Server on-premises) needs the ``projectserver`` extra
(``pip install 'pmo-sync[projectserver]'``): ``requests_ntlm.HttpNtlmAuth``, the maintained requests plugin
for Windows sign-in, which answers an ``NTLM`` or a ``Negotiate`` challenge with NTLMv2 (through pyspnego,
so no Kerberos ticket or GSSAPI library is needed on the worker) and binds it to the TLS channel over https.
pyspnego's own ``negotiate`` is a protocol library, not a requests auth: we would have to write the
challenge/response hook ourselves. A site that allows Kerberos only (NTLM disabled by policy) is not served.
The password is resolved like every secret and never printed; a refused sign-in fails the source in one line
without trying its other streams (each try would be one more failed logon towards the account's lockout).
Record sources: ``planner:<tenant>``, ``projectonline:<pwa host>``, ``dataverse:<environment host>``,
``projectfiles:<instance>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from requests.auth import AuthBase

from connectors.config import (
    File,
    Folder,
    PositiveInt,
    Resolve,
    SecretRef,
    SourceTable,
    Table,
    at,
    check_source,
)
from connectors.microsoft.auth import AUTHORITY_HOST, GRAPH_SCOPE, Certificate, MicrosoftAuth, WindowsAuth
from connectors.microsoft.dataverse import (
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    DataverseClient,
    dataverse_streams,
    pace_for,
)
from connectors.microsoft.dataverse import STREAMS as DATAVERSE_STREAMS
from connectors.microsoft.files import ProjectFilesStream
from connectors.microsoft.graph import GRAPH_V1, GraphClient
from connectors.microsoft.planner import (
    CONCURRENCY,
    DEFAULT_GROUP_FILTER,
    DETAILS_SWEEP_DAYS,
    PlannerStream,
)
from connectors.microsoft.projectdata import ENTITY_STREAMS, projectdata_streams

_ODATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PASSWORD = 'password = { env = "NAME" } or { secret = "block-name" }'


class CertificateTable(Table):
    private_key: SecretRef = Field(description='private_key = { env = "NAME" }: the PEM, or the path of one')
    thumbprint: str = Field(description="the certificate's SHA-1 thumbprint, as Entra shows it")
    public_certificate: File | None = None


class EntraSource(SourceTable):
    """An Entra app (or a pre-issued ``token``): what Planner and Project Online sign in with."""

    tenant: str | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    certificate: CertificateTable | None = None
    refresh_token: SecretRef | None = None
    token: SecretRef | None = None
    token_cache: str | None = None  # a file msal writes: it need not exist yet
    authority_host: str = AUTHORITY_HOST

    @model_validator(mode="after")
    def _credentials(self) -> EntraSource:
        return self._entra_credentials()

    def _entra_credentials(self) -> EntraSource:
        if self.token is None:
            for key in ("tenant", "client_id"):
                if not getattr(self, key):
                    raise at(key, "missing")
        creds = [k for k in ("client_secret", "certificate", "refresh_token", "token") if getattr(self, k)]
        if not creds:
            raise PydanticCustomError(
                "rule",
                "no credential: set client_secret, certificate{delegated}"
                ' (each as { env = "NAME" }) or token',
                {"delegated": ", refresh_token" if self.type == "projectonline" else ""},
            )
        if len([k for k in creds if k != "refresh_token"]) > 1:
            raise PydanticCustomError(
                "rule", "choose one of client_secret, certificate, token (got {creds})", {"creds": creds}
            )
        return self


class PlannerSource(EntraSource):
    """``details_sweep_days``: a task's details have an etag of their own, which the task listing does not
    show, so an edit of the details alone (a description) is found by reading the unchanged tasks'
    details a slice a day: every task once in this many days. Smaller finds such edits sooner and costs
    more ``$batch`` requests per run; 0 reads every task's details on every run."""

    type: Literal["planner"]
    group_filter: str = DEFAULT_GROUP_FILTER  # "" lists every group
    groups: list[str] = Field(default_factory=list)
    graph_url: str = GRAPH_V1
    details: bool = True
    details_sweep_days: int = Field(default=DETAILS_SWEEP_DAYS, ge=0)
    concurrency: PositiveInt = CONCURRENCY  # plans fetched at once, sharing one client's pacing


ENTRA_KEYS = ("tenant", "client_id", "client_secret", "certificate", "refresh_token", "token", "token_cache",
              "scope")  # fmt: skip


class ProjectOnlineSource(EntraSource):
    """ProjectData of Project Server (``auth = "windows"``) or of Project Online (Entra, the default)."""

    type: Literal["projectonline"]
    pwa_url: str = Field(description="the PWA site URL, e.g. https://project.acme.local/pwa")
    auth: Literal["entra", "windows"] = "entra"
    username: str | None = None  # auth = "windows": DOMAIN\\user or user@domain
    password: SecretRef | None = None
    scope: str | None = None  # default: https://<pwa host>/.default
    modified_since: str | None = None
    streams_enabled: list[str] | None = None
    project_code_field: str | None = None

    @model_validator(mode="after")
    def _credentials(self) -> ProjectOnlineSource:
        """Windows sign-in takes a username and a password and nothing of Entra's; Entra the reverse."""
        if self.auth == "entra":
            if self.username is not None or self.password is not None:
                raise at("auth", 'username and password sign in to Project Server: set auth = "windows"')
            self._entra_credentials()
            return self
        for key, what in (("username", "DOMAIN\\user of the service account"), ("password", _PASSWORD)):
            if not getattr(self, key):
                raise at(key, f"missing ({what})")
        extra = [k for k in ENTRA_KEYS if getattr(self, k) is not None]
        if extra:
            raise at("auth", 'auth = "windows" takes username and password; remove {extra}', extra=extra)
        return self

    @field_validator("pwa_url")
    @classmethod
    def _site(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise PydanticCustomError(
                "rule", "must be the PWA site URL, e.g. https://contoso.sharepoint.com/sites/pwa"
            )
        return url

    @field_validator("project_code_field")
    @classmethod
    def _odata_name(cls, name: str | None) -> str | None:
        if name is not None and not _ODATA_NAME.match(name):
            raise PydanticCustomError("rule", "not an OData property name: {name}", {"name": repr(name)})
        return name

    @field_validator("streams_enabled")
    @classmethod
    def _known_streams(cls, names: list[str] | None) -> list[str] | None:
        bad = sorted(set(names or ()) - set(ENTITY_STREAMS))
        if bad:
            raise PydanticCustomError(
                "rule", "unknown {bad} (known: {known})", {"bad": bad, "known": sorted(ENTITY_STREAMS)}
            )
        return names


class DataverseSource(EntraSource):
    type: Literal["dataverse"]
    environment_url: str = Field(description="the environment URL, e.g. https://contoso.crm4.dynamics.com")
    project_code_column: str | None = None
    streams_enabled: list[str] | None = None
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY, description="reads in flight at once"
    )

    @field_validator("environment_url")
    @classmethod
    def _environment(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise PydanticCustomError(
                "rule", "must be the environment URL, e.g. https://contoso.crm4.dynamics.com"
            )
        return url.rstrip("/")

    @field_validator("project_code_column")
    @classmethod
    def _column(cls, name: str | None) -> str | None:
        if name is not None and not _ODATA_NAME.match(name):
            raise PydanticCustomError("rule", "not a column name: {name}", {"name": repr(name)})
        return name

    @field_validator("streams_enabled")
    @classmethod
    def _known_streams(cls, names: list[str] | None) -> list[str] | None:
        bad = sorted(set(names or ()) - set(DATAVERSE_STREAMS))
        if bad:
            raise PydanticCustomError(
                "rule", "unknown {bad} (known: {known})", {"bad": bad, "known": sorted(DATAVERSE_STREAMS)}
            )
        return names


class ProjectFilesSource(SourceTable):
    type: Literal["projectfiles"]
    folder: Folder = Field(description="the folder of MSPDI .xml / .mpp files")
    patterns: list[str] = Field(default=["*.xml", "*.mpp"], min_length=1)


MODELS: dict[str, type[SourceTable]] = {
    "planner": PlannerSource,
    "projectonline": ProjectOnlineSource,
    "projectfiles": ProjectFilesSource,
    "dataverse": DataverseSource,
}


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def token_provider(s: EntraSource, where: str, base: Path, scope: str, resolve: Resolve) -> Callable[[], str]:
    if s.token is not None:
        static = resolve(s.token, f"{where}.token")
        return lambda: static
    cert = None
    if s.certificate is not None:
        c = s.certificate
        key = resolve(c.private_key, f"{where}.certificate.private_key")
        if not key.lstrip().startswith("-----BEGIN"):
            key = _path(base, key).read_text(encoding="utf-8")  # the secret names a PEM file
        public = c.public_certificate.read_text() if c.public_certificate else None
        cert = Certificate(key, c.thumbprint, public)
    return MicrosoftAuth(
        tenant=str(s.tenant),
        client_id=str(s.client_id),
        scopes=(scope,),
        client_secret=resolve(s.client_secret, f"{where}.client_secret") if s.client_secret else None,
        certificate=cert,
        refresh_token=resolve(s.refresh_token, f"{where}.refresh_token") if s.refresh_token else None,
        cache_path=_path(base, s.token_cache) if s.token_cache else None,
        authority_host=s.authority_host,
    )


def build(sc: Any, base: Path, resolve: Resolve) -> list[Any]:
    s, where = MODELS[sc.type].of(sc, base), f"sources.{sc.name}"
    if isinstance(s, ProjectFilesSource):
        return [ProjectFilesStream(sc.source, "project_files", s.folder, tuple(s.patterns))]
    if isinstance(s, PlannerSource):
        client = GraphClient(
            token_provider(s, where, base, GRAPH_SCOPE, resolve), s.graph_url, label="planner"
        )
        return [
            PlannerStream(
                source=f"planner:{s.instance or s.tenant or sc.name}",
                client=client,
                group_filter=s.group_filter or None,
                group_ids=tuple(s.groups),
                details=s.details,
                details_sweep_days=s.details_sweep_days,
                concurrency=s.concurrency,
            )
        ]
    if isinstance(s, DataverseSource):
        env = s.environment_url
        token = token_provider(s, where, base, f"{env}/.default", resolve)
        client = DataverseClient(
            token, env, s.concurrency, pace_for(env), label=f"dataverse:{urlsplit(env).netloc}"
        )
        streams = dataverse_streams(
            f"dataverse:{s.instance or urlsplit(env).netloc}", client, s.project_code_column
        )
        return [st for st in streams if not s.streams_enabled or st.name in s.streams_enabled]
    assert isinstance(s, ProjectOnlineSource)
    pwa = s.pwa_url.rstrip("/")
    host = urlsplit(pwa).netloc
    source = f"projectonline:{s.instance or host}"
    signer: Callable[[], str] | AuthBase
    if s.auth == "windows":
        password = resolve(s.password, f"{where}.password")
        signer = WindowsAuth(str(s.username), password, source, channel_binding=pwa.startswith("https:"))
    else:
        signer = token_provider(s, where, base, s.scope or f"https://{host.split(':')[0]}/.default", resolve)
    streams = projectdata_streams(
        source=source,
        pwa_url=pwa,
        token=signer,
        modified_since=s.modified_since,
        project_code_field=s.project_code_field,
    )
    return [st for st in streams if not s.streams_enabled or st.name in s.streams_enabled]


def check(sc: Any, where: str, base: Path) -> list[str]:
    """Every problem of one Microsoft source table, each with its dotted path."""
    return check_source(MODELS[sc.type], sc, where, base)
