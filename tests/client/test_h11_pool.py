"""The async transport's h11 keep-alive pool over loopback, against a scripted asyncio server that counts its
connections: reuse, servers closing, the size cap, tiny TCP writes, TLS, cancellation, and when a proxy
from the environment sends the transport through httpx instead."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect
from airflow_provider_msghistory.client.errors import ApiConnectionError, UnexpectedResponseError
from airflow_provider_msghistory.client.transport import MAX_REPLY_BYTES
from airflow_provider_msghistory.client.transport.aio import AsyncTransport
from airflow_provider_msghistory.client.transport.h11pool import H11Pool
from airflow_provider_msghistory.client.transport.pools import HttpxSender, proxied
from airflow_provider_msghistory.client.wire import ApiRequest

from .conftest import Sleeps

KEY = "pool-key-7c3e91"
OK = b'{"content": [], "status": "COMPLETED"}'
GET = ApiRequest("get_export", "GET", "/exports/1")
CREATE = ApiRequest("submit_export", "POST", "/exports", json={"a": 1}, creates_export=True)
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]


def response(body: bytes = OK, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in (f"Content-Length: {len(body)}", *headers))
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + head.encode() + b"\r\n" + body


async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> bool:
    writer.write(response())
    return True


class Scripted:
    """An HTTP/1.1 server on loopback: each request is answered by ``answer(reader, writer, n)`` (``n``
    counts requests from 0); ``False`` closes the connection. Records connections and request heads."""

    def __init__(self, answer: Answer = ok, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.heads: list[bytes] = []

    async def __aenter__(self) -> Scripted:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    @property
    def url(self) -> str:
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                lines = head.lower().split(b"\r\n")
                length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                keep = await self.answer(reader, writer, len(self.heads) - 1)
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def transport(url: str, sleeps: Sleeps, **overrides: Any) -> AsyncTransport:
    options: dict[str, Any] = {
        "base_url": url, "api_key": KEY, "backoff_base": 0.01, "backoff_max": 0.05, "connect_timeout": 2.0,
        "read_timeout": 5.0, "call_timeout": 10.0, "max_attempts": 3, **overrides,
    }
    config = ClientConfig(**options)
    return AsyncTransport(config, QlaraDialect(config), sleep=sleeps.asleep, clock=sleeps.clock)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def test_sequential_requests_reuse_one_connection(sleeps: Sleeps) -> None:
    async def scenario() -> Scripted:
        async with Scripted() as server:
            client = transport(server.url, sleeps)
            assert isinstance(client._sender, H11Pool)
            for _ in range(5):
                assert (await client.send(GET)).body == json.loads(OK)
            await client.aclose()
            assert client.closed
            return server

    server = asyncio.run(scenario())
    assert (server.connections, len(server.heads)) == (1, 5)
    assert all(KEY.encode() in head for head in server.heads)


def test_connection_close_is_honoured(sleeps: Sleeps) -> None:
    async def close_after(reader: Any, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(response(OK, "Connection: close"))
        return False

    async def scenario() -> Scripted:
        async with Scripted(close_after) as server:
            client = transport(server.url, sleeps)
            for _ in range(3):
                assert (await client.send(GET)).status_code == 200
            await client.aclose()
            return server

    server = asyncio.run(scenario())
    assert (server.connections, len(server.heads), sleeps.waits) == (3, 3, [])


@pytest.mark.parametrize("request_", [GET, CREATE], ids=["idempotent", "creates-export"])
def test_a_kept_alive_connection_the_server_drops_unanswered_is_for_the_core_to_retry(
    sleeps: Sleeps, request_: ApiRequest
) -> None:
    """The server takes the second request on the kept-alive connection and hangs up without a byte (the
    race of a server closing an idle connection as the client reuses it): a GET is sent again on a fresh
    connection; a request that may have created an export is not."""

    async def drop_second(reader: Any, writer: asyncio.StreamWriter, n: int) -> bool:
        if n == 1:
            return False
        writer.write(response())
        return True

    async def scenario() -> tuple[Scripted, Any]:
        async with Scripted(drop_second) as server:
            client = transport(server.url, sleeps)
            await client.send(request_)
            try:
                return server, await client.send(request_)
            except ApiConnectionError as error:
                return server, error
            finally:
                await client.aclose()

    server, outcome = asyncio.run(scenario())
    if request_.idempotent:
        assert outcome.status_code == 200 and (server.connections, len(server.heads)) == (2, 3)
    else:
        assert isinstance(outcome, ApiConnectionError) and "without answering" in str(outcome)
        assert (server.connections, len(server.heads)) == (1, 2)


def test_a_reply_past_the_cap_is_refused_and_its_connection_dropped(sleeps: Sleeps) -> None:
    big = b"[" + b"0," * (MAX_REPLY_BYTES // 2) + b"0]"

    async def big_first(reader: Any, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.write(response(big if n == 0 else OK))
        return True

    async def scenario() -> Scripted:
        async with Scripted(big_first) as server:
            client = transport(server.url, sleeps)
            with pytest.raises(UnexpectedResponseError, match="MiB limit"):
                await client.send(GET)
            assert (await client.send(GET)).status_code == 200
            await client.aclose()
            return server

    assert asyncio.run(scenario()).connections == 2


def test_a_chunked_reply_in_one_byte_writes_is_read_whole_and_the_connection_kept(sleeps: Sleeps) -> None:
    body = json.dumps({"content": [{"exportId": f"e{i}"} for i in range(20)]}).encode()
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"

    async def trickle(reader: Any, writer: asyncio.StreamWriter, n: int) -> bool:
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(wire)):
            writer.write(wire[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        return True

    async def scenario() -> tuple[Scripted, list[Any]]:
        async with Scripted(trickle) as server:
            client = transport(server.url, sleeps)
            bodies = [(await client.send(GET)).body for _ in range(2)]
            await client.aclose()
            return server, bodies

    server, bodies = asyncio.run(scenario())
    assert bodies == [json.loads(body)] * 2 and server.connections == 1


def test_a_call_cancelled_mid_reply_leaves_no_connection_to_reuse(sleeps: Sleeps) -> None:
    started = asyncio.Event

    async def scenario() -> Scripted:
        half_sent = started()

        async def stall_first(reader: Any, writer: asyncio.StreamWriter, n: int) -> bool:
            if n == 0:
                writer.write(response(OK)[:-10])
                await writer.drain()
                half_sent.set()
                await asyncio.sleep(30)
            writer.write(response())
            return True

        async with Scripted(stall_first) as server:
            client = transport(server.url, sleeps)
            call = asyncio.create_task(client.send(GET))
            await half_sent.wait()
            await asyncio.sleep(0.05)  # the client has read the head and part of the body
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert (await client.send(GET)).status_code == 200
            await client.aclose()
            return server

    server = asyncio.run(scenario())
    assert (server.connections, len(server.heads)) == (2, 2)


# --- TLS ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    LOOPBACK = ipaddress.ip_address("127.0.0.1")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(LOOPBACK)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.mark.parametrize("verify", [False, True])
def test_tls_to_a_self_signed_server(self_signed: ssl.SSLContext, sleeps: Sleeps, verify: bool) -> None:
    """``verify=False`` talks to it (over one kept-alive connection); ``verify=True`` fails at once as a
    certificate error, not retried."""

    async def scenario() -> tuple[Scripted, Any]:
        async with Scripted(tls=self_signed) as server:
            client = transport(server.url, sleeps, verify=verify)
            try:
                return server, [(await client.send(GET)).status_code for _ in range(3)]
            except ApiConnectionError as error:
                return server, error
            finally:
                await client.aclose()

    server, outcome = asyncio.run(scenario())
    if verify:
        assert isinstance(outcome, ApiConnectionError) and "certificate verif" in str(outcome)
        assert "after 1 attempt" in str(outcome) and sleeps.waits == []
    else:
        assert outcome == [200] * 3 and server.connections == 1


# --- proxies ------------------------------------------------------------------------------------------
@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_proxy_selection_follows_the_environment(no_proxy_env: pytest.MonkeyPatch) -> None:
    assert not proxied("https://api.example.com/v1")
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxied("https://api.example.com/v1") and not proxied("http://api.example.com/v1")
    no_proxy_env.setenv("NO_PROXY", ".example.com")
    assert not proxied("https://api.example.com/v1")
    no_proxy_env.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert proxied("http://other.example.org/") and not proxied("http://api.example.com/")


def test_a_proxied_api_goes_through_the_proxy_on_httpx(
    no_proxy_env: pytest.MonkeyPatch, sleeps: Sleeps
) -> None:
    """With ``HTTP_PROXY`` set the transport runs on httpx, and the request reaches the proxy (which
    answers it itself) in absolute form for the API's host."""

    async def scenario() -> tuple[Scripted, Any]:
        async with Scripted() as proxy:
            no_proxy_env.setenv("HTTP_PROXY", proxy.url)
            client = transport("http://api.example.invalid/api", sleeps)
            assert isinstance(client._sender, HttpxSender)
            try:
                return proxy, await client.send(GET)
            finally:
                await client.aclose()

    proxy, answer = asyncio.run(scenario())
    assert answer.status_code == 200
    assert proxy.heads[0].startswith(b"GET http://api.example.invalid/api/exports/1 HTTP/1.1")
