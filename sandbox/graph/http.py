"""A tiny threaded JSON HTTP server on 127.0.0.1 for the Microsoft simulators (Graph and ProjectData).

Subclasses implement ``handle(method, path, query, body) -> (status, headers, body)``. The server logs
every request (method, path, query) so tests can assert exact request shapes, can add latency per
request, and answers 401 without a bearer token.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

Response = tuple[int, dict[str, str], Any]


class JsonSimulator:
    prefix = ""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to implement -----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start the simulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    def start(self) -> Self:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without NODELAY, Nagle + delayed ACK cost 40 ms each.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _do(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if sim.latency:
                    time.sleep(sim.latency)
                if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                    status, headers, body = 401, {}, {"error": {"code": "InvalidAuthenticationToken"}}
                else:
                    with sim.lock:
                        sim.log.append((method, parts.path, query))
                    try:
                        payload = json.loads(raw) if raw else None
                        status, headers, body = sim.handle(method, parts.path, query, payload)
                    except Exception as e:  # a simulator bug must show, not hang the client
                        status, headers, body = (
                            500,
                            {},
                            {"error": {"code": "SimulatorError", "message": str(e)}},
                        )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
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
