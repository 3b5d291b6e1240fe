"""The connection check must be answered by the API itself: 8x8's reads a job that cannot exist, and only
the API's own 404 ("Invalid jobId", code 4018) proves the key and sub-account; any other server's 404 (a
web server's page, a gateway) fails it. Qlara's and Messangi's checks read a page whose shape is checked,
so a web server's 200 page fails them too."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hostile.server import HostileServer, reply

from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

KEY = "eight-key-4c2d9e0f1a"
CHECK = "/api/v1/subaccounts/acme_sms_01/messages/exports/connection-check"
HTML = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1>nginx</body></html>"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    with HostileServer() as hostile:
        conn = {"conn_type": "msghistory", "host": hostile.base, "password": KEY,
                "extra": {"vendor": "8x8", "sub_account_id": "acme_sms_01", "max_attempts": 1}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
        yield hostile


def test_the_apis_own_404_proves_the_connection(server: HostileServer) -> None:
    server.route(CHECK, reply(404, {"code": 4018, "message": "Invalid jobId", "errorId": "e1"}))
    ok, message = MsgHistoryHook().test_connection()
    assert ok, message
    assert server.seen[0].headers.get("Authorization") == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        pytest.param(reply(404, HTML, {"Content-Type": "text/html"}), "host", id="web-server-page"),
        pytest.param(reply(404, {"message": "Not Found", "status": 404}), "host", id="another-apis-404"),
        pytest.param(reply(404, b""), "host", id="empty-404"),
        pytest.param(
            reply(404, {"code": 1001, "message": "Sub-account not yours"}), "not yours", id="code-1001"
        ),
    ],
)
def test_any_other_404_fails_the_connection_test(server: HostileServer, answer: Any, says: str) -> None:
    server.route(CHECK, answer)
    ok, message = MsgHistoryHook().test_connection()
    assert not ok and says in message, message
    assert KEY not in message


@pytest.mark.parametrize(
    ("vendor", "path", "extra"),
    [
        pytest.param("qlara", "/api/partner-gateway/v1/exports", {}, id="qlara"),
        pytest.param("messangi", "/v3/mlog", {"report_emails": ["a@acme.example"]}, id="messangi"),
    ],
)
def test_a_web_servers_200_page_fails_the_connection_test(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, vendor: str, path: str, extra: dict[str, Any]
) -> None:
    host = server.api_url if vendor == "qlara" else server.base
    conn = {"conn_type": "msghistory", "host": host, "password": KEY,
            "extra": {"vendor": vendor, "max_attempts": 1, **extra}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
    server.route(path, reply(200, HTML.replace(b"404 Not Found", b"Welcome"), {"Content-Type": "text/html"}))
    ok, message = MsgHistoryHook().test_connection()
    assert server.seen, "the check never reached the server"
    assert not ok, message
