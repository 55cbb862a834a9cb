"""Microsoft sign-in: msal for the cloud (Planner, Dataverse), Windows sign-in for Project Server.

Modes (docs/architecture.md, "Microsoft sign-in (msal)", "Project Online and Project Server"):
- app-only with a client secret or a certificate (``{private_key, thumbprint, public_certificate}``):
  Graph Planner reading needs Tasks.Read.All and Group.Read.All as application permissions;
- delegated with a refresh token: ProjectData is reported not to accept app-only tokens, so a service
  account's refresh token is exchanged (and the rotated one kept in the cache).
Tokens live in msal's ``SerializableTokenCache`` — in memory, and in a 0600 file when ``cache_path`` is
set — so a run asks the token endpoint once, not per request. A token the API refuses mid-run (revoked,
or expired early) is dropped from that cache by ``invalidate``, else msal would hand it back until its
expiry. Errors carry msal's error code and description, never a token or a secret; every secret and
token is registered with ``model.redact``.

Project Server Subscription Edition (on-premises) signs in with Windows authentication instead:
``windows_auth`` is ``requests_ntlm.HttpNtlmAuth`` (the ``projectserver`` extra), which answers both
``WWW-Authenticate: NTLM`` and ``Negotiate`` challenges with an NTLMv2 handshake (pyspnego, pure Python: no
Kerberos ticket, keytab or GSSAPI library on the worker) and binds it to the TLS channel (CBT) for IIS
Extended Protection. It is chosen over pyspnego's own ``negotiate`` protocol because that is a library, not
a requests auth: using it would mean writing and maintaining our own challenge/response hook. A refused
sign-in is ``SignInRefused``: the source's other streams are not tried, so one wrong password costs the
account one failed logon per run, not one per stream (domain lockout policies count them).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msal
import requests
from requests.auth import AuthBase

from connectors.http import SourceUnreachable
from model.redact import register

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"


class AuthError(RuntimeError):
    """Sign-in failed; the message says which tenant, which mode and msal's error, never a credential."""


class SignInRefused(SourceUnreachable):
    """The site answered but refused our credentials. As for a site that cannot be reached, the source's
    other streams are put on record with this reason, not tried: each try would be one more failed logon."""


EXTRA = "pip install 'pmo-sync[projectserver]'"


@dataclass(frozen=True)
class Certificate:
    private_key: str  # PEM
    thumbprint: str  # SHA-1 hex of the certificate, as registered on the app
    public_certificate: str | None = None  # PEM; sends x5c for subject-name/issuer auth

    def credential(self) -> dict[str, str]:
        cred = {"private_key": self.private_key, "thumbprint": self.thumbprint}
        if self.public_certificate:
            cred["public_certificate"] = self.public_certificate
        return cred

    def __repr__(self) -> str:  # never print key material
        return f"Certificate(thumbprint={self.thumbprint!r})"


