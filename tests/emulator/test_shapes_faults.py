"""Response-shape variants, fault injection and the rate limiter, over real HTTP."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_msghistory.emulator import Emulator

from .conftest import Api

DAY2 = ("2025-01-02T00:00:00.000Z", "2025-01-02T23:59:59.999Z")
HISTORY = {"channel": "SMS", "from": DAY2[0], "to": DAY2[1], "limit": 3}


def _submit(api: Api, id_field: str = "exportId") -> Any:
    response = api.post("/messages/history/export", json={"startDateTime": DAY2[0], "endDateTime": DAY2[1]})
    assert response.status_code == 202
    return response.json()[id_field]


def test_id_field_and_integer_ids(emu: Emulator, api: Api) -> None:
    emu.set_shape(id_field="id", id_type="int")
    first, second = _submit(api, "id"), _submit(api, "id")
    assert isinstance(first, int) and second == first + 1
    listed = api.get("/exports").json()["content"]
    assert [e["id"] for e in listed] == [second, first] and "exportId" not in listed[0]
    time.sleep(0.15)
    link = api.get(f"/exports/{first}").json()
    assert link["id"] == first
    assert requests.get(link["downloadUrl"], timeout=5).content == emu.export_csv(first)


@pytest.mark.parametrize(
    ("url_field", "expiry_field"),
    [("url", "expiration"), ("downloadLink", None), ("downloadUrl", "expiresAt")],
)
def test_link_field_variants(emu: Emulator, api: Api, url_field: str, expiry_field: str | None) -> None:
    emu.set_shape(url_field=url_field, expiry_field=expiry_field)
    export_id = _submit(api)
    api.wait_available(export_id)
    body = api.get(f"/exports/{export_id}").json()
    expected = {"exportId", url_field} | ({expiry_field} if expiry_field else set())
    assert set(body) == expected
    assert requests.get(body[url_field], timeout=5).status_code == 200


@pytest.mark.parametrize("wrap", [None, "content", "items", "data"])
def test_export_list_wrapping(emu: Emulator, api: Api, wrap: str | None) -> None:
    emu.set_shape(export_list_wrap=wrap)
    export_id = _submit(api)
    body = api.get("/exports").json()
    entries = body if wrap is None else body[wrap]
    assert [e["exportId"] for e in entries] == [export_id]


@pytest.mark.parametrize("wrap", [None, "content", "items", "data", "messages"])
def test_history_list_wrapping(emu: Emulator, api: Api, wrap: str | None) -> None:
    emu.set_shape(history_wrap=wrap)
    body = api.get("/messages/history", params=HISTORY).json()
    items = body if wrap is None else body[wrap]
    assert len(items) == 3 and items[0]["sendDate"] == DAY2[0]


@pytest.mark.parametrize(
    ("changes", "pending", "completed"),
    [
        ({"status_case": "lower"}, "pending", "completed"),
        ({"pending_status": "QUEUED", "completed_status": "SUCCEEDED"}, "QUEUED", "SUCCEEDED"),
        ({"pending_status": "IN_PROGRESS", "status_case": "title"}, "In_Progress", "Completed"),
        ({"pending_status": "RUNNING"}, "RUNNING", "COMPLETED"),
    ],
)
def test_status_spellings(
    emu: Emulator, api: Api, changes: dict[str, str], pending: str, completed: str
) -> None:
    emu.set_shape(**changes)
    export_id = _submit(api)
    assert api.entry(export_id)["status"] == pending
    assert api.wait_available(export_id)["status"] == completed


@pytest.mark.parametrize("failed", ["ERROR", "CANCELLED", "FAILED"])
def test_failed_status_spellings(emu: Emulator, api: Api, failed: str) -> None:
    emu.set_shape(failed_status=failed)
    export_id = _submit(api)
    emu.fail_export(export_id)
    assert api.entry(export_id)["status"] == failed


def test_error_body_variants(emu: Emulator, api: Api) -> None:
    emu.set_shape(error_body="alt")
    assert api.get("/exports/nope").json() == {"code": 404, "explain": "Export nope not found"}
    emu.set_shape(error_body="empty")
    empty = api.get("/exports/nope")
    assert empty.status_code == 404 and empty.content == b""
    emu.set_shape(error_body="text")
    text = api.get("/exports/nope")
    assert text.headers["Content-Type"].startswith("text/plain") and b"not found" in text.content
    emu.set_shape()
    assert set(api.get("/exports/nope").json()) == {"timestamp", "status", "error", "message", "path"}


def test_unknown_shape_options_are_rejected(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="id_field"):
        emu.set_shape(id_field="identifier")
    with pytest.raises(ValueError, match="unknown shape"):
        emu.set_shape(colour="blue")


def test_scripted_faults_are_served_in_order_then_normal_service_resumes(emu: Emulator, api: Api) -> None:
    emu.faults.script("list", [500, 503, "reset", 429, "ok"])
    assert api.get("/exports").status_code == 500
    assert api.get("/exports").status_code == 503
    with pytest.raises(requests.ConnectionError):
        api.get("/exports")
    limited = api.get("/exports")
    assert limited.status_code == 429 and limited.json()["retryAfter"] == emu.faults.retry_after
    assert api.get("/exports").status_code == 200
    assert api.get("/exports").status_code == 200
    assert [r.status for r in emu.request_log] == [500, 503, 0, 429, 200, 200]
    assert emu.faults.injected == {"500": 1, "503": 1, "reset": 1, "429": 1}
    assert emu.request_log[2].fault == "reset"


def test_slow_fault_delays_the_answer(emu: Emulator, api: Api) -> None:
    emu.faults.script("history", ["slow:0.4"])
    began = time.monotonic()
    assert api.get("/messages/history", params=HISTORY).status_code == 200
    assert time.monotonic() - began >= 0.4
    with pytest.raises(requests.Timeout):
        emu.faults.script("history", ["slow:1"])
        api.session.get(api.url("/messages/history"), params=HISTORY, timeout=0.3)


def test_fail_fault_makes_the_submitted_export_fail(emu: Emulator, api: Api) -> None:
    emu.faults.script("submit", ["fail"])
    failing, fine = _submit(api), _submit(api)
    time.sleep(0.15)
    assert api.entry(failing)["status"] == "FAILED"
    assert api.entry(fine)["status"] == "COMPLETED"


def test_expire_fault_hands_out_a_link_that_is_already_dead(emu: Emulator, api: Api) -> None:
    export_id = _submit(api)
    api.wait_available(export_id)
    emu.faults.script("link", ["expire"])
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    assert requests.get(url, timeout=5).status_code == 403
    assert api.entry(export_id)["status"] == "EXPIRED"


def test_truncated_download_closes_early_while_content_length_claims_the_full_size(
    emu: Emulator, api: Api
) -> None:
    export_id = _submit(api)
    api.wait_available(export_id)
    url = api.get(f"/exports/{export_id}").json()["downloadUrl"]
    emu.faults.script("download", ["truncate:100"])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=5)
    storage = emu.storage_base_url.removeprefix("http://")
    emu.faults.script("download", ["truncate:100"])
    conn = http.client.HTTPConnection(storage, timeout=5)
    conn.request("GET", url.removeprefix(emu.storage_base_url))
    response = conn.getresponse()
    assert int(response.getheader("Content-Length")) == len(emu.export_csv(export_id))
    with pytest.raises(http.client.IncompleteRead) as caught:
        response.read()
    assert len(caught.value.partial) == 100
    conn.close()
    assert requests.get(url, timeout=5).content == emu.export_csv(export_id)
    assert emu.faults.injected["truncate"] == 2


def test_fault_scripts_validate_their_input(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        emu.faults.script("nowhere", [500])
    with pytest.raises(ValueError, match="unknown fault"):
        emu.faults.script("list", ["explode"])
    with pytest.raises(ValueError, match="download"):
        emu.faults.script("list", ["truncate"])


def _statuses_under_random_faults(factory: Callable[..., Emulator], seed: int) -> list[int]:
    emu = factory(messages=50)
    emu.faults.random(seed, p_500=0.3, p_503=0.2, endpoints=["list"])
    api = Api(emu)
    statuses = [api.get("/exports").status_code for _ in range(40)]
    assert sum(emu.faults.injected.values()) == sum(s != 200 for s in statuses)
    assert api.get("/messages/history", params=HISTORY).status_code == 200  # other endpoints untouched
    return statuses


def test_random_faults_are_reproducible_from_the_seed(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    first = _statuses_under_random_faults(msghistory_emulator_factory, 7)
    again = _statuses_under_random_faults(msghistory_emulator_factory, 7)
    other = _statuses_under_random_faults(msghistory_emulator_factory, 8)
    assert first == again != other
    assert {500, 503, 200} == set(first)


def test_rate_limiter_answers_429_with_the_documented_body_and_headers(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(messages=50, rate_limit=(5, 3))
    api = Api(emu)
    answers = [api.get("/exports") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "2"]
    assert all(a.headers["X-RateLimit-Limit"] == "5" for a in answers)
    body = answers[-1].json()
    assert body == {
        "status": 429,
        "error": "Too Many Requests",
        "message": "Rate limit exceeded. Please retry after 1 seconds.",
        "retryAfter": 1,
    }
    assert "Retry-After" not in answers[-1].headers
    time.sleep(1.05)  # the burst window has passed; the minute still holds 3 of 5
    assert [api.get("/exports").status_code for _ in range(3)] == [200, 200, 429]
    minute = api.get("/exports")
    assert minute.status_code == 429 and minute.json()["retryAfter"] > 50
    emu.set_shape(retry_after_header=True)
    assert api.get("/exports").headers["Retry-After"] == str(api.get("/exports").json()["retryAfter"])


def test_rate_limit_is_per_key(msghistory_emulator_factory: Callable[..., Emulator]) -> None:
    emu = msghistory_emulator_factory(messages=50, rate_limit=(100, 2))
    url = Api(emu).url("/exports")
    keyed = [requests.get(url, headers={"X-Api-Key": emu.api_key}, timeout=5).status_code for _ in range(3)]
    basic = [requests.get(url, auth=("demo", "demo-password"), timeout=5).status_code for _ in range(2)]
    assert keyed == [200, 200, 429] and basic == [200, 200]


def test_latency_is_added_to_api_responses(msghistory_emulator_factory: Callable[..., Emulator]) -> None:
    emu = msghistory_emulator_factory(messages=50, latency=0.2)
    api = Api(emu)
    began = time.monotonic()
    api.get("/exports")
    assert time.monotonic() - began >= 0.2
