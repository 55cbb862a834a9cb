"""A fault-injecting HTTP proxy in front of any sandbox simulator, and an Entra ID sign-in simulator.

``FaultProxy`` forwards every request to its upstream and, when a ``Fault`` matches (path substring, a
substring of the query or body, the nth match), answers in its place: a 5xx or 429 burst, a reset
connection, a truncated, empty or HTML body, a repeated page token, a rewritten record, a 401 for a revoked
token, or it kills the sync process while that request is in flight. Absolute URLs the upstream returns
(``nextLink``, ``baseUrl``) are rewritten to the proxy's, so paging cannot escape the faults. The
simulators stay clean; every fault lives here, in one place the fault bench and tests drive.

``Catcher`` is a foreign host that records the credentials sent to it. ``LoginSimulator`` is the token
endpoint msal talks to (https, as msal insists): client credentials in, numbered bearer tokens out, so a
test can revoke one and watch the client fetch the next.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.http import LocalServer

Edit = Callable[[Any], Any]  # a parsed JSON body in, the body to send out


@dataclass
class Fault:
    """``kind`` on the ``nth`` request whose path contains ``path`` (and whose query or body contains
    ``where``), then on the ``times - 1`` matching requests after it (``times=0``: every one from then on).

    kinds: ``status`` (reply ``status`` with ``headers``), ``reset`` (close the connection, no reply),
    ``truncate`` (half the body), ``empty`` (``{}``), ``html`` (a proxy's error page with status 200),
    ``repeat_token`` (the first page's ``token_key`` value again), ``edit`` (``edit(body)``), ``kill``
    (SIGKILL the process in ``FaultProxy.victim``), ``revoke`` (401 for the first bearer token seen).
    """

    kind: str
    path: str
    nth: int = 1
    times: int = 1
    where: str = ""
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    token_key: str = "nextPageToken"
    edit: Edit | None = None
    seen: int = 0  # matching requests so far
    fired: int = 0  # times applied
    first_value: Any = None  # repeat_token: the value repeated; revoke: the token revoked

    def matches(self, path: str, text: str) -> bool:
        if self.path not in path or self.where not in text:
            return False
        self.seen += 1
        return self.seen >= self.nth and (self.times == 0 or self.fired < self.times)


class FaultProxy(LocalServer):
    """``with FaultProxy(upstream_url) as p: p.faults.append(Fault(...)); client.base = p.url``."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        parts = urlsplit(upstream)
        self.upstream_origin = f"{parts.scheme}://{parts.netloc}"
        self.prefix = parts.path.rstrip("/")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.faults: list[Fault] = []
        self.victim: int | None = None  # pid a ``kill`` fault ends
        self.lock = threading.Lock()

    @property
    def origin(self) -> str:
        return self.url.removesuffix(self.prefix)

    def reset(self) -> None:
        with self.lock:
            self.faults, self.victim = [], None

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        with self.lock:
            text = urlsplit(request.path).query + raw.decode("utf-8", "replace")
            auth = request.headers.get("Authorization", "")
            fault = next((f for f in self.faults if f.matches(urlsplit(request.path).path, text)), None)
            if fault and fault.kind == "revoke":
                fault.first_value = fault.first_value or auth
                fault = fault if auth == fault.first_value else None
            if fault:
                fault.fired += 1
        if fault and fault.kind in _BEFORE:
            _BEFORE[fault.kind](self, request, fault)
            return
        status, headers, body = self._forward(request, method, raw)
        if fault:
            status, headers, body = _AFTER[fault.kind](fault, status, headers, body)
        _reply(request, status, headers, body, truncate=fault is not None and fault.kind == "truncate")

    def _forward(self, request: BaseHTTPRequestHandler, method: str, raw: bytes) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            skip = {"host", "content-length", "connection", "accept-encoding"}
            headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
            conn.request(method, request.path, body=raw or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read().replace(self.upstream_origin.encode(), self.origin.encode())
            hop = ("content-length", "connection", "server", "date")  # _reply writes its own
            keep = {k: v for k, v in resp.getheaders() if k.lower() not in hop}
            return resp.status, keep, body
        finally:
            conn.close()


def _reply(
    request: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes, truncate: bool = False
) -> None:
    request.send_response(status)
    for k, v in headers.items():
        request.send_header(k, v)
    request.send_header("Content-Length", str(len(body)))
    if truncate:
        request.send_header("Connection", "close")
    request.end_headers()
    request.wfile.write(body[: len(body) // 2] if truncate else body)
    if truncate:
        request.wfile.flush()
        request.close_connection = True


def _reset(proxy: FaultProxy, request: BaseHTTPRequestHandler, fault: Fault) -> None:
    """Close with RST: SO_LINGER 0 makes close() abort the connection, as a crashed peer or firewall does."""
    request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.close_connection = True
    request.connection.close()


def _kill(proxy: FaultProxy, request: BaseHTTPRequestHandler, fault: Fault) -> None:
    """The sync dies while this request is in flight: nothing after it can commit."""
    if proxy.victim:
        with contextlib.suppress(ProcessLookupError):  # already gone: nothing to kill
            os.kill(proxy.victim, signal.SIGKILL)
    _reset(proxy, request, fault)


def _status(proxy: FaultProxy, request: BaseHTTPRequestHandler, fault: Fault) -> None:
    body = json.dumps({"error": {"code": str(fault.status), "message": "injected"}}).encode()
    _reply(request, fault.status, {"Content-Type": "application/json", **fault.headers}, body)


def _html(proxy: FaultProxy, request: BaseHTTPRequestHandler, fault: Fault) -> None:
    page = b"<html><head><title>Gateway</title></head><body>Please sign in to continue</body></html>"
    _reply(request, 200, {"Content-Type": "text/html"}, page)


def _empty(proxy: FaultProxy, request: BaseHTTPRequestHandler, fault: Fault) -> None:
    _reply(request, 200, {"Content-Type": "application/json"}, b"{}")


def _unauthorized(proxy: FaultProxy, request: BaseHTTPRequestHandler, fault: Fault) -> None:
    body = b'{"error": {"code": "InvalidAuthenticationToken", "message": "Access token has expired."}}'
    _reply(request, 401, {"Content-Type": "application/json"}, body)


def _repeat_token(fault: Fault, status: int, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    """The first page's link or token on every later page too, which so claims not to be the last."""
    doc = json.loads(body)
    if isinstance(doc, dict) and fault.first_value is None:
        fault.first_value = doc.get(fault.token_key)
    elif isinstance(doc, dict):
        doc[fault.token_key] = fault.first_value
        if "isLast" in doc:
            doc["isLast"] = False
    return status, headers, json.dumps(doc).encode()


def _edit(fault: Fault, status: int, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    assert fault.edit is not None
    return status, headers, json.dumps(fault.edit(json.loads(body))).encode()


def _as_is(fault: Fault, status: int, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    return status, headers, body


_BEFORE: dict[str, Callable[[FaultProxy, BaseHTTPRequestHandler, Fault], None]] = {
    "status": _status,
    "reset": _reset,
    "kill": _kill,
    "html": _html,
    "empty": _empty,
    "revoke": _unauthorized,
}
_AFTER: dict[str, Callable[[Fault, int, dict, bytes], tuple[int, dict, bytes]]] = {
    "truncate": _as_is,
    "repeat_token": _repeat_token,
    "edit": _edit,
}


class Catcher(LocalServer):
    """A host that is none of the source's, as a tampered ``nextLink`` may name: it records the
    ``Authorization`` header of every request it gets, and answers an empty page."""

    def __init__(self) -> None:
        super().__init__()
        self.authorizations: list[str] = []

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        self.authorizations.append(request.headers.get("Authorization", ""))
        _reply(request, 200, {"Content-Type": "application/json"}, b'{"value": []}')


class LoginSimulator(LocalServer):
    """Entra ID's v2.0 endpoints for one tenant: OIDC discovery and the client-credentials token grant.

    Tokens are ``<prefix>-1``, ``<prefix>-2``, … so a test sees which one a request carried.
    """

    def __init__(self, cert: Path, key: Path, client_id: str, client_secret: str, prefix: str) -> None:
        super().__init__(cert, key)
        self.client_id, self.client_secret, self.prefix_token = client_id, client_secret, prefix
        self.issued = 0

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(request.path).path
        tenant = path.strip("/").split("/")[0]
        base = self.url + "/" + tenant
        if path.endswith("/.well-known/openid-configuration"):
            doc = {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
            }
            return _reply(request, 200, {"Content-Type": "application/json"}, json.dumps(doc).encode())
        length = int(request.headers.get("Content-Length") or 0)
        form = parse_qs(request.rfile.read(length).decode())
        if form.get("client_id") != [self.client_id] or form.get("client_secret") != [self.client_secret]:
            body = {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
            return _reply(request, 401, {"Content-Type": "application/json"}, json.dumps(body).encode())
        self.issued += 1
        body = {
            "access_token": f"{self.prefix_token}-{self.issued}",
            "expires_in": 3600,
            "token_type": "Bearer",
        }
        _reply(request, 200, {"Content-Type": "application/json"}, json.dumps(body).encode())


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), for https simulators; trust it with REQUESTS_CA_BUNDLE."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "login.crt", folder / "login.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
