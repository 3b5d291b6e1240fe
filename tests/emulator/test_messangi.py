"""The Messangi emulator over real HTTP: login keys, report requests and their errors, /v3/mlog paging."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_msghistory.emulator import Emulator

Q1 = {"from": "2025-01-01T00:00:00.000Z", "to": "2025-03-31T23:59:59.999Z"}
REPORT = {"emails": ["ops@acme.example"], "sender": "reports@acme.example", "timezone": "GMT"}


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return msghistory_emulator_factory(vendor="messangi", messages=1500)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _login(emu: Emulator, password: str = "demo-password") -> requests.Response:
    body = {"username": "demo", "password": password}
    return requests.post(emu.base_url + "/kingslanding/login", json=body, timeout=5)


def _mlog(emu: Emulator, key: str = "demo-key", **params: Any) -> requests.Response:
    return requests.get(emu.base_url + "/v3/mlog", params=params, headers=_bearer(key), timeout=5)


def _export(emu: Emulator, params: dict[str, str], body: dict[str, Any]) -> requests.Response:
    url = emu.base_url + "/v3/mlog/export"
    return requests.post(url, params=params, json=body, headers=_bearer("demo-key"), timeout=5)


def test_connection_json(emu: Emulator) -> None:
    assert json.loads(emu.airflow_conn_json()) == {
        "conn_type": "msghistory",
        "host": emu.base_url,
        "password": "demo-key",
        "extra": {"vendor": "messangi"},
    }
    with_login = json.loads(emu.airflow_conn_json(login=True, report_sender="reports@acme.example"))
    assert with_login["login"] == "demo" and with_login["password"] == "demo-password"
    assert with_login["extra"] == {"vendor": "messangi", "report_sender": "reports@acme.example"}


def test_login_issues_an_expiring_key_in_the_authorization_header(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(vendor="messangi", messages=100, key_ttl=60)
    response = _login(emu)
    assert response.status_code == 200 and response.content == b""
    scheme, key = response.headers["authorization"].split(" ")
    assert scheme == "Bearer" and emu.logins == 1
    assert _mlog(emu, key, **Q1).status_code == 200
    emu.advance_clock(59)
    assert _mlog(emu, key, **Q1).status_code == 200  # a second left
    emu.advance_clock(1)
    expired = _mlog(emu, key, **Q1)
    assert expired.status_code == 401 and expired.json()["meta"]["explain"] == "The token has expired"
    assert _mlog(emu, "demo-key", **Q1).status_code == 200  # the static key does not expire
    assert _login(emu, "wrong").status_code == 401 and emu.logins == 1
    logged = [r for r in emu.request_log if r.path == "/kingslanding/login"]
    assert all(r.json["password"] == "***" for r in logged)
    assert "demo-password" not in repr(emu.request_log)


def test_expire_keys_helper_and_missing_or_wrong_keys(emu: Emulator) -> None:
    key = emu.login_key()
    assert _mlog(emu, key, **Q1).status_code == 200
    emu.expire_keys()
    assert _mlog(emu, key, **Q1).status_code == 401
    assert _mlog(emu, "nope", **Q1).json()["meta"]["explain"] == "Unauthorized"
    assert requests.get(emu.base_url + "/v3/mlog", params=Q1, timeout=5).status_code == 401


def test_accepted_report_requests_are_recorded(emu: Emulator) -> None:
    params = {**Q1, "channel": "S", "status": "SENT,EXPIRED"}
    response = _export(emu, params, {**REPORT, "reference": "q1"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"status": "ACCEPTED"}
    assert set(body["meta"]) == {"timestamp", "transactionId", "explain"}
    assert "ops@acme.example" in body["meta"]["explain"]
    (accepted,) = emu.report_requests
    assert accepted.transaction_id == body["meta"]["transactionId"]
    assert accepted.query == params and accepted.body["reference"] == "q1"
    assert accepted.records == len(
        emu.expected_records(Q1["from"], "2025-04-01T00:00:00Z", "S", "SENT,EXPIRED")
    )


@pytest.mark.parametrize(
    ("params", "body", "explain"),
    [
        (
            {"from": Q1["from"], "to": "2025-04-03T00:00:00.001Z"},
            REPORT,
            "The date range exceeds the allowed limit: 92",
        ),
        (Q1, {**REPORT, "sender": "someone@else.example"}, "The sender is not a valid sender of the space"),
        (Q1, {**REPORT, "emails": []}, "emails"),
        (Q1, {**REPORT, "timezone": "Europe/Rome"}, "timezone"),
        ({"from": Q1["from"]}, REPORT, "'to'"),
        ({"from": "2025-01-01T00:00:00+00:00", "to": Q1["to"]}, REPORT, "Zulu"),
        ({"from": Q1["to"], "to": Q1["from"]}, REPORT, "after"),
        ({**Q1, "channel": "SMS"}, REPORT, "channel"),
        ({**Q1, "status": "SENT, EXPIRED"}, REPORT, "status"),
    ],
)
def test_report_errors_carry_explain(
    emu: Emulator, params: dict[str, str], body: dict[str, Any], explain: str
) -> None:
    response = _export(emu, params, body)
    assert response.status_code == 400
    assert explain in response.json()["meta"]["explain"] and response.json()["data"] is None
    assert emu.report_requests == []


def test_92_days_exactly_is_accepted_and_too_big_is_a_knob(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(vendor="messangi", messages=1500, report_max_records=100)
    exactly = {"from": "2025-01-01T00:00:00.000Z", "to": "2025-04-03T00:00:00.000Z"}
    small = _export(emu, {**exactly, "channel": "P", "status": "OPENED"}, REPORT)
    assert small.status_code == 200
    big = _export(emu, exactly, REPORT)
    assert big.status_code == 400
    assert big.json()["meta"]["explain"] == "The size of the report is too big. Please contact support"


@pytest.mark.parametrize("channel", ["S", "E", "P", "W", "R"])
def test_mlog_pages_each_channel_exactly(emu: Emulator, channel: str) -> None:
    loaded, page = [], 0
    while True:
        body = _mlog(emu, channel=channel, page=page, size=30, **Q1).json()
        loaded += body["data"]
        assert body["page"]["number"] == page and body["page"]["size"] == 30
        if len(body["data"]) < 30:
            break
        page += 1
    expected = emu.expected_records(Q1["from"], "2025-04-01T00:00:00Z", channel)
    assert loaded == expected and len(expected) > 60
    assert body["page"]["totalElements"] == len(expected)
    assert set(expected[0]) == {
        "id", "channel", "direction", "sender", "recipient", "status", "statusDescription", "campaignId",
        "createdAt", "updatedAt",
    }  # fmt: skip


def test_mlog_boundary_records_and_to_inclusivity(
    emu: Emulator, msghistory_emulator_factory: Callable[..., Emulator]
) -> None:
    day = {"from": "2025-01-05T00:00:00.000Z", "to": "2025-01-06T00:00:00.000Z", "channel": "W", "size": 1000}
    inclusive = [r["createdAt"] for r in _mlog(emu, **day).json()["data"]]
    assert inclusive[0] == "2025-01-05T00:00:00.000Z" and inclusive[-1] == "2025-01-06T00:00:00.000Z"
    assert "2025-01-05T23:59:59.999Z" in inclusive
    exclusive_emu = msghistory_emulator_factory(vendor="messangi", messages=1500, to_inclusive=False)
    exclusive = [r["createdAt"] for r in _mlog(exclusive_emu, **day).json()["data"]]
    assert exclusive == inclusive[:-1]
    half_open = emu.expected_records("2025-01-05T00:00:00Z", "2025-01-06T00:00:00Z", "W")
    assert [r["createdAt"] for r in half_open] == exclusive


def test_mlog_size_and_range_limits(emu: Emulator) -> None:
    assert _mlog(emu, size=1000, **Q1).status_code == 200
    assert _mlog(emu, size=1001, **Q1).status_code == 400
    default = _mlog(emu, **Q1).json()
    assert default["page"]["size"] == 100 and len(default["data"]) == 100
    too_long = _mlog(emu, **{"from": "2025-01-01T00:00:00.000Z", "to": "2025-06-01T00:00:00.000Z"})
    assert too_long.json()["meta"]["explain"] == "The date range exceeds the allowed limit: 92"


def test_429_and_faults(msghistory_emulator_factory: Callable[..., Emulator]) -> None:
    emu = msghistory_emulator_factory(vendor="messangi", messages=100, rate_limit=(100, 1))
    assert _mlog(emu, **Q1).status_code == 200
    limited = _mlog(emu, **Q1)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    emu.set_rate_limit(None)
    emu.faults.script("mlog", [503])
    emu.faults.script("login", ["reset"])
    assert _mlog(emu, **Q1).status_code == 503 and _mlog(emu, **Q1).status_code == 200
    with pytest.raises(requests.ConnectionError):
        _login(emu)


def test_same_seed_same_records(msghistory_emulator_factory: Callable[..., Emulator]) -> None:
    first = msghistory_emulator_factory(vendor="messangi", messages=300, seed=3)
    second = msghistory_emulator_factory(vendor="messangi", messages=300, seed=3)
    window = ("2025-01-01T00:00:00Z", "2025-07-20T00:00:00Z")
    assert first.expected_records(*window) == second.expected_records(*window)
    assert {r["channel"] for r in first.expected_records(*window)} == {"S", "E", "P", "W", "R"}
