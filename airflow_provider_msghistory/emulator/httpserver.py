"""A small asyncio HTTP/1.1 server: keep-alive, Content-Length or chunked request bodies, streamed
responses, and the misbehaviours fault injection needs (TCP reset, truncated body).

asyncio rather than a thread per connection: 1,000 idle keep-alive clients cost a coroutine each, and the
injected latency is an ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

MAX_LINE = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
BACKLOG = 4096
_STREAM_BUFFER = 8 * 1024 * 1024


class Headers(Mapping[str, str]):
    """Case-insensitive, order-keeping header mapping (iterates the names as received)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._store: dict[str, tuple[str, str]] = {}
        for name, value in items:
            self._store[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._store[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


@dataclass
class Request:
    """A parsed request; ``query`` keeps the last value of each parameter."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    version: str
    port: int


@dataclass
class Response:
    """What to answer. ``stream`` replaces ``body`` (set Content-Length yourself); ``truncate_after`` closes
    the connection after that many body bytes; ``reset`` aborts the connection with a TCP RST instead;
    ``stream_in_thread`` produces each chunk off the event loop (for chunks that take CPU to render)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: Iterable[bytes] | None = None
    truncate_after: int | None = None
    reset: bool = False
    stream_in_thread: bool = False


Handler = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    pass


class HttpServer:
    """Serves ``handler`` on ``host:port`` (0 = a free port) with a large listen backlog.

    :param handler: coroutine turning a :class:`Request` into a :class:`Response`.
    :param host: interface to bind.
    :param port: port to bind, 0 for a free one.
    :param name: the ``Server`` header of every response (``8x8-emulator``, ...).
    """

    def __init__(self, handler: Handler, host: str, port: int, name: str) -> None:
        self._handler = handler
        self._name = name
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, backlog=BACKLOG, limit=MAX_LINE, reuse_address=True
        )

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = int(writer.get_extra_info("sockname")[1])
        try:
            while True:
                try:
                    request = await _read_request(reader, port)
                except _BadRequest as exc:
                    await _write_simple(writer, 400, str(exc), self._name)
                    break
                if request is None:
                    break
                response = await self._handler(request)
                if response.reset:
                    _reset(writer)
                    return
                keep_alive = _wants_keep_alive(request)
                completed = await _write_response(writer, request, response, keep_alive, self._name)
                if not (completed and keep_alive):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        finally:
            self._writers.discard(writer)
            writer.close()


async def _read_request(reader: asyncio.StreamReader, port: int) -> Request | None:
    line = await reader.readline()
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest("malformed request line")
    method, target, version = parts
    items = []
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest("malformed header line")
        items.append((name.strip(), value.strip()))
    headers = Headers(items)
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("Content-Length", "0"))
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if not 0 <= length <= MAX_BODY:
            raise _BadRequest("request body too large")
        body = await reader.readexactly(length) if length else b""
    split = urlsplit(target)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    return Request(method.upper(), split.path, query, headers, body, version, port)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise _BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(body) > MAX_BODY:
            raise _BadRequest("request body too large")


def _wants_keep_alive(request: Request) -> bool:
    connection = request.headers.get("Connection", "").lower()
    if request.version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def _head(status: int, headers: Mapping[str, str], keep_alive: bool, server: str) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Server: {server}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _write_response(
    writer: asyncio.StreamWriter, request: Request, response: Response, keep_alive: bool, server: str
) -> bool:
    """Write the response; False when the body was cut short on purpose (the connection must close)."""
    headers = dict(response.headers)
    if response.stream is None:
        headers.setdefault("Content-Length", str(len(response.body)))
    head = _head(response.status, headers, keep_alive, server)
    if request.method == "HEAD":
        writer.write(head)
        await writer.drain()
        return True
    if response.stream is None:
        body = response.body
        if response.truncate_after is not None:
            writer.write(head + body[: response.truncate_after])
            await writer.drain()
            return False
        writer.write(head + body)
        await writer.drain()
        return True
    writer.transport.set_write_buffer_limits(high=_STREAM_BUFFER)
    writer.write(head)
    budget = response.truncate_after
    async for chunk in _chunks(response.stream, response.stream_in_thread):
        if budget is not None and len(chunk) >= budget:
            writer.write(chunk[:budget])
            await writer.drain()
            return False
        writer.write(chunk)
        if budget is not None:
            budget -= len(chunk)
        await writer.drain()
    return budget is None


async def _chunks(stream: Iterable[bytes], in_thread: bool) -> AsyncIterator[bytes]:
    iterator = iter(stream)
    while True:
        chunk = await asyncio.to_thread(next, iterator, None) if in_thread else next(iterator, None)
        if chunk is None:
            return
        yield chunk


async def _write_simple(writer: asyncio.StreamWriter, status: int, text: str, server: str) -> None:
    body = text.encode()
    headers = {"Content-Type": "text/plain", "Content-Length": str(len(body))}
    writer.write(_head(status, headers, False, server) + body)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with a TCP RST (SO_LINGER 0), as a crashed proxy or a dropped link would."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
