"""Local HTTP servers for the sandbox's simulators: one server lifecycle, and a JSON base for Microsoft.

``LocalServer`` runs a threaded server on 127.0.0.1 (a free port; TLS when given a certificate and key, for
clients that insist on https) and hands every request to ``serve``. ``JsonSimulator`` is the base of the
Graph and ProjectData simulators: subclasses implement ``handle(method, path, query, body) -> (status,
headers, body)``; it logs every request so tests can assert exact request shapes, adds latency on demand,
and answers 401 without a bearer token. The Jira simulator serves its own protocol on ``LocalServer``.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

Response = tuple[int, dict[str, str], Any]


class LocalServer(ABC):
    prefix = ""  # path prefix of the simulated service, part of ``url``

    def __init__(self, cert: Path | None = None, key: Path | None = None) -> None:
        self.cert, self.key = cert, key
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Read the request and write the whole response."""

    @property
    def url(self) -> str:
        assert self._server is not None, "start the simulator first"
        scheme = "https" if self.cert else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> Self:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                sim.serve(self, "GET")

            def do_POST(self) -> None:
                sim.serve(self, "POST")

            def log_message(self, *args: Any) -> None:  # quiet: tests read ``log`` instead
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.cert and self.key:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.cert), str(self.key))
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JsonSimulator(LocalServer):
    def __init__(self, latency: float = 0.0) -> None:
        super().__init__()
        self.latency = latency
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()

    @abstractmethod
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        """The simulated service: one request in, ``(status, headers, body)`` out."""

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if self.latency:
            time.sleep(self.latency)
        if not (request.headers.get("Authorization") or "").startswith("Bearer "):
            status, headers, body = 401, {}, {"error": {"code": "InvalidAuthenticationToken"}}
        else:
            with self.lock:
                self.log.append((method, parts.path, query))
            try:
                payload = json.loads(raw) if raw else None
                status, headers, body = self.handle(method, parts.path, query, payload)
            except Exception as e:  # a simulator bug must show, not hang the client
                status, headers, body = (
                    500,
                    {},
                    {"error": {"code": "SimulatorError", "message": str(e)}},
                )
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            request.send_header(k, v)
        request.end_headers()
        request.wfile.write(data)
