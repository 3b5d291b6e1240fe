"""Secrets against a hostile API: every error that leaves (a login's, a cut one's, the connection test's)
carries no form of a credential, and a key that cannot go in a header is refused before any request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hostile.server import API_PREFIX, HostileServer, reply

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.errors import MsgHistoryError
from airflow_provider_msghistory.client.login import forget_login_keys

PASSWORD = "pw-Zq81-hostile-secret"
KEY = "hostile-key-7d0e4b9c1f2a"
LOGIN = "/kingslanding/login"
EXPORTS = API_PREFIX + "/exports"
FAST = {"max_attempts": 1, "connect_timeout": 2.0, "read_timeout": 2.0}


@pytest.fixture
def server() -> Any:
    forget_login_keys()
    with HostileServer() as hostile:
        yield hostile
    forget_login_keys()


def messangi(server: HostileServer) -> ClientConfig:
    return ClientConfig(
        base_url=server.base, vendor="messangi", username="ops", password=PASSWORD, **FAST
    )


def echoing_login(status: int) -> Any:
    """A login answer quoting the password back (in the explain text and in a raw field)."""
    body = {"meta": {"explain": f"bad credentials ops/{PASSWORD}"}, "data": {"password": PASSWORD}}
    return reply(status, body)


def shown(error: BaseException) -> str:
    return f"{error} {getattr(error, 'message', '')} {error.args!r}"


@pytest.mark.parametrize("status", [400, 401, 403, 500])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_login_error_echoing_the_password_is_scrubbed(
    server: HostileServer, status: int, mode: str
) -> None:
    server.route(LOGIN, echoing_login(status))
    with pytest.raises(MsgHistoryError) as caught:
        if mode == "sync":
            with ExportClient(messangi(server)) as client:
                client.check_connection()
        else:

            async def go() -> None:
                async with AsyncExportClient(messangi(server)) as client:
                    await client.check_connection()

            asyncio.run(go())
    assert server.seen and server.seen[0].path == LOGIN
    assert PASSWORD not in shown(caught.value) and "***" in shown(caught.value)


def test_test_connection_shows_no_password_a_login_error_echoed(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

    server.route(LOGIN, echoing_login(401))
    extra = {"vendor": "messangi", "report_emails": ["ops@acme.example"], "report_sender": "r@acme.example"}
    conn = {"conn_type": "msghistory", "host": server.base, "login": "ops", "password": PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps({**conn, "extra": extra}))
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and "***" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("shape", ["json-string", "text", "blank-led-text"])
@pytest.mark.parametrize("edge", [500, 1000, 2000])
def test_a_key_cut_at_the_edge_of_an_error_text_is_scrubbed_before_the_cut(
    server: HostileServer, shape: str, edge: int
) -> None:
    # The key ends two characters past ``edge``: a cut there keeps all of it but two.
    start = edge - len(KEY) + 2
    filler = " " if shape == "blank-led-text" else "x"  # leading blanks are stripped from a message
    text = filler * start + KEY + " and more"
    body: Any = text if shape == "json-string" else text.encode()  # bytes: sent as is, not JSON
    server.route(EXPORTS, reply(400, body))
    with (
        ExportClient(ClientConfig(base_url=server.api_url, api_key=KEY, **FAST)) as client,
        pytest.raises(MsgHistoryError) as caught,
    ):
        client.list_exports()
    assert KEY[: len(KEY) // 2] not in shown(caught.value)


@pytest.mark.parametrize(
    "key", ["k\u00e9y-0123456789", "key-0123\n456789", "key-0123\x00456789", "key\r\nX-Evil: 1"]
)
def test_a_key_that_cannot_go_in_a_header_is_refused_naming_the_field_not_the_value(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

    with pytest.raises(ValueError, match=r"^api_key: ") as caught:
        ClientConfig(base_url=server.api_url, api_key=key)
    assert key not in str(caught.value) and repr(key)[1:-1] not in str(caught.value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT",
        json.dumps({"conn_type": "msghistory", "host": server.api_url, "password": key}),
    )
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and "api_key" in message and key not in message
    assert server.seen == []  # refused before any request
