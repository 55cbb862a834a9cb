"""``[sources.X]`` tables of type ``planner``, ``projectonline`` and ``projectfiles``: check and build.

Same signatures as the finance ones in ``flows.config`` (which registers these). Secrets are resolved at
build time through ``flows.config.resolve_secret`` — passed in, so connectors never import flows::

    [sources.m365]
    type = "planner"
    tenant = "contoso.onmicrosoft.com"
    client_id = "11111111-2222-3333-4444-555555555555"
    client_secret = { env = "GRAPH_CLIENT_SECRET" }     # or: certificate = { private_key = { env = "K" },
    group_filter = "groupTypes/any(c:c eq 'Unified')"   #       thumbprint = "AB12…" }
    # groups = ["<group id>", …]   token_cache = "state/msal-m365.json"   graph_url = "http://127.0.0.1:…"

    [sources.pwa]
    type = "projectonline"
    pwa_url = "https://contoso.sharepoint.com/sites/pwa"
    tenant = "contoso.onmicrosoft.com"
    client_id = "…"
    refresh_token = { env = "PWA_REFRESH_TOKEN" }       # delegated; app-only via client_secret/certificate
    modified_since = "2026-01-01"                        # optional floor for the first run
    project_code_field = "ProjectCode"   # optional: the project custom field holding the ERP project code

    [sources.plans]
    type = "projectfiles"
    folder = "drops/plans"
    patterns = ["*.xml", "*.mpp"]

``token = { env = "X" }`` instead of client credentials uses a pre-issued bearer token (the simulators).
Record sources: ``planner:<tenant>``, ``projectonline:<pwa host>``, ``projectfiles:<instance>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.microsoft.auth import AUTHORITY_HOST, GRAPH_SCOPE, Certificate, MicrosoftAuth
from connectors.microsoft.files import ProjectFilesStream
from connectors.microsoft.graph import GRAPH_V1, GraphClient
from connectors.microsoft.planner import DEFAULT_GROUP_FILTER, PlannerStream
from connectors.microsoft.projectdata import ENTITY_STREAMS, projectdata_streams

Resolve = Callable[[Any, str], str]
_ODATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CRED_KEYS = ("client_secret", "certificate", "refresh_token", "token")
_KNOWN = {
    "planner": {"tenant", "client_id", "group_filter", "groups", "token_cache", "graph_url", "authority_host",
                "details", *_CRED_KEYS},
    "projectonline": {"pwa_url", "tenant", "client_id", "token_cache", "authority_host", "modified_since",
                      "scope", "streams_enabled", "project_code_field", *_CRED_KEYS},
    "projectfiles": {"folder", "patterns"},
}  # fmt: skip


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def token_provider(
    s: dict[str, Any], where: str, base: Path, scope: str, resolve: Resolve
) -> Callable[[], str]:
    if "token" in s:
        static = resolve(s["token"], f"{where}.token")
        return lambda: static
    cert = None
    if "certificate" in s:
        c = s["certificate"]
        key = resolve(c["private_key"], f"{where}.certificate.private_key")
        if not key.lstrip().startswith("-----BEGIN"):
            key = _path(base, key).read_text(encoding="utf-8")  # the secret names a PEM file
        public = c.get("public_certificate")
        cert = Certificate(key, c["thumbprint"], _path(base, public).read_text() if public else None)
    return MicrosoftAuth(
        tenant=s["tenant"],
        client_id=s["client_id"],
        scopes=(scope,),
        client_secret=resolve(s["client_secret"], f"{where}.client_secret") if "client_secret" in s else None,
        certificate=cert,
        refresh_token=resolve(s["refresh_token"], f"{where}.refresh_token") if "refresh_token" in s else None,
        cache_path=_path(base, s["token_cache"]) if "token_cache" in s else None,
        authority_host=s.get("authority_host", AUTHORITY_HOST),
    )


def build(sc: Any, base: Path, resolve: Resolve) -> list[Any]:
    s, where = sc.settings, f"sources.{sc.name}"
    if sc.type == "projectfiles":
        patterns = tuple(s.get("patterns") or ("*.xml", "*.mpp"))
        return [ProjectFilesStream(sc.source, "project_files", _path(base, s["folder"]), patterns)]
    if sc.type == "planner":
        client = GraphClient(
            token_provider(s, where, base, GRAPH_SCOPE, resolve),
            s.get("graph_url", GRAPH_V1),
            label="planner",
        )
        return [
            PlannerStream(
                source=f"planner:{sc.instance or s.get('tenant') or sc.name}",
                client=client,
                group_filter=s.get("group_filter", DEFAULT_GROUP_FILTER) or None,
                group_ids=tuple(s.get("groups") or ()),
                details=bool(s.get("details", True)),
            )
        ]
    if sc.type == "projectonline":
        pwa = s["pwa_url"].rstrip("/")
        host = urlsplit(pwa).netloc
        scope = s.get("scope") or f"https://{host.split(':')[0]}/.default"
        streams = projectdata_streams(
            source=f"projectonline:{sc.instance or host}",
            pwa_url=pwa,
            token=token_provider(s, where, base, scope, resolve),
            modified_since=s.get("modified_since"),
            project_code_field=s.get("project_code_field") or None,
        )
        enabled = s.get("streams_enabled")
        return [st for st in streams if not enabled or st.name in enabled]
    raise ValueError(f"{where}: not a Microsoft source type: {sc.type}")


def check(sc: Any, where: str, base: Path) -> list[str]:
    s, problems = sc.settings, []
    unknown = sorted(set(s) - _KNOWN.get(sc.type, set()))
    if unknown:
        problems.append(f"{where}: unknown keys {unknown}")
    if sc.type == "projectfiles":
        if "folder" not in s:
            problems.append(f"{where}.folder: missing (the folder of MSPDI .xml / .mpp files)")
        pats = s.get("patterns", ["*.xml"])
        if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats) or not pats:
            problems.append(f'{where}.patterns: a list of file patterns, e.g. ["*.xml", "*.mpp"]')
        return problems
    required = ("pwa_url",) if sc.type == "projectonline" else ()
    if "token" not in s:
        required += ("tenant", "client_id")
    for key in required:
        if not s.get(key):
            problems.append(f"{where}.{key}: missing")
    creds = [k for k in _CRED_KEYS if k in s]
    if not creds:
        problems.append(
            f"{where}: no credential: set client_secret, certificate"
            + (", refresh_token" if sc.type == "projectonline" else "")
            + ' (each as { env = "NAME" }) or token'
        )
    elif len([k for k in creds if k != "refresh_token"]) > 1:
        problems.append(f"{where}: choose one of client_secret, certificate, token (got {creds})")
    if "certificate" in s:
        c = s["certificate"]
        if not isinstance(c, dict) or "private_key" not in c or "thumbprint" not in c:
            problems.append(f'{where}.certificate: needs private_key = {{ env = "NAME" }} and thumbprint')
    if (
        sc.type == "projectonline"
        and "pwa_url" in s
        and not str(s["pwa_url"]).startswith(("https://", "http://"))
    ):
        problems.append(
            f"{where}.pwa_url: must be the PWA site URL, e.g. https://contoso.sharepoint.com/sites/pwa"
        )
    code_field = s.get("project_code_field")
    if sc.type == "projectonline" and code_field is not None and not _ODATA_NAME.match(str(code_field)):
        problems.append(f"{where}.project_code_field: not an OData property name: {code_field!r}")
    if sc.type == "projectonline" and "streams_enabled" in s:
        bad = sorted(set(s["streams_enabled"]) - set(ENTITY_STREAMS))
        if bad:
            problems.append(f"{where}.streams_enabled: unknown {bad} (known: {sorted(ENTITY_STREAMS)})")
    if sc.type == "planner" and "groups" in s and not isinstance(s["groups"], list):
        problems.append(f"{where}.groups: a list of group ids")
    return problems