@dataclass
class MicrosoftAuth:
    """A token provider: call ``token()`` for a bearer token of ``scopes``; cached until near expiry."""

    tenant: str
    client_id: str
    scopes: tuple[str, ...] = (GRAPH_SCOPE,)
    client_secret: str | None = field(default=None, repr=False)
    certificate: Certificate | None = None
    refresh_token: str | None = field(default=None, repr=False)  # delegated mode
    cache_path: Path | None = None
    authority_host: str = AUTHORITY_HOST
    http_client: Any = None  # a requests.Session; tests and proxies
    token_requests: int = 0  # calls that went to the token endpoint (the cache answered the others)
    _app: Any = field(default=None, init=False, repr=False)
    _cache: msal.SerializableTokenCache = field(
        default_factory=msal.SerializableTokenCache, init=False, repr=False
    )
    _last: tuple[str, float] = field(default=("", 0.0), init=False, repr=False)  # token, expiry (monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        register(self.client_secret, self.refresh_token)

    @property
    def mode(self) -> str:
        if self.refresh_token:
            return "delegated refresh token"
        return "app-only certificate" if self.certificate else "app-only client secret"

    def _application(self) -> Any:
        if self._app is None:
            if self.cache_path and self.cache_path.exists():
                self._cache.deserialize(self.cache_path.read_text(encoding="utf-8"))
            credential: Any = self.certificate.credential() if self.certificate else self.client_secret
            if credential is None and not self.refresh_token:
                raise AuthError(f"{self.tenant}: no client_secret, certificate or refresh_token configured")
            kwargs: dict[str, Any] = {
                "authority": f"{self.authority_host.rstrip('/')}/{self.tenant}",
                "token_cache": self._cache,
                "instance_discovery": False,  # one tenant, known cloud: no discovery round trip
            }
            if self.http_client is not None:
                kwargs["http_client"] = self.http_client
            try:
                if credential is None:  # refresh token of a public client (no secret on the app)
                    self._app = msal.PublicClientApplication(self.client_id, **kwargs)
                else:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id, client_credential=credential, **kwargs
                    )
            except ValueError as e:  # msal raises ValueError for unusable authorities or keys
                raise AuthError(
                    f"{self.tenant}: cannot set up msal ({self.mode}): {type(e).__name__}"
                ) from None
        return self._app

    def token(self) -> str:
        with self._lock:
            app = self._application()
            scopes = list(self.scopes)
            result: dict[str, Any] | None = None
            if self.refresh_token and self._last[1] - time.monotonic() > 300:
                return self._last[0]  # the IdP sent no account (no id_token): keep our own copy
            if self.refresh_token:
                accounts = app.get_accounts()
                if accounts:
                    result = app.acquire_token_silent(scopes, account=accounts[0])
                if not result:
                    result = app.acquire_token_by_refresh_token(self.refresh_token, scopes=scopes)
            else:
                result = app.acquire_token_for_client(scopes=scopes)
            if result and result.get("token_source") != "cache":
                self.token_requests += 1
            if not result or "access_token" not in result:
                err = (result or {}).get("error", "no_result")
                desc = str((result or {}).get("error_description", "")).splitlines()[0:1]
                raise AuthError(
                    f"{self.tenant}: sign-in failed ({self.mode}, client {self.client_id}): {err}"
                    + (f": {desc[0]}" if desc else "")
                )
            self._save()
            self._last = (
                str(result["access_token"]),
                time.monotonic() + float(result.get("expires_in") or 0),
            )
            register(self._last[0])
            return self._last[0]

    def invalidate(self, token: str) -> None:
        """The API refused ``token``: remove it from msal's cache (and ours), so ``token()`` fetches anew."""
        with self._lock:
            at = msal.TokenCache.CredentialType.ACCESS_TOKEN
            for entry in list(self._cache.search(at, query={"secret": token})):
                self._cache.remove_at(entry)
            if self._last[0] == token:
                self._last = ("", 0.0)
            self._save()

    def _save(self) -> None:
        if self.cache_path and self._cache.has_state_changed:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.cache_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self._cache.serialize())
            self._cache.has_state_changed = False

    def __call__(self) -> str:
        return self.token()


class WindowsAuth(AuthBase):
    """NTLM (in an ``NTLM`` or a ``Negotiate`` header) through ``requests_ntlm``, plus one rule of ours: a 401
    after the handshake is ``SignInRefused`` in one line (the account, never the password), and once refused
    this auth sends nothing more, so a run cannot lock the account out."""

    def __init__(self, username: str, password: str, label: str, channel_binding: bool = True) -> None:
        try:
            from requests_ntlm import HttpNtlmAuth
        except ImportError:
            raise ValueError(f'auth = "windows" needs the projectserver extra: {EXTRA}') from None
        register(password)
        self.username, self.label = username, label
        self._ntlm = HttpNtlmAuth(username, password, send_cbt=channel_binding)
        self.refused: SignInRefused | None = None

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.refused is not None:
            raise self.refused
        r = self._ntlm(r)
        r.register_hook("response", self._after_handshake)  # runs after requests_ntlm's own hook
        return r

    def _after_handshake(self, resp: requests.Response, **_kw: object) -> requests.Response:
        if resp.status_code != 401:
            return resp
        offered = resp.headers.get("WWW-Authenticate", "")
        if any(s in offered.lower() for s in ("ntlm", "negotiate")):
            why = "wrong user name or password, a locked account, or no access to the PWA site"
        else:
            why = f"the server offers no Windows sign-in (WWW-Authenticate: {offered or 'none'})"
        self.refused = SignInRefused(f"{self.label}: Windows sign-in refused for {self.username}: {why}")
        raise self.refused

    def __repr__(self) -> str:  # never print the password
        return f"WindowsAuth(username={self.username!r})"
