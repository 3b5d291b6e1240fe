"""HTTP errors say which connection, which request (method and URL, no secret) and what fixes them, over
real HTTP: the emulator, and a stdlib server standing for another web server on a wrong host or port."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hostile.server import API_PREFIX, HostileServer, reply
from triggers.helpers import conn_json

from airflow_provider_msghistory.client.errors import ApiError, AuthenticationError
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

ENV = "AIRFLOW_CONN_MSGHISTORY_DEFAULT"
DAY1, DAY2 = "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"


def test_a_wrong_key_names_the_connection_the_request_and_what_test_connection_says(
    msghistory_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "wrong-key-55555"
    monkeypatch.setenv(
        ENV, json.dumps({"conn_type": "msghistory", "host": msghistory_emulator.base_url, "password": key})
    )
    with pytest.raises(AuthenticationError) as info:
        MsgHistoryHook().get_client().list_exports()
    text = str(info.value)
    # what the connection test says, behind the connection and the request (no query string, no key)
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and message.startswith(
        "API key rejected (401): check the API key in the password field (or the login and password). "
        "Server said: "
    )
    assert text == (
        f"connection 'msghistory_default': list_exports: HTTP 401 on GET "
        f"{msghistory_emulator.base_url}/partner-gateway/v1/exports: {message}"
    )
    assert key not in text and "?" not in text


@pytest.mark.parametrize(("status", "method"), [(404, "POST"), (405, "POST")])
def test_another_server_on_the_host_or_port_is_named_by_its_url(
    monkeypatch: pytest.MonkeyPatch, status: int, method: str
) -> None:
    with HostileServer() as other:
        path = f"{API_PREFIX}/messages/history/export"
        if status == 405:
            other.route(path, reply(405, b"Method Not Allowed", {"Content-Type": "text/plain"}))
        monkeypatch.setenv(
            ENV,
            json.dumps({"conn_type": "msghistory", "host": other.api_url, "password": "k-0123456789"}),
        )
        with pytest.raises(ApiError) as info:
            MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)
    server_said = "no such route" if status == 404 else "Method Not Allowed"
    assert str(info.value) == (
        f"connection 'msghistory_default': submit_message_history_export: HTTP {status} on {method} "
        f"{other.base}{path}: If that URL is not the qlara API (another server answering on that host or "
        f"port), fix the connection's host. Server said: {server_said}"
    )


def test_8x8_forbidden_on_another_sub_account_names_sub_account_id(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = msghistory_emulator_factory(vendor="8x8")
    monkeypatch.setenv(ENV, conn_json(emulator, sub_account_id="someone_else_01"))
    with pytest.raises(AuthenticationError) as info:
        MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)
    text = str(info.value)
    assert text.startswith(
        f"connection 'msghistory_default': submit_export: HTTP 403 on POST {emulator.base_url}"
        "/api/v1/subaccounts/someone_else_01/messages/exports: "
    )
    assert text.endswith(
        "/api/v1/subaccounts/someone_else_01/messages/exports: Forbidden (403): the key may not read this "
        "sub-account's logs; check the connection's sub_account_id (8x8 code 1001: illegal sub-account) and "
        "the key's permissions in the Connect portal. Server said: Illegal sub-account 'someone_else_01'"
    )


@pytest.mark.parametrize("side", ["sync", "async"])
def test_an_unreachable_api_names_the_connection(monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    import asyncio
    import socket

    from airflow_provider_msghistory.client.errors import ApiConnectionError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = {"max_attempts": 1, "connect_timeout": 2}
    conn = {"conn_type": "msghistory", "host": f"http://127.0.0.1:{port}/api", "password": "k-0123456789"}
    monkeypatch.setenv(ENV, json.dumps({**conn, "extra": extra}))
    with pytest.raises(ApiConnectionError) as info:
        if side == "sync":
            MsgHistoryHook().get_client().list_exports()
        else:

            async def look() -> None:
                client = await MsgHistoryHook().aget_client()
                try:
                    await client.list_exports()
                finally:
                    await client.aclose()

            asyncio.run(look())
    assert str(info.value).startswith("connection 'msghistory_default': list_exports: ")
    assert "k-0123456789" not in str(info.value)
