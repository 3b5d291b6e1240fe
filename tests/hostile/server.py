"""A scripted HTTP server on loopback: each path answers what the test says, however wrong.

The emulator plays a well-behaved vendor; this plays a hostile or broken one (an API or a storage host).
A responder writes the whole HTTP response itself, so it can lie about sizes, drip, never end, or echo
the request's credentials back.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/api/partner-gateway/v1"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]


Responder = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        self.server.owner.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        responder = self.server.owner.responder(path)
        if responder is None:
            send(self, 404, b'{"message": "no such route"}')
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up: expected
            responder(self)

    do_GET = do_POST = _dispatch

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


class HostileServer:
    """``with HostileServer() as server: server.route(path, responder, ...)``; ``server.url(path)``.

    A route given several responders answers with them in turn (the last one repeats).
    """

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self._routes: dict[str, list[Responder]] = {}
        self.seen: list[Seen] = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def api_url(self) -> str:
        """The base URL a client of the Qlara dialect takes."""
        return self.base + "/api"

    def route(self, path: str, *responders: Responder) -> None:
        self._routes[path] = list(responders)

    def responder(self, path: str) -> Responder | None:
        queue = self._routes.get(path)
        if not queue:
            return None
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- responders ---------------------------------------------------------------------------------------
def send(
    handler: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
) -> None:
    handler.send_response(status)
    headers = dict(headers or {})
    headers.setdefault("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def reply(status: int = 200, body: Any = b"", headers: Mapping[str, str] | None = None) -> Responder:
    """A fixed answer; ``body`` bytes as given, anything else as JSON."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda handler: send(handler, status, raw, headers)


def echo_headers(status: int) -> Responder:
    """An error whose body quotes the request's headers back (as some gateways' debug pages do)."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        quoted = {name: value for name, value in handler.headers.items()}
        send(handler, status, json.dumps({"message": f"rejected request with headers {quoted}"}).encode())

    return respond


def drip(body: bytes, every: float, status: int = 200, headers: Mapping[str, str] | None = None) -> Responder:
    """Announces ``body``'s full length, then sends it one byte per ``every`` seconds."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        for i in range(len(body)):
            handler.wfile.write(body[i : i + 1])
            handler.wfile.flush()
            time.sleep(every)

    return respond


def endless_chunked(piece: bytes = b"[" * 65536, limit: int = 1 << 30) -> Responder:
    """A chunked 200 that never ends (until the client hangs up, or ``limit`` bytes as a safety net)."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        sent = 0
        while sent < limit:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        handler.wfile.write(b"0\r\n\r\n")

    return respond


def truncated(body: bytes, cut: int, headers: Mapping[str, str] | None = None) -> Responder:
    """A 200 announcing ``body`` whole that stops after ``cut`` bytes and drops the connection."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body[:cut])
        handler.wfile.flush()
        handler.close_connection = True

    return respond


def ranged(body: bytes, headers: Mapping[str, str] | None = None) -> Responder:
    """Honours ``Range: bytes=N-`` of ``body`` with a 206 (whole body with 200 without one)."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        wanted = handler.headers.get("Range")
        if not wanted:
            send(handler, 200, body, headers)
            return
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        part = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}", **(headers or {})}
        send(handler, 206, body[start:], part)

    return respond


def redirect(location: str, status: int = 302) -> Responder:
    return lambda handler: send(handler, status, b"", {"Location": location})
