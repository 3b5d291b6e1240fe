"""HTTP/1.1 keep-alive connections on asyncio streams, driven by ``h11``: the async transport's I/O.

Triggers send only small JSON API calls; at 10,000 waits a triggerer's loop spent ~80% of its CPU in
httpx/httpcore/anyio (1.6-4 ms per small GET) against ~0.24 ms for h11 over asyncio streams. This module
only does I/O: it raises :class:`ConnectFailed` (nothing was sent) or :class:`ExchangeFailed` (the server
may have acted), and the transport core decides what follows. A connection is reused only after a complete
exchange both sides left open; after an error, a cancellation or a partial read it is dropped.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11

#: Idle connections older than this are closed, not reused: below common servers' 5 s keep-alive, so the
#: client, not a server closing at the same moment, ends an idle connection.
KEEPALIVE_EXPIRY = 4.0
READ_SIZE = 64 << 10
_DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


class ConnectFailed(Exception):
    """No connection (refused, DNS, TLS handshake, connect timeout): the request was not sent.

    :param certificate: the server's certificate failed verification (retrying cannot help).
    """

    def __init__(self, message: str, certificate: bool = False) -> None:
        super().__init__(message)
        self.certificate = certificate


class ExchangeFailed(Exception):
    """The connection failed or the server answered malformed HTTP after the request was (maybe) sent."""


class InvalidRequest(Exception):
    """The request cannot be put on the wire (an illegal header or URL); its values are not quoted."""


class Headers(Mapping[str, str]):
    """A response's headers, case-insensitive; repeated names are joined with ``", "`` (as httpx does)."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        store: dict[str, str] = {}
        for name, value in raw:  # h11 gives lower-cased names
            key, text = name.decode("latin-1"), value.decode("latin-1")
            store[key] = f"{store[key]}, {text}" if key in store else text
        self._store = store

    def __getitem__(self, name: str) -> str:
        return self._store[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._store.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return f"Headers({list(self._store)})"  # names only: a value may be a credential


def query(params: Mapping[str, Any] | None) -> str:
    """A query string, primitives encoded as httpx does (``true``/``false``, ``None`` as empty)."""
    if not params:
        return ""

    def text(value: Any) -> str:
        if value is True or value is False:
            return "true" if value else "false"
        return "" if value is None else str(value)

    pairs = [
        (key, text(item))
        for key, value in params.items()
        for item in (value if isinstance(value, (list, tuple)) else [value])
    ]
    return urlencode(pairs)


class _Connection:
    __slots__ = ("idle_since", "protocol", "reader", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < KEEPALIVE_EXPIRY
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def drop(self) -> None:
        self.writer.close()  # not awaited: a cancelled call must not wait on a peer


class Response:
    """A response whose body is read with :meth:`aiter_raw`; :meth:`aclose` returns the connection to the
    pool when the exchange completed, else drops it."""

    def __init__(self, pool: H11Pool, origin: Origin, conn: _Connection, event: h11.Response) -> None:
        self.status_code = event.status_code
        self.headers = Headers(event.headers)
        self._pool = pool
        self._origin = origin
        self._conn: _Connection | None = conn
        self._complete = False

    def aiter_raw(self) -> Response:
        return self

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None or self._complete:
            raise StopAsyncIteration
        while True:
            event = _next_event(conn)
            if event is h11.NEED_DATA:
                await self._pool.receive(conn)
            elif type(event) is h11.Data:
                return bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                self._complete = True
                raise StopAsyncIteration
            else:
                raise ExchangeFailed(f"connection ended in the body ({type(event).__name__})")

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(self._origin, conn, self._complete)


def _next_event(conn: _Connection) -> Any:
    try:
        return conn.protocol.next_event()
    except h11.RemoteProtocolError as exc:
        raise ExchangeFailed(f"malformed response: {exc}") from None


class H11Pool:
    """Keep-alive HTTP/1.1 connections per origin (scheme, host, port), at most ``max_connections`` in all,
    one request per connection at a time.

    :param ssl_context: the TLS context of ``https`` URLs (server name checked as the context says).
    :param connect_timeout: seconds to connect (TCP and TLS handshake).
    :param read_timeout: seconds any single read may wait.
    :param max_connections: connections open at once; more requests wait for one.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
    ) -> None:
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max = max_connections
        self._idle: dict[Origin, list[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.is_closed = False

    async def send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        body_json: Any,
        headers: Mapping[str, str],
    ) -> Response:
        """Send one request; the response once its head has arrived (read its body, then ``aclose`` it)."""
        if self.is_closed:
            raise RuntimeError("the HTTP connection pool is closed")
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        if scheme not in _DEFAULT_PORTS or not host:
            raise InvalidRequest(f"unsupported URL scheme or host: {scheme!r}")
        port = parts.port or _DEFAULT_PORTS[scheme]
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        encoded = query(params)
        if encoded:
            target += ("&" if parts.query else "?") + encoded
        wire = [("Host", host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"), *headers.items()]
        content = b""
        if body_json is not None:
            text = json.dumps(body_json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            content = text.encode()
            wire.append(("Content-Type", "application/json"))
        if content or method not in ("GET", "HEAD"):
            wire.append(("Content-Length", str(len(content))))

        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections and the semaphore belong to one event loop
            self._drop_idle()
            self._slots = asyncio.Semaphore(self._max)
            self._loop = loop
        origin = (scheme, host, port)
        await self._slots.acquire()
        try:
            conn = await self._connection(origin, loop.time())
        except BaseException:
            self._slots.release()
            raise
        try:
            return await self._exchange(origin, conn, method, target, wire, content)
        except BaseException:
            conn.drop()
            self._slots.release()
            raise

    async def _exchange(
        self, origin: Origin, conn: _Connection, method: str, target: str, wire: list[tuple[str, str]],
        content: bytes,
    ) -> Response:
        protocol = conn.protocol
        try:
            data = protocol.send(h11.Request(method=method, target=target, headers=wire))
            if content:
                data += protocol.send(h11.Data(data=content))
            data += protocol.send(h11.EndOfMessage())
        except (h11.LocalProtocolError, UnicodeError):
            raise InvalidRequest("a request header or the URL has characters HTTP does not allow") from None
        try:
            conn.writer.write(data)  # type: ignore[arg-type]
            await conn.writer.drain()
        except OSError as exc:
            raise ExchangeFailed(f"sending failed: {type(exc).__name__}: {exc}") from None
        answered = False
        while True:
            event = _next_event(conn)
            if event is h11.NEED_DATA:
                if not await self.receive(conn) and not answered:
                    stale = " (a kept-alive connection the server had closed)" if conn.reused else ""
                    raise ExchangeFailed(f"the server closed the connection without answering{stale}")
                answered = True
            elif type(event) is h11.Response:
                return Response(self, origin, conn, event)
            elif type(event) is not h11.InformationalResponse:
                raise ExchangeFailed(f"the connection ended before the reply ({type(event).__name__})")

    async def receive(self, conn: _Connection) -> int:
        """Feed the connection's parser the next bytes (``b""`` at the end); how many there were."""
        try:
            async with asyncio.timeout(self._read_timeout):
                data = await conn.reader.read(READ_SIZE)
        except TimeoutError:
            raise ExchangeFailed(f"no data within read_timeout={self._read_timeout:g} s") from None
        except OSError as exc:
            raise ExchangeFailed(f"reading failed: {type(exc).__name__}: {exc}") from None
        try:
            conn.protocol.receive_data(data)
        except h11.RemoteProtocolError as exc:
            raise ExchangeFailed(f"malformed response: {exc}") from None
        return len(data)

    async def _connection(self, origin: Origin, now: float) -> _Connection:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable(now):
                conn.reused = True
                return conn
            conn.drop()
        scheme, host, port = origin
        tls = self._ssl if scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_SIZE
                )
        except TimeoutError:
            raise ConnectFailed(f"no connection within connect_timeout={self._connect_timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            raise ConnectFailed(f"TLS certificate verification failed: {exc.verify_message}", True) from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS handshake (SSLError)
            raise ConnectFailed(f"connecting failed: {type(exc).__name__}: {exc}") from None
        return _Connection(reader, writer)

    def release(self, origin: Origin, conn: _Connection, complete: bool) -> None:
        """Back to the pool after a complete exchange both sides keep open; dropped otherwise."""
        protocol = conn.protocol
        reusable = complete and protocol.our_state is h11.DONE and protocol.their_state is h11.DONE
        if reusable and not self.is_closed:
            protocol.start_next_cycle()
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(origin, []).append(conn)
        else:
            conn.drop()
        self._slots.release()

    def _drop_idle(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.drop()
        self._idle.clear()

    async def aclose(self) -> None:
        """Close the idle connections; those in use are dropped when their responses close."""
        self.is_closed = True
        self._drop_idle()
