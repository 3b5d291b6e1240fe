"""MsgHistoryExportOperator on Messangi over HTTP: e-mailed reports split into 92-day pieces, one request per
channel, filters on the wire, the vendor's refusals as clear errors, retries that never mail twice."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException
from state_store import DictStateStore

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.messangi import MessangiDialect
from airflow_provider_msghistory.client.models import ExportRequest
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

from .conftest import RECIPIENTS, SENDER

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)


def airflow_has_task_state_store() -> bool:
    from airflow.providers.common.compat.sdk import ResumableJobMixin

    return ResumableJobMixin.__module__.startswith("airflow.sdk")


def operator(**kwargs: Any) -> MsgHistoryExportOperator:
    kwargs.setdefault("task_id", "email_report")
    kwargs.setdefault("export_type", "message_history")
    kwargs.setdefault("start_datetime", START.isoformat())
    kwargs.setdefault("end_datetime", (START + timedelta(days=30)).isoformat())
    return MsgHistoryExportOperator(**kwargs)


def zulu(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_zulu(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def test_a_200_day_window_becomes_3_requests_that_tile_it(
    make_emu: Callable[..., Any], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    emu = make_emu()
    end = START + timedelta(days=200)
    caplog.set_level(logging.INFO)
    result = operator(end_datetime=end.isoformat()).execute({})

    sent = emu.report_requests
    assert len(sent) == 3
    bounds = [(parse_zulu(r.query["from"]), parse_zulu(r.query["to"])) for r in sent]
    assert bounds[0][0] == START and bounds[-1][1] == end - MS  # the whole window, `to` inclusive
    for (_, previous_to), (next_from, _) in itertools.pairwise(bounds):
        assert next_from == previous_to + MS  # contiguous, no overlap, no gap
    assert all(to - frm < timedelta(days=92) for frm, to in bounds)
    # Every record of the window is in exactly one report.
    assert sum(r.records for r in sent) == len(emu.expected_records(START, end))

    assert result["delivery"] == "email" and result["status"] == "ACCEPTED"
    assert result["recipients"] == RECIPIENTS
    assert [(r["start"], r["end"], r["transaction_id"]) for r in result["requests"]] == [
        ((b[0]).isoformat(timespec="milliseconds"), b[1].isoformat(timespec="milliseconds"), r.transaction_id)
        for b, r in zip(bounds, sent, strict=True)
    ]
    assert result["export_id"] == ",".join(r.transaction_id for r in sent)
    assert all(r.body["emails"] == RECIPIENTS and r.body["sender"] == SENDER for r in sent)
    logged = caplog.text + capsys.readouterr().out  # Airflow 3 logs through structlog to stdout
    assert "arrive by e-mail at ops@acme.example, audit@acme.example" in logged


def test_several_channels_mean_one_request_per_channel_per_window(make_emu: Callable[..., Any]) -> None:
    emu = make_emu()
    end = START + timedelta(days=100)
    result = operator(end_datetime=end.isoformat(), filters={"channel": ["SMS", "W"]}).execute({})
    sent = [(r.query["from"], r.query["channel"]) for r in emu.report_requests]
    pieces = [zulu(START), zulu(START + timedelta(days=92))]
    assert sent == [(pieces[0], "S"), (pieces[0], "W"), (pieces[1], "S"), (pieces[1], "W")]
    assert [r["filters"]["channel"] for r in result["requests"]] == ["S", "W", "S", "W"]
    for channel in ("S", "W"):
        records = sum(r.records for r in emu.report_requests if r.query["channel"] == channel)
        assert records == len(emu.expected_records(START, end, channel))


def test_every_filter_reaches_the_wire_and_the_arguments_override_the_extras(
    make_emu: Callable[..., Any],
) -> None:
    emu = make_emu(report_senders=(SENDER, "other@acme.example"))
    operator(
        sender="ACME",
        recipient="+15550001",
        campaign_id="camp-7",
        filters={"channel": "E", "status": ["SENT", "EXPIRED"]},
        email_recipients="boss@acme.example",
        email_sender="other@acme.example",
    ).execute({})
    (sent,) = emu.report_requests
    assert {k: v for k, v in sent.query.items() if k not in ("from", "to")} == {
        "channel": "E",
        "status": "SENT,EXPIRED",
        "sender": "ACME",
        "recipient": "+15550001",
        "campaignId": "camp-7",
    }
    assert sent.body == {"emails": ["boss@acme.example"], "sender": "other@acme.example", "timezone": "GMT"}


def test_a_report_too_big_fails_at_once_naming_the_window(make_emu: Callable[..., Any]) -> None:
    emu = make_emu(report_max_records=10)
    with pytest.raises(AirflowFailException) as caught:
        operator().execute({})
    message = str(caught.value)
    assert "report 1 of 1 (2025-01-01T00:00:00.000+00:00 to 2025-01-30T23:59:59.999+00:00)" in message
    assert "too big" in message and "narrower windows" in message
    assert "MsgHistoryMessagesToStorageOperator" in message
    assert emu.report_requests == []


def test_a_bad_sender_fails_at_once_naming_email_sender(make_emu: Callable[..., Any]) -> None:
    make_emu()
    with pytest.raises(AirflowFailException, match=r"email_sender: Messangi refused the report's sender"):
        operator(email_sender="nobody@acme.example").execute({})


def test_the_range_limit_text_becomes_a_clear_error(make_emu: Callable[..., Any]) -> None:
    # The provider never sends more than 92 days; the vendor's answer to a request that does is built
    # here by hand (skipping the dialect's own check) to see what the error would say.
    emu = make_emu()
    dialect = MessangiDialect(
        ClientConfig(base_url=emu.base_url, api_key=emu.api_key, vendor="messangi", options={
            "report_emails": RECIPIENTS, "report_sender": SENDER,
        })
    )  # fmt: skip
    request = dialect.submit_export(
        ExportRequest.build("message_history", START, START + timedelta(days=100))
    )
    response = requests.post(
        emu.base_url + request.path,
        params=request.params,
        json=request.json,
        headers={"Authorization": f"Bearer {emu.api_key}"},
        timeout=10,
    )
    error = dialect.error_for("submit_export", response.status_code, response.headers, response.json(), "")
    assert response.status_code == 400
    assert "longer than Messangi's 92-day limit" in error.message
    assert "The date range exceeds the allowed limit: 92" in error.message


def test_missing_recipients_fail_at_task_start_naming_the_argument_and_the_extra(
    make_emu: Callable[..., Any],
) -> None:
    emu = make_emu(extras={"report_emails": None})
    with pytest.raises(AirflowFailException, match=r"email_recipients: .*report_emails"):
        operator().execute({})
    assert emu.request_log == []  # refused before any request


def test_a_retry_after_a_partial_failure_sends_only_the_rest(make_emu: Callable[..., Any]) -> None:
    emu = make_emu(extras={"max_attempts": 1})
    end = START + timedelta(days=200)
    store = DictStateStore()
    emu.faults.script("export", ["ok", 500])
    with pytest.raises(AirflowException, match=r"report 2 of 3 .* not yet accepted"):
        operator(end_datetime=end.isoformat()).execute({"task_state_store": store})
    assert len(emu.report_requests) == 1
    if not airflow_has_task_state_store():
        assert store.values == {}  # Airflow < 3.3: nothing kept, a retry sends every piece again
        return
    result = operator(end_datetime=end.isoformat()).execute({"task_state_store": store})
    sent = emu.report_requests
    assert len(sent) == 3  # the first piece was not mailed twice
    assert [r["transaction_id"] for r in result["requests"]] == [r.transaction_id for r in sent]


@pytest.mark.parametrize("vendor", ["qlara", "8x8"])
def test_email_arguments_are_refused_for_vendors_that_deliver_links(vendor: str) -> None:
    with pytest.raises(ValueError, match=rf"email_recipients: {vendor} delivers exports as download links"):
        operator(vendor=vendor, email_recipients=["ops@acme.example"])


def test_static_arguments_are_checked_at_parse_with_messangi_rules() -> None:
    operator(vendor="messangi", end_datetime=(START + timedelta(days=400)).isoformat())  # split: fine
    with pytest.raises(ValueError, match=r"filters.channel: 'FAX' is not a Messangi channel"):
        operator(vendor="messangi", filters={"channel": "FAX"})
    with pytest.raises(ValueError, match=r"email_recipients: 'not-an-address' is not an e-mail address"):
        operator(vendor="messangi", email_recipients=["not-an-address"])
    with pytest.raises(ValueError, match=r"export_type: messangi has no 'contacts' export"):
        MsgHistoryExportOperator(task_id="t", export_type="contacts", vendor="messangi")


def test_the_transfer_refuses_a_messangi_export_at_once(make_emu: Callable[..., Any], tmp_path: Any) -> None:
    emu = make_emu()
    transfer = MsgHistoryExportToStorageOperator(
        task_id="store", export_id="b0e758af", destination=f"file://{tmp_path}/out.csv"
    )
    with pytest.raises(AirflowFailException, match="MsgHistoryMessagesToStorageOperator"):
        transfer.execute({})
    assert emu.request_log == [] and not list(tmp_path.iterdir())


def test_the_form_s_comma_separated_recipients_work_and_a_bad_one_names_the_extra(
    make_emu: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emu(extras={"report_emails": "ops@acme.example, audit@acme.example"})
    operator().execute({})
    assert emu.report_requests[0].body["emails"] == RECIPIENTS
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT",
        emu.airflow_conn_json(report_emails="ops at acme", report_sender=SENDER),
    )
    with pytest.raises(ValueError, match=r"Connection 'msghistory_default': report_emails: 'ops at acme'"):
        operator().execute({})
