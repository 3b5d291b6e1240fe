"""Endpoints A-G, auth, pagination, inclusive bounds and strict datetimes, over real HTTP."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable

import pytest
import requests

from airflow_provider_msghistory.emulator import Emulator

from .conftest import V1, Api

DAY2 = ("2025-01-02T00:00:00.000Z", "2025-01-02T23:59:59.999Z")
ERROR_KEYS = {"timestamp", "status", "error", "message", "path"}


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_requests_without_valid_credentials_get_401_in_the_documented_error_shape(emu: Emulator) -> None:
    url = emu.base_url + V1 + "/exports"
    for headers in (
        {},
        {"X-Api-Key": "wrong"},
        {"Authorization": "Basic " + base64.b64encode(b"demo:x").decode()},
    ):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        body = response.json()
        assert set(body) == ERROR_KEYS
        assert body["status"] == 401
        assert body["path"] == "/api/partner-gateway/v1/exports"


def test_api_key_and_basic_auth_are_both_accepted(emu: Emulator) -> None:
    url = emu.base_url + V1 + "/exports"
    assert requests.get(url, headers={"X-Api-Key": "demo-key"}, timeout=5).status_code == 200
    assert requests.get(url, auth=("demo", "demo-password"), timeout=5).status_code == 200


def test_request_log_redacts_secrets_and_records_where_requests_went(emu: Emulator) -> None:
    url = emu.base_url + V1 + "/exports"
    requests.get(url, headers={"X-Api-Key": "demo-key"}, params={"page": "0"}, timeout=5)
    requests.get(url, auth=("demo", "demo-password"), timeout=5)
    requests.get(url, timeout=5)
    keyed, basic, anonymous = emu.request_log
    assert keyed.headers["X-Api-Key"] == "***" and keyed.had_auth and keyed.status == 200
    assert keyed.query == {"page": "0"} and keyed.server == "api" and keyed.port == emu.port
    assert basic.headers["Authorization"] == "***" and basic.had_auth
    assert not anonymous.had_auth and anonymous.status == 401
    assert "demo-key" not in repr(emu.request_log) and "demo-password" not in repr(emu.request_log)


def test_history_export_csv_has_stable_columns_and_only_api_messages_within_inclusive_bounds(
    emu: Emulator, api: Api
) -> None:
    export_id = api.submit_history(*DAY2)
    api.wait_available(export_id)
    link = api.get(f"/exports/{export_id}")
    assert link.status_code == 200
    url = link.json()["downloadUrl"]
    assert url.startswith(emu.storage_base_url + "/") and "signature=" in url and "expires=" in url
    download = requests.get(url, timeout=10)
    assert download.status_code == 200
    assert download.content == emu.export_csv(export_id)
    assert int(download.headers["Content-Length"]) == len(download.content)
    header = download.content.split(b"\n", 1)[0].decode()
    assert header.split(",")[:8] == [
        "messageId", "channel", "destination", "sender", "deliveryStatus", "deliveryStatusDescription",
        "sendDate", "deliveryDate",
    ]  # fmt: skip
    rows = _rows(download.content)
    sent = [r["sendDate"] for r in rows]
    assert sent[0] == "2025-01-02T00:00:00.000Z" and sent[-1] == "2025-01-02T23:59:59.999Z"
    assert all(DAY2[0] <= s <= DAY2[1] for s in sent)
    api_ids = {m.message_id for m in emu.dataset.messages if m.origin == "API"}
    assert {r["messageId"] for r in rows} <= api_ids
    assert rows == emu.expected_history(*DAY2)


def test_consecutive_daily_windows_neither_overlap_nor_leave_gaps(emu: Emulator, api: Api) -> None:
    day1 = api.submit_history("2025-01-01T00:00:00.000+00:00", "2025-01-01T23:59:59.999+00:00")
    day2 = api.submit_history(*DAY2)
    both = api.submit_history("2025-01-01T00:00:00.000+00:00", "2025-01-02T23:59:59.999+00:00")
    ids = {e: [r["messageId"] for r in _rows(emu.export_csv(e))] for e in (day1, day2, both)}
    assert not set(ids[day1]) & set(ids[day2])
    assert ids[day1] + ids[day2] == ids[both]
    # shifting the second window by 1 ms loses exactly the messages at midnight
    late = api.submit_history("2025-01-02T00:00:00.001Z", DAY2[1])
    lost = set(ids[day2]) - {r["messageId"] for r in _rows(emu.export_csv(late))}
    assert lost and all(m.send_ms % 86_400_000 == 0 for m in emu.dataset.messages if m.message_id in lost)


def test_offsets_are_honoured(emu: Emulator, api: Api) -> None:
    utc = api.submit_history(*DAY2)
    rome = api.submit_history("2025-01-02T01:00:00.000+01:00", "2025-01-03T00:59:59.999+01:00")
    assert emu.export_csv(utc) == emu.export_csv(rome)


def test_sender_and_recipient_filters(emu: Emulator, api: Api) -> None:
    everything = emu.expected_history("2025-01-01T00:00:00Z", "2025-01-31T23:59:59.999Z")
    sender, recipient = everything[0]["sender"], everything[0]["destination"]
    by_sender = api.submit_history("2025-01-01T00:00:00Z", "2025-01-31T23:59:59.999Z", sender=sender)
    by_recipient = api.submit_history("2025-01-01T00:00:00Z", "2025-01-31T23:59:59.999Z", recipient=recipient)
    sender_rows = _rows(emu.export_csv(by_sender))
    assert sender_rows and {r["sender"] for r in sender_rows} == {sender}
    assert len(sender_rows) < len(everything)
    recipient_rows = _rows(emu.export_csv(by_recipient))
    assert recipient_rows and {r["destination"] for r in recipient_rows} == {recipient}


@pytest.mark.parametrize(
    "bad",
    [
        "2025-01-02",
        "2025-01-02T00:00:00",
        "2025-01-02T00:00:00.000",
        "2025-01-02 00:00:00Z",
        "2025-01-02T00:00:00+0100",
        "2025-13-02T00:00:00Z",
        "yesterday",
        12345,
    ],
)
def test_submit_rejects_datetimes_without_offset_or_unparseable(api: Api, bad: object) -> None:
    response = api.post("/messages/history/export", json={"startDateTime": bad, "endDateTime": DAY2[1]})
    assert response.status_code == 400
    assert "startDateTime" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"startDateTime": DAY2[0]},
        {"endDateTime": DAY2[1]},
        {"startDateTime": DAY2[1], "endDateTime": DAY2[0]},
    ],
)
def test_submit_rejects_missing_or_reversed_bounds(api: Api, body: dict[str, str]) -> None:
    assert api.post("/messages/history/export", json=body).status_code == 400


def test_submit_rejects_a_malformed_body(api: Api) -> None:
    assert api.post("/messages/history/export", data=b"{not json").status_code == 400
    assert api.post("/messages/history/export", json=[1, 2]).status_code == 400


def test_history_list_pages_are_zero_based_with_default_limit_20_and_a_short_last_page(
    emu: Emulator, api: Api
) -> None:
    params = {"channel": "SMS", "from": "2025-01-01T00:00:00.000Z", "to": "2025-01-31T23:59:59.999Z"}
    expected = [m.message_id for m in emu.dataset.messages if m.channel == "SMS"]
    assert len(expected) > 40 and len(expected) % 20
    seen, page = [], 0
    while True:
        items = api.get("/messages/history", params={**params, "page": page}).json()
        assert isinstance(items, list)  # bare array by default
        seen += [i["messageId"] for i in items]
        if len(items) < 20:
            break
        page += 1
    assert seen == expected
    first = api.get("/messages/history", params={**params, "limit": 5}).json()
    assert [i["messageId"] for i in first] == expected[:5]
    assert {"customerMessageId", "deliveryStatus", "deliveryStatusDescription"} <= set(first[0])


def test_history_list_bounds_are_inclusive_and_status_filters(emu: Emulator, api: Api) -> None:
    at_midnight = {"channel": "RCS", "from": "2025-01-05T00:00:00.000Z", "to": "2025-01-05T00:00:00.000Z"}
    items = api.get("/messages/history", params=at_midnight).json()
    assert [i["sendDate"] for i in items] == ["2025-01-05T00:00:00.000Z"]
    last_ms = {"channel": "RCS", "from": "2025-01-05T23:59:59.999Z", "to": "2025-01-05T23:59:59.999Z"}
    assert [i["sendDate"] for i in api.get("/messages/history", params=last_ms).json()] == [
        "2025-01-05T23:59:59.999Z"
    ]
    month = {
        "channel": "WHATSAPP",
        "from": "2025-01-01T00:00:00Z",
        "to": "2025-02-01T00:00:00Z",
        "limit": 1000,
    }
    errors = api.get("/messages/history", params={**month, "status": "ERROR"}).json()
    assert errors and {i["deliveryStatus"] for i in errors} == {"ERROR"}
    expected = [m for m in emu.dataset.messages if m.channel == "WHATSAPP" and m.status == "ERROR"]
    assert len(errors) == len(expected)


def test_history_list_from_after_to_is_an_empty_list(api: Api) -> None:
    params = {"channel": "SMS", "from": "2025-01-03T00:00:00Z", "to": "2025-01-02T00:00:00Z"}
    response = api.get("/messages/history", params=params)
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize(
    "params",
    [
        {"from": DAY2[0], "to": DAY2[1]},
        {"channel": "FAX", "from": DAY2[0], "to": DAY2[1]},
        {"channel": "SMS", "from": "2025-01-02", "to": DAY2[1]},
        {"channel": "SMS", "from": DAY2[0], "to": "2025-01-02T23:59:59"},
        {"channel": "SMS", "to": DAY2[1]},
        {"channel": "SMS", "from": DAY2[0], "to": DAY2[1], "status": "LOST"},
        {"channel": "SMS", "from": DAY2[0], "to": DAY2[1], "page": "-1"},
        {"channel": "SMS", "from": DAY2[0], "to": DAY2[1], "limit": "x"},
    ],
)
def test_history_list_rejects_bad_parameters(api: Api, params: dict[str, str]) -> None:
    response = api.get("/messages/history", params=params)
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_an_unencoded_plus_in_the_query_is_a_space_and_therefore_rejected(emu: Emulator) -> None:
    url = emu.base_url + V1 + "/messages/history?channel=SMS&from=2025-01-02T00:00:00+00:00&to=" + DAY2[1]
    assert requests.get(url, headers={"X-Api-Key": "demo-key"}, timeout=5).status_code == 400


def test_export_list_is_newest_first_with_default_limit_10(api: Api) -> None:
    ids = [api.submit_history(*DAY2) for _ in range(12)]
    first = api.get("/exports").json()
    assert [e["exportId"] for e in first["content"]] == ids[::-1][:10]
    assert first["totalElements"] == 12 and first["totalPages"] == 2 and first["size"] == 10
    second = api.get("/exports", params={"page": 1}).json()
    assert [e["exportId"] for e in second["content"]] == ids[1::-1]
    entry = first["content"][0]
    assert entry["type"] == "MESSAGE_HISTORY" and entry["status"] == "PENDING"
    assert entry["isAvailableForDownload"] is False and entry["createdAt"].endswith("Z")


def test_contacts_export_scopes_by_lists_or_ids(emu: Emulator, api: Api) -> None:
    every = api.post("/exports/contacts", json={})
    by_list = api.post("/exports/contacts", json={"listIds": [3]})
    by_ids = api.post("/exports/contacts", json={"contactIds": [1, "2"]})
    assert {r.status_code for r in (every, by_list, by_ids)} == {202}
    all_rows = _rows(emu.export_csv(every.json()["exportId"]))
    assert len(all_rows) == len(emu.dataset.contacts)
    assert set(all_rows[0]) == {"contactId", "listIds", "phone", "firstName", "lastName", "email"}
    list_rows = _rows(emu.export_csv(by_list.json()["exportId"]))
    assert list_rows and all("3" in r["listIds"].split(";") for r in list_rows)
    assert [r["contactId"] for r in _rows(emu.export_csv(by_ids.json()["exportId"]))] == ["1", "2"]
    assert api.entry(every.json()["exportId"])["type"] == "CONTACTS"


@pytest.mark.parametrize("body", [{"listIds": "3"}, {"listIds": ["x"]}, {"contactIds": [1.5]}])
def test_contacts_export_rejects_malformed_ids(api: Api, body: dict[str, object]) -> None:
    assert api.post("/exports/contacts", json=body).status_code == 400


def test_delivery_reports_by_campaign_or_by_dates(emu: Emulator, api: Api) -> None:
    campaign = next(m.campaign_id for m in emu.dataset.messages if m.campaign_id is not None)
    by_campaign = api.post("/exports/delivery-reports", json={"campaignId": campaign})
    by_dates = api.post("/exports/delivery-reports", json={"startDateTime": DAY2[0], "endDateTime": DAY2[1]})
    assert by_campaign.status_code == by_dates.status_code == 202
    rows = _rows(emu.export_csv(by_campaign.json()["exportId"]))
    assert rows and {r["campaignId"] for r in rows} == {str(campaign)}
    expected = [m for m in emu.dataset.messages if m.campaign_id == campaign]
    assert len(rows) == len(expected)
    dated = _rows(emu.export_csv(by_dates.json()["exportId"]))
    assert dated and all(DAY2[0] <= r["sendDate"] <= DAY2[1] for r in dated)


@pytest.mark.parametrize(
    "body", [{}, {"startDateTime": DAY2[0]}, {"startDateTime": "2025-01-02", "endDateTime": DAY2[1]}]
)
def test_delivery_reports_reject_missing_scope_or_bad_dates(api: Api, body: dict[str, str]) -> None:
    assert api.post("/exports/delivery-reports", json=body).status_code == 400


def test_unknown_export_is_404_for_link_and_regenerate(api: Api) -> None:
    assert api.get("/exports/exp_nope").status_code == 404
    assert api.post("/exports/exp_nope").status_code == 404
    assert api.get("/no/such/endpoint").status_code == 404


def test_fixture_gives_a_running_emulator(msghistory_emulator: Emulator) -> None:
    response = requests.get(
        msghistory_emulator.base_url + V1 + "/exports",
        headers={"X-Api-Key": msghistory_emulator.api_key},
        timeout=5,
    )
    assert response.status_code == 200
    assert '"conn_type": "msghistory"' in msghistory_emulator.airflow_conn_json()


def test_factory_passes_options_and_emulators_are_independent(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    one = msghistory_emulator_factory(api_key="k1", messages=50)
    two = msghistory_emulator_factory(api_key="k2", messages=50, seed=2)
    assert one.port != two.port
    url = two.base_url + V1 + "/exports"
    assert requests.get(url, headers={"X-Api-Key": "k1"}, timeout=5).status_code == 401
    assert requests.get(url, headers={"X-Api-Key": "k2"}, timeout=5).status_code == 200
    assert [m.message_id for m in one.dataset.messages] != [m.message_id for m in two.dataset.messages]
