"""A hostile or broken API and storage host: oversized, dripping, endless, spliced, redirecting, echoing.

Each case runs the real clients (sync and async) or the real download loop over HTTP against a scripted
stdlib server (``tests/hostile``) and checks the library's own error, raised in bounded time and memory,
with no credential in any text that leaves.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hostile.server import (
    API_PREFIX,
    HostileServer,
    drip,
    echo_headers,
    endless_chunked,
    ranged,
    redirect,
    reply,
    send,
    truncated,
)

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.auth import AuthFlow
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect
from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    AuthenticationError,
    UnexpectedResponseError,
)
from airflow_provider_msghistory.client.transport import MAX_REPLY_BYTES
from airflow_provider_msghistory.transfers.download import DownloadError, Link, ResumableDownload

KEY = "hostile-key-5e1f0c2a"
EXPORTS = API_PREFIX + "/exports"
FAST = {"max_attempts": 1, "connect_timeout": 2.0, "read_timeout": 2.0}
CSV = b"id,body\n" + b"".join(b'%d,"row %d, with ""quotes""\nand a newline"\n' % (i, i) for i in range(3000))
OTHER = b"id,body\n" + b"".join(b"%d,another file %d\n" % (i, i) for i in range(9000))


@pytest.fixture
def server() -> Any:
    with HostileServer() as hostile:
        yield hostile


def sync_client(server: HostileServer, **overrides: Any) -> ExportClient:
    return ExportClient(ClientConfig(base_url=server.api_url, **{"api_key": KEY, **FAST, **overrides}))


def run_async(server: HostileServer, call: str, *args: Any, **overrides: Any) -> Any:
    async def go() -> Any:
        config = ClientConfig(base_url=server.api_url, **{"api_key": KEY, **FAST, **overrides})
        async with AsyncExportClient(config) as client:
            return await getattr(client, call)(*args)

    return asyncio.run(go())


# --- oversized and endless replies ---------------------------------------------------------------------
OVERSIZED = b'{"content": [' + b'{"exportId": "x", "status": "PENDING"},' * (MAX_REPLY_BYTES // 38) + b"{}]}"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("shape", ["oversized", "endless"])
def test_an_api_reply_past_the_size_cap_is_refused_not_read_whole(
    server: HostileServer, mode: str, shape: str
) -> None:
    server.route(EXPORTS, reply(200, OVERSIZED) if shape == "oversized" else endless_chunked())
    started = time.monotonic()
    with pytest.raises(UnexpectedResponseError, match="MiB limit"):
        if mode == "sync":
            with sync_client(server) as client:
                client.list_exports()
        else:
            run_async(server, "list_exports")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_dripping_api_reply_ends_at_the_call_deadline(server: HostileServer, mode: str) -> None:
    """One byte every 0.2 s never trips the 2 s read timeout; the 1.5 s call deadline ends it."""
    server.route(EXPORTS, drip(b'{"content": []}' * 20, every=0.2))
    started = time.monotonic()
    with pytest.raises(ApiConnectionError, match="call_timeout"):
        if mode == "sync":
            with sync_client(server, call_timeout=1.5) as client:
                client.list_exports()
        else:
            run_async(server, "list_exports", call_timeout=1.5)
    assert time.monotonic() - started < 5


def test_deeply_nested_json_is_an_unreadable_reply_not_a_recursion_error(server: HostileServer) -> None:
    server.route(EXPORTS, reply(200, b"[" * 200_000 + b"]" * 200_000))
    with sync_client(server) as client, pytest.raises(UnexpectedResponseError):
        client.list_exports()


@pytest.mark.parametrize("expiry", [b"1e20", b"NaN", b"Infinity", b"-1e300"])
def test_an_absurd_link_expiry_is_read_as_unknown(server: HostileServer, expiry: bytes) -> None:
    body = b'{"downloadUrl": "http://127.0.0.1:1/f.csv", "expiresAt": ' + expiry + b"}"
    server.route(EXPORTS + "/exp_1", reply(200, body))
    with sync_client(server) as client:
        assert client.get_download_link("exp_1").expires_at is None


# --- credentials echoed back ---------------------------------------------------------------------------
class BearerDialect(QlaraDialect):
    """A vendor whose auth sends a token derived from the key (as 8x8's Bearer keys are)."""

    name: ClassVar[str] = "bearer-test"

    def auth(self) -> AuthFlow:
        # No secrets listed: the transport must scrub what the headers carry by itself.
        return AuthFlow({"Authorization": f"Bearer {bearer_token(str(self.config.api_key))}"}, ())


def bearer_token(key: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("config", "dialect", "leaks"),
    [
        pytest.param(
            {"username": "partner", "password": "pw-9f8e7d6c"},
            None,
            [base64.b64encode(b"partner:pw-9f8e7d6c").decode(), "pw-9f8e7d6c"],
            id="basic-token",
        ),
        pytest.param({"api_key": KEY}, BearerDialect, [bearer_token(KEY), KEY], id="bearer"),
    ],
)
def test_an_error_echoing_the_request_headers_carries_no_credential(
    server: HostileServer, config: dict[str, Any], dialect: Any, leaks: list[str]
) -> None:
    server.route(EXPORTS, echo_headers(401))
    client_config = ClientConfig(base_url=server.api_url, **config, **FAST)
    client = ExportClient(client_config, dialect=dialect(client_config) if dialect else None)
    with client, pytest.raises(AuthenticationError) as caught:
        client.list_exports()
    assert "Authorization" in server.seen[0].headers  # the credential was sent, and echoed...
    text = f"{caught.value} {caught.value.message} {caught.value.args!r}"
    assert "***" in text
    for secret in leaks:  # ...and scrubbed in every form
        assert secret not in text


def test_a_key_with_escaped_characters_is_scrubbed_in_its_escaped_form_too(server: HostileServer) -> None:
    key = 'k3y-"quoted"-and\\backslash'  # header-safe, yet escaped by repr() and JSON

    def echo_escaped(handler: Any) -> None:
        key_seen = handler.headers["X-Api-Key"]
        send(handler, 401, f'{{"message": "bad key {key_seen!r}"}}'.encode())

    server.route(EXPORTS, echo_escaped)
    with sync_client(server, api_key=key) as client, pytest.raises(AuthenticationError) as caught:
        client.list_exports()
    assert "bad key" in str(caught.value)
    assert "backslash" not in str(caught.value)


def test_test_connection_shows_no_basic_token(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

    server.route(EXPORTS, echo_headers(401))
    conn = {"conn_type": "msghistory", "host": server.api_url, "login": "partner", "password": "pw-1a2b3c4d"}
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and "***" in message
    assert base64.b64encode(b"partner:pw-1a2b3c4d").decode() not in message


# --- downloads: spliced, dripping, redirecting, not a file ----------------------------------------------
class Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def restart(self) -> None:
        self.data.clear()


class OneLink:
    def __init__(self, url: str) -> None:
        self.url = url

    def fresh(self) -> Link:
        return Link(self.url)


def download(server: HostileServer, path: str, **config: Any) -> tuple[bytes, Any]:
    sink = Sink()
    with sync_client(server, **config) as client:
        stats = ResumableDownload(
            client, OneLink(server.url(path)), sink, label="export x", max_attempts=3, retry_delay=0.01
        ).run()
    return bytes(sink.data), stats


def test_a_resume_answered_from_another_file_starts_over_instead_of_splicing(server: HostileServer) -> None:
    """The first response breaks halfway; the 206 that follows is of a different, larger file."""
    server.route(
        "/f.csv",
        truncated(CSV, len(CSV) // 2),  # the first GET: half of CSV
        ranged(OTHER),  # the resume: a 206 of OTHER (total size differs)
        ranged(CSV),  # the restart from byte 0: CSV whole
    )
    data, stats = download(server, "/f.csv")
    assert data == CSV
    assert stats.restarts == 1 and stats.resumes == 0
    assert stats.digest.sha256 == hashlib.sha256(CSV).hexdigest()


def test_a_resume_with_another_etag_starts_over(server: HostileServer) -> None:
    server.route(
        "/f.csv",
        truncated(CSV, 1000, {"ETag": '"v1"'}),
        ranged(CSV, {"ETag": '"v2"'}),  # same size, but the server says it is another version
        ranged(CSV, {"ETag": '"v2"'}),
    )
    data, stats = download(server, "/f.csv")
    assert data == CSV and stats.restarts == 1


def test_a_resume_of_the_same_file_continues(server: HostileServer) -> None:
    server.route("/f.csv", truncated(CSV, 1000, {"ETag": '"v1"'}), ranged(CSV, {"ETag": '"v1"'}))
    data, stats = download(server, "/f.csv")
    assert data == CSV and stats.resumes == 1 and stats.restarts == 0


def test_a_dripping_download_counts_as_broken_and_gives_up_in_bounded_time(server: HostileServer) -> None:
    server.route("/f.csv", drip(CSV, every=0.05))
    started = time.monotonic()
    with pytest.raises(DownloadError, match="stalled"):
        download(server, "/f.csv", read_timeout=0.5)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("status", "responder"),
    [(204, reply(204)), (302, reply(302, b"<html>moved</html>", {"Content-Type": "text/html"}))],
    ids=["204-empty", "302-without-location"],
)
def test_only_200_and_206_bodies_are_stored(server: HostileServer, status: int, responder: Any) -> None:
    server.route("/f.csv", responder)
    with pytest.raises(DownloadError, match=f"HTTP {status}, not the file"):
        download(server, "/f.csv")


def test_a_gzip_content_encoding_is_refused_clearly(server: HostileServer) -> None:
    import gzip

    server.route("/f.csv", reply(200, gzip.compress(CSV), {"Content-Encoding": "gzip"}))
    with pytest.raises(DownloadError, match="Content-Encoding 'gzip'"):
        download(server, "/f.csv")


@pytest.fixture
def netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ~/.netrc with credentials for the loopback host (requests reads it; so might httpx)."""
    secret = "netrc-secret-77aa"
    path = tmp_path / ".netrc"
    path.write_text(f"machine 127.0.0.1\nlogin someone\npassword {secret}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    monkeypatch.setenv("HOME", str(tmp_path))
    return secret


def test_a_redirected_download_carries_no_netrc_credentials(netrc: str) -> None:
    # Downloads run on the sync client only (the async client polls and regenerates; it never downloads).
    with HostileServer() as first, HostileServer() as third_host:
        first.route("/f.csv", redirect(third_host.url("/moved.csv")))
        third_host.route("/moved.csv", reply(200, CSV))
        config = ClientConfig(base_url=first.api_url, api_key=KEY, **FAST)
        with ExportClient(config) as client, client.open_download(first.url("/f.csv")) as response:
            body = b"".join(response.iter_bytes())
    assert body == CSV
    for seen in first.seen + third_host.seen:
        assert "Authorization" not in seen.headers and KEY not in str(seen.headers)
