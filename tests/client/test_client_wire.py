"""ExportClient against the emulator over loopback HTTP: every endpoint, errors, retries, auth, laziness."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from airflow_provider_msghistory.client.api import ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    ApiValidationError,
    AuthenticationError,
    ExportExpiredError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_msghistory.client.history import HistoryPage
from airflow_provider_msghistory.client.models import ExportStatus
from airflow_provider_msghistory.client.pacing import MAX_HOLD

from .conftest import FAST, Sleeps, api_calls, async_client, config_for, log_entries

MakeClient = Callable[..., ExportClient]
START, END = "2025-01-01T00:00:00+01:00", "2025-01-01T23:59:59.999+01:00"
END_EXCLUDED = "2025-01-02T00:00:00+01:00"  # the client takes half-open windows: END is the last ms sent
EVER = ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z")
HISTORY = "/messages/history"
EXPORTS = "/exports"


# --- endpoints A, C, D: submissions ----------------------------------------------------------------------
def test_message_history_export_sends_the_documented_body(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    export_id = client.submit_message_history_export(
        START, END_EXCLUDED, sender="QlaraShop", recipient="+393331234567"
    )
    assert isinstance(export_id, str) and export_id
    (call,) = api_calls(emu, "POST", "/messages/history/export")
    assert call.status == 202 and call.had_auth
    assert call.json == {
        "startDateTime": "2025-01-01T00:00:00.000+01:00",
        "endDateTime": "2025-01-01T23:59:59.999+01:00",
        "sender": "QlaraShop",
        "recipient": "+393331234567",
    }


def test_contacts_and_delivery_reports_exports(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    ids = [
        client.submit_contacts_export(),
        client.submit_contacts_export(list_ids=[1, 2]),
        client.submit_contacts_export(contact_ids=["3"]),
        client.submit_delivery_reports_export(campaign_id=1001),
        client.submit_delivery_reports_export(start=START, end=END_EXCLUDED),
    ]
    assert len(set(ids)) == 5
    bodies = [c.json for c in api_calls(emu, "POST", "/exports/contacts")]
    assert bodies == [{}, {"listIds": [1, 2]}, {"contactIds": ["3"]}]
    bodies = [c.json for c in api_calls(emu, "POST", "/exports/delivery-reports")]
    assert bodies == [
        {"campaignId": "1001"},
        {"startDateTime": "2025-01-01T00:00:00.000+01:00", "endDateTime": "2025-01-01T23:59:59.999+01:00"},
    ]


def test_invalid_input_sends_nothing(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    with pytest.raises(ValueError, match=r"^start:"):
        client.submit_message_history_export("2025-01-01", END)
    with pytest.raises(ValueError, match=r"^campaign_id:"):
        client.submit_delivery_reports_export()
    with pytest.raises(ValueError, match=r"^channel:"):
        client.iter_history_pages("FAX", *EVER)
    with pytest.raises(ValueError, match=r"^end:"):
        client.iter_history_pages("SMS", END, START)
    with pytest.raises(ValueError, match=r"^export_id:"):
        client.get_download_link("")
    assert log_entries(emu) == []


def test_server_side_400_is_a_validation_error_and_not_retried(
    emu: Any, make_client: MakeClient, sleeps: Sleeps
) -> None:
    client = make_client(emu)
    with pytest.raises(ApiValidationError) as info:
        client.submit_contacts_export(list_ids=["not-a-number"])
    assert info.value.status_code == 400
    assert "malformed" in info.value.message  # the server's own words
    assert len(api_calls(emu, "POST", "/exports/contacts")) == 1
    assert sleeps.waits == []


# --- E: list, iterate, find ---
def test_list_iterate_and_find_exports(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    ids = [client.submit_contacts_export() for _ in range(7)]
    newest_first = list(reversed(ids))
    assert [j.export_id for j in client.list_exports(0, limit=3)] == newest_first[:3]
    assert [j.export_id for j in client.list_exports(2, limit=3)] == newest_first[6:]
    jobs = list(client.iter_exports(page_size=3))
    assert [j.export_id for j in jobs] == newest_first
    assert all(j.status is ExportStatus.PENDING and not j.ready for j in jobs)
    assert {j.kind for j in jobs} == {"CONTACTS"}

    before = len(api_calls(emu, "GET", EXPORTS))
    job, page = client.find_export(ids[0], page_size=3)  # the oldest: last page
    assert job is not None and job.export_id == ids[0] and page == 2
    assert len(api_calls(emu, "GET", EXPORTS)) - before == 3

    before = len(api_calls(emu, "GET", EXPORTS))
    job, page = client.find_export(ids[0], start_page=page, page_size=3)  # with the hint: pages 1, 2
    assert job is not None and page == 2
    assert len(api_calls(emu, "GET", EXPORTS)) - before == 2

    assert client.find_export("exp_nope", page_size=3) == (None, 0)
    with pytest.raises(NotFoundError):
        client.get_export("exp_nope")


def test_an_async_scan_reading_pages_together_finds_what_a_page_by_page_scan_finds(
    emu: Any, make_client: MakeClient, sleeps: Sleeps
) -> None:
    client = make_client(emu)
    ids = [client.submit_contacts_export() for _ in range(20)]  # 7 pages of 3, the oldest on page 6
    wanted = {export_id: 0 for export_id in ids[::4]} | {"exp_nope": 2}
    expected = {e: client.find_export(e, page_size=3) for e in wanted}
    before = len(api_calls(emu, "GET", EXPORTS))

    async def scan() -> dict[str, Any]:
        async with async_client(emu, sleeps) as aclient:
            return await aclient.find_exports(wanted, page_size=3)

    found = asyncio.run(scan())
    assert {e: (job.export_id if job else None, page) for e, (job, page) in found.items()} == {
        e: (job.export_id if job else None, page) for e, (job, page) in expected.items()
    }
    pages = [int(r.query.get("page", 0)) for r in api_calls(emu, "GET", EXPORTS)[before:]]
    # Each page read once; the read-ahead of the search for the missing id may pass the end (7 pages) by a
    # few pages, fewer than the pages it needed.
    assert len(pages) == len(set(pages)) and set(range(7)) <= set(pages) and max(pages) < 7 + 4, pages


def test_find_export_falls_back_to_earlier_pages(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    ids = [client.submit_contacts_export() for _ in range(4)]
    job, page = client.find_export(ids[-1], start_page=5, page_size=2)  # a stale hint past the end
    assert job is not None and job.export_id == ids[-1] and page == 0


def test_get_export_follows_the_lifecycle(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    export_id = client.submit_contacts_export()
    assert client.get_export(export_id).status is ExportStatus.PENDING
    emu.complete_export(export_id)
    job = client.get_export(export_id)
    assert job.status is ExportStatus.COMPLETED and job.available and job.ready
    assert job.created_at and job.completed_at
    emu.expire_link(export_id)
    job = client.get_export(export_id)
    assert job.status is ExportStatus.EXPIRED and not job.ready
    failed_id = client.submit_contacts_export()
    emu.fail_export(failed_id)
    assert client.get_export(failed_id).status is ExportStatus.FAILED


# --- F, G and the download ---------------------------------------------------------------------------------
def test_download_link_streams_the_file_without_credentials(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    export_id = client.submit_contacts_export()
    emu.complete_export(export_id)
    link = client.get_download_link(export_id)
    assert link.export_id == export_id and link.expires_at is not None and link.expires_at.tzinfo
    assert "signature" not in repr(link) and "?<redacted>" in repr(link)
    with client.open_download(link.url) as response:
        assert response.status_code == 200
        body = b"".join(response.iter_bytes(7))
    assert body == emu.export_csv(export_id)
    with client.open_download(link.url, offset=10) as response:
        assert response.status_code == 206
        assert response.headers["Content-Range"].startswith("bytes 10-")
        assert b"".join(response.iter_bytes()) == body[10:]
    storage = log_entries(emu, "storage")
    assert len(storage) == 2 and not any(e.had_auth for e in storage)
    assert storage[1].headers.get("Range") == "bytes=10-"
    assert all(e.had_auth for e in log_entries(emu, "api"))


def test_link_of_pending_or_expired_export_is_export_expired_error(
    emu: Any, make_client: MakeClient, sleeps: Sleeps
) -> None:
    client = make_client(emu)
    export_id = client.submit_contacts_export()
    with pytest.raises(ExportExpiredError, match="not available"):
        client.get_download_link(export_id)
    emu.complete_export(export_id)
    emu.expire_link(export_id)
    with pytest.raises(ExportExpiredError, match="expired") as info:
        client.get_download_link(export_id)
    assert info.value.status_code == 400 and info.value.endpoint == "get_download_link"
    assert sleeps.waits == []  # 400 is final


def test_unknown_export_link_is_not_found(emu: Any, make_client: MakeClient) -> None:
    with pytest.raises(NotFoundError) as info:
        make_client(emu).get_download_link("exp_does_not_exist")
    assert info.value.status_code == 404 and "not found" in info.value.message


def test_regenerate_makes_an_expired_export_downloadable_again(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    export_id = client.submit_contacts_export()
    emu.complete_export(export_id)
    old_url = client.get_download_link(export_id).url
    emu.expire_link(export_id)
    with client.open_download(old_url) as response:
        assert response.status_code == 403
    client.regenerate_download_link(export_id)
    emu.complete_export(export_id)
    assert client.get_export(export_id).ready
    with client.open_download(client.get_download_link(export_id).url) as response:
        assert response.status_code == 200
        assert b"".join(response.iter_bytes()) == emu.export_csv(export_id)


# --- B: message history ---
def messages_of(pages: Iterable[HistoryPage]) -> list[dict[str, Any]]:
    return [message for page in pages for message in page.messages]


def test_history_is_lazy_and_paged_in_order(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    everything = messages_of(client.iter_history_pages("SMS", *EVER, page_size=1000))
    assert len(everything) > 25, "the emulator should hold enough SMS for paging"
    assert {m["channel"] for m in everything} == {"SMS"}
    before = len(api_calls(emu, "GET", HISTORY))

    pages = client.iter_history_pages("SMS", *EVER, page_size=10)
    assert len(api_calls(emu, "GET", HISTORY)) == before  # nothing fetched yet
    first_15 = list(itertools.islice((m for page in pages for m in page.messages), 15))
    assert first_15 == everything[:15]
    assert len(api_calls(emu, "GET", HISTORY)) - before == 2  # pages 0 and 1 only

    before = len(api_calls(emu, "GET", HISTORY))
    paged = messages_of(client.iter_history_pages("SMS", *EVER, page_size=10))
    assert paged == everything
    calls = api_calls(emu, "GET", HISTORY)[before:]
    assert [int(c.query["page"]) for c in calls] == list(range(len(calls)))
    assert calls[0].query["from"] == "2000-01-01T00:00:00.000+00:00"
    assert calls[0].query["channel"] == "SMS" and calls[0].query["limit"] == "10"


def test_history_status_filter(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    delivered = messages_of(client.iter_history_pages("whatsapp", *EVER, status="delivered", page_size=500))
    assert delivered and {m["deliveryStatus"] for m in delivered} == {"DELIVERED"}
    assert api_calls(emu, "GET", HISTORY)[-1].query["status"] == "DELIVERED"


# --- tolerance contract -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape",
    [
        {"id_field": "id"},
        {"id_field": "id", "id_type": "int"},
        {"id_type": "int"},
        {"url_field": "url"},
        {"url_field": "downloadLink", "expiry_field": "expiration"},
        {"expiry_field": None},
        {"export_list_wrap": None},
        {"export_list_wrap": "items"},
        {"export_list_wrap": "data"},
        {"status_case": "lower", "pending_status": "QUEUED", "completed_status": "SUCCEEDED"},
        {"status_case": "title", "pending_status": "IN_PROGRESS"},
        {"pending_status": "RUNNING"},
    ],
)
def test_export_response_variants(emu: Any, make_client: MakeClient, shape: dict[str, Any]) -> None:
    emu.set_shape(**shape)
    client = make_client(emu)
    export_id = client.submit_contacts_export()
    assert isinstance(export_id, str)
    job = client.get_export(export_id)
    assert job.export_id == export_id and job.status is ExportStatus.PENDING and not job.ready
    emu.complete_export(export_id)
    job = client.get_export(export_id)
    assert job.status is ExportStatus.COMPLETED and job.ready
    link = client.get_download_link(export_id)
    assert (link.expires_at is None) == (shape.get("expiry_field", "expiresAt") is None)
    with client.open_download(link.url) as response:
        assert b"".join(response.iter_bytes()) == emu.export_csv(export_id)
    client.regenerate_download_link(export_id)


@pytest.mark.parametrize("failed", ["FAILED", "ERROR", "CANCELLED"])
@pytest.mark.parametrize("case", ["upper", "lower"])
def test_failure_status_variants(emu: Any, make_client: MakeClient, failed: str, case: str) -> None:
    emu.set_shape(failed_status=failed, status_case=case)
    client = make_client(emu)
    export_id = client.submit_contacts_export()
    emu.fail_export(export_id)
    job = client.get_export(export_id)
    assert job.status is ExportStatus.FAILED and job.raw_status.upper() == failed


@pytest.mark.parametrize("wrap", [None, "content", "items", "data", "messages"])
def test_history_wrap_variants(emu: Any, make_client: MakeClient, wrap: str | None) -> None:
    emu.set_shape(history_wrap=wrap)
    client = make_client(emu)
    messages = messages_of(client.iter_history_pages("RCS", *EVER, page_size=7))
    assert messages and all("deliveryStatus" in m for m in messages)


@pytest.mark.parametrize("style", ["default", "alt", "text", "empty"])
def test_error_body_variants_keep_the_servers_message(emu: Any, make_client: MakeClient, style: str) -> None:
    emu.set_shape(error_body=style)
    with pytest.raises(NotFoundError) as info:
        make_client(emu).get_download_link("exp_missing")
    if style == "empty":
        assert info.value.message == "no message in the response"
    else:
        assert "exp_missing not found" in info.value.message


def test_unknown_status_is_logged_and_treated_as_working(
    emu: Any, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect

    jobs = QlaraDialect(config_for(emu)).parse_export_list({"items": [{"id": 7, "status": "Archiving"}]})
    assert jobs[0].export_id == "7" and jobs[0].status is ExportStatus.UNKNOWN and not jobs[0].ready
    assert "Archiving" in caplog.text


# --- auth ---------------------------------------------------------------------------------------------------
def test_wrong_api_key_is_authentication_error_without_the_key(
    emu: Any, make_client: MakeClient, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(emu, api_key="wrong-key-123456")
    with pytest.raises(AuthenticationError) as info:
        client.list_exports()
    assert info.value.status_code == 401 and "authentication" in info.value.message.lower()
    assert len(log_entries(emu)) == 1 and sleeps.waits == []
    for text in (str(info.value), repr(info.value), repr(client), repr(client.config), caplog.text):
        assert "wrong-key-123456" not in text


def test_ip_not_whitelisted_is_authentication_error(emu: Any, make_client: MakeClient) -> None:
    emu.faults.script("list", [403])
    with pytest.raises(AuthenticationError) as info:
        make_client(emu).check_connection()
    assert info.value.status_code == 403


def test_basic_auth(msghistory_emulator_factory: Callable[..., Any], make_client: MakeClient) -> None:
    emulator = msghistory_emulator_factory(username="partner", password="s3cret-pw")
    client = make_client(emulator, api_key=None, username="partner", password="s3cret-pw")
    client.check_connection()
    call = log_entries(emulator)[-1]
    assert call.had_auth and call.headers.get("Authorization") == "***"
    bad = make_client(emulator, api_key=None, username="partner", password="nope-nope")
    with pytest.raises(AuthenticationError) as info:
        bad.check_connection()
    assert "nope-nope" not in str(info.value)
    token = base64.b64encode(b"partner:nope-nope").decode()
    assert token not in str(info.value) and "nope-nope" not in repr(bad.config)


# --- retries ------------------------------------------------------------------------------------------------
def test_429_waits_the_body_retry_after(emu: Any, make_client: MakeClient, sleeps: Sleeps) -> None:
    emu.faults.retry_after = 12
    emu.faults.script("list", [429])
    jobs = make_client(emu).list_exports()
    assert jobs == []
    assert sleeps.waits == [12.0]
    assert [e.status for e in api_calls(emu, "GET", EXPORTS)] == [429, 200]


def test_429_prefers_the_retry_after_header(emu: Any, make_client: MakeClient, sleeps: Sleeps) -> None:
    emu.set_shape(retry_after_header=True, error_body="empty")  # the header alone says it
    emu.faults.retry_after = 3
    emu.faults.script("submit", [429])
    make_client(emu).submit_contacts_export()
    assert sleeps.waits == [3.0]
    assert [e.status for e in api_calls(emu, "POST", "/exports/contacts")] == [429, 202]


def test_429_until_the_attempts_run_out(emu: Any, make_client: MakeClient, sleeps: Sleeps) -> None:
    emu.faults.script("list", [429] * 5)
    with pytest.raises(RateLimitedError) as info:
        make_client(emu, max_attempts=3).list_exports()
    assert info.value.retry_after == 1.0 and "Rate limit exceeded" in info.value.message
    assert len(sleeps.waits) == 2 and len(api_calls(emu, "GET", EXPORTS)) == 3


def test_429_longer_than_the_time_budget_is_not_waited(
    emu: Any, make_client: MakeClient, sleeps: Sleeps
) -> None:
    emu.faults.retry_after = 600
    emu.faults.script("list", [429])
    with pytest.raises(RateLimitedError) as info:
        make_client(emu, max_retry_time=60).list_exports()
    assert info.value.retry_after == MAX_HOLD and sleeps.waits == []  # the server's word, capped


@pytest.mark.parametrize("fault", [500, 502, 503, 504, "reset"])
def test_reads_are_retried_then_succeed(
    emu: Any, make_client: MakeClient, sleeps: Sleeps, fault: int | str
) -> None:
    emu.faults.script("list", [fault, fault])
    assert make_client(emu).list_exports() == []
    assert len(sleeps.waits) == 2 and all(0 < w <= FAST["backoff_max"] for w in sleeps.waits)
    assert len(api_calls(emu, "GET", EXPORTS)) == 3


def test_server_errors_until_the_attempts_run_out(emu: Any, make_client: MakeClient, sleeps: Sleeps) -> None:
    emu.faults.script("link", [500] * 6)
    with pytest.raises(ServerError) as info:
        make_client(emu, max_attempts=4).get_download_link("exp_x")
    assert info.value.status_code == 500 and "retry later" in info.value.message
    assert len(api_calls(emu, "GET", "/exports/exp_x")) == 4 and len(sleeps.waits) == 3


@pytest.mark.parametrize("fault", [429, 503])
def test_submit_refused_by_the_server_is_retried_once_created(
    emu: Any, make_client: MakeClient, fault: int
) -> None:
    client = make_client(emu)
    emu.faults.script("submit", [fault])
    export_id = client.submit_contacts_export()
    assert [j.export_id for j in client.list_exports()] == [export_id]


@pytest.mark.parametrize(
    ("fault", "error"), [(500, ServerError), (502, ServerError), ("reset", ApiConnectionError)]
)
def test_submit_is_not_blindly_retried_when_it_may_have_been_processed(
    emu: Any, make_client: MakeClient, sleeps: Sleeps, fault: int | str, error: type
) -> None:
    emu.faults.script("submit", [fault])
    with pytest.raises(error):
        make_client(emu).submit_message_history_export(START, END)
    assert len(api_calls(emu, "POST", "/messages/history/export")) == 1 and sleeps.waits == []


def test_read_timeout_retries_reads_but_not_submissions(
    emu: Any, make_client: MakeClient, sleeps: Sleeps
) -> None:
    client = make_client(emu, read_timeout=0.2)
    emu.faults.script("list", ["slow:1"])
    assert client.list_exports() == []
    assert len(sleeps.waits) == 1
    emu.faults.script("submit", ["slow:1"])
    with pytest.raises(ApiConnectionError, match=r"(?i)timed? ?out"):
        client.submit_contacts_export()
    assert len(sleeps.waits) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_within_bounds_then_reported(sleeps: Sleeps) -> None:
    config = ClientConfig(
        f"http://127.0.0.1:{_closed_port()}/api", api_key="k-SECRET-1", max_attempts=3, **FAST
    )
    with (
        ExportClient(config, sleep=sleeps, clock=sleeps.clock) as client,
        pytest.raises(ApiConnectionError) as info,
    ):
        client.submit_contacts_export()  # nothing reached a server: safe to retry even a submission
    assert len(sleeps.waits) == 2 and "after 3 attempt(s)" in str(info.value)
    assert "k-SECRET-1" not in str(info.value)


def test_total_retry_time_is_bounded(emu: Any, make_client: MakeClient, sleeps: Sleeps) -> None:
    emu.faults.retry_after = 4
    emu.faults.script("list", [429] * 10)
    with pytest.raises(RateLimitedError):
        make_client(emu, max_attempts=10, max_retry_time=10).list_exports()
    assert sleeps.waits == [4.0, 4.0]  # a third wait would pass the 10 s budget


def test_downloads_never_carry_credentials_even_to_the_api_host(emu: Any) -> None:
    """A pre-signed URL authorises itself: no key is attached, whatever host it names."""
    client = ExportClient(config_for(emu))
    try:
        url = emu.base_url + "/partner-gateway/v1/exports"
        with client.open_download(url) as response:
            assert response.status_code == 401
    finally:
        client.close()
    assert not log_entries(emu)[-1].had_auth


def test_download_retries_a_reset_and_reports_a_truncated_body(emu: Any, make_client: MakeClient) -> None:
    client = make_client(emu)
    export_id = emu.create_export()
    url = client.get_download_link(export_id).url
    emu.faults.script("download", ["reset", 503])
    with client.open_download(url) as response:
        assert response.status_code == 200
        assert b"".join(response.iter_bytes()) == emu.export_csv(export_id)
    emu.faults.script("download", ["truncate:100"])
    received = bytearray()
    with (
        client.open_download(url) as response,
        pytest.raises(ApiConnectionError, match="interrupted after 100"),
    ):
        for chunk in response.iter_bytes(64):
            received += chunk
    assert bytes(received) == emu.export_csv(export_id)[:100]
    assert not any(e.had_auth for e in log_entries(emu, "storage"))
