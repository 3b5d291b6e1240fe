"""Parse-time validation of MsgHistoryExportOperator and the half-open window conversion."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_msghistory.arguments import RUN_INTERVAL_START
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator

UTC = timezone.utc
DAY1 = "2025-01-01T00:00:00+00:00"
DAY2 = "2025-01-02T00:00:00+00:00"


def make(**kwargs: object) -> MsgHistoryExportOperator:
    kwargs.setdefault("task_id", "export")
    return MsgHistoryExportOperator(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"export_type": "sms_log"}, "export_type", "'message_history'"),
        ({"export_type": None}, "export_type", "'contacts'"),
        (
            {"export_type": "message_history", "start_datetime": datetime(2025, 1, 1), "end_datetime": DAY2},
            "start_datetime",
            "2025-01-01T00:00:00+01:00",
        ),
        (
            {"export_type": "message_history", "start_datetime": "2025-01-01", "end_datetime": DAY2},
            "start_datetime",
            "date only",
        ),
        (
            {"export_type": "message_history", "start_datetime": DAY1, "end_datetime": "2025-01-02T00:00:00"},
            "end_datetime",
            "no UTC offset",
        ),
        (
            {"export_type": "message_history", "start_datetime": DAY2, "end_datetime": DAY1},
            "start_datetime",
            "empty",
        ),
        (
            {"export_type": "message_history", "start_datetime": DAY1, "end_datetime": DAY1},
            "start_datetime",
            "is not before end",
        ),
        (
            {"export_type": "contacts", "start_datetime": DAY1, "end_datetime": DAY2},
            "start_datetime",
            "no date range",
        ),
        (
            {"export_type": "delivery_reports", "start_datetime": None, "end_datetime": None},
            "campaign_id",
            "'12345'",
        ),
        ({"export_type": "contacts", "list_ids": [1], "contact_ids": [2]}, "contact_ids", "not both"),
        ({"export_type": "message_history", "campaign_id": "7"}, "campaign_id", "not accepted"),
        (
            {"export_type": "message_history", "start_datetime": DAY1, "end_datetime": None},
            "end_datetime",
            DAY1[:4],
        ),
        ({"export_type": "message_history", "poll_interval": 0}, "poll_interval", "e.g. 10"),
        ({"export_type": "message_history", "poll_interval": -5}, "poll_interval", "e.g. 10"),
        ({"export_type": "message_history", "timeout": 0}, "timeout", "e.g. 3600"),
        ({"export_type": "message_history", "max_regenerations": -1}, "max_regenerations", "e.g. 3"),
    ],
)
def test_static_bad_input_is_refused_at_parse_time(kwargs: dict, field: str, hint: str) -> None:
    with pytest.raises(ValueError, match=field) as caught:
        make(**kwargs)
    assert str(caught.value).startswith(f"{field}:")
    assert hint in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"export_type": "message_history"},  # the run's data interval, rendered later
        {"export_type": "MESSAGE_HISTORY", "sender": "ACME", "recipient": "{{ params.to }}"},
        {"export_type": "message_history", "start_datetime": DAY1, "end_datetime": DAY2},
        {"export_type": "message_history", "start_datetime": DAY1, "end_datetime": "{{ data_interval_end }}"},
        {"export_type": "delivery_reports"},
        {"export_type": "delivery_reports", "campaign_id": "{{ params.campaign }}"},
        {"export_type": "contacts"},
        {"export_type": "contacts", "list_ids": "{{ params.lists }}"},
        {"export_type": "contacts", "contact_ids": [1, 2]},
    ],
)
def test_good_and_templated_input_is_accepted_at_parse_time(kwargs: dict) -> None:
    make(**kwargs)


def test_contacts_ignore_the_default_window_and_campaign_alone_scopes_delivery_reports() -> None:
    assert make(export_type="contacts").start_datetime is None
    assert make(export_type="delivery_reports", campaign_id="9").start_datetime is None
    assert make(export_type="delivery_reports").start_datetime == RUN_INTERVAL_START


def test_templated_values_are_checked_at_task_start_before_any_request() -> None:
    op = make(export_type="message_history", start_datetime="{{ x }}", end_datetime="{{ y }}")
    op.start_datetime, op.end_datetime = "2025-01-02 00:00:00+00:00", "2025-01-02 00:00:00+00:00"
    with pytest.raises(ValueError, match="CronDataIntervalTimetable"):
        op.build_request()
    op.start_datetime = "2025-01-01"
    with pytest.raises(ValueError, match="start_datetime: '2025-01-01' is a date only"):
        op.build_request()


def test_explicit_dates_out_of_order_get_no_timetable_advice() -> None:
    with pytest.raises(ValueError) as caught:
        make(export_type="message_history", start_datetime=DAY2, end_datetime=DAY1)
    assert str(caught.value) == (
        "start_datetime: the window [start_datetime, end_datetime) is empty: end 2025-01-01T00:00:00+00:00 "
        "is before start 2025-01-02T00:00:00+00:00; pass an end_datetime after start_datetime (swapped?)"
    )
    with pytest.raises(ValueError) as caught:
        make(export_type="message_history", start_datetime=DAY1, end_datetime=DAY1)
    assert "timetable" not in str(caught.value).lower()
    # rendered from templates, start after end is still no timetable's doing
    op = make(export_type="message_history", start_datetime="{{ x }}", end_datetime="{{ y }}")
    op.start_datetime, op.end_datetime = DAY2, DAY1
    with pytest.raises(ValueError, match="swapped") as caught:
        op.build_request()
    assert "timetable" not in str(caught.value).lower()


def test_build_request_sends_start_and_end_minus_one_millisecond() -> None:
    op = make(export_type="message_history", start_datetime=DAY1, end_datetime=DAY2)
    request, window = op.build_request()
    assert window == {"start": "2025-01-01T00:00:00.000+00:00", "end": "2025-01-01T23:59:59.999+00:00"}
    assert request.window is not None
    assert request.window.inclusive_ms()[1] == datetime(2025, 1, 1, 23, 59, 59, 999000, tzinfo=UTC)


def test_window_keeps_the_given_offset() -> None:
    op = make(
        export_type="delivery_reports",
        start_datetime="2025-03-30T00:00:00+01:00",
        end_datetime="2025-03-31T00:00:00+02:00",
    )
    _, window = op.build_request()
    assert window == {"start": "2025-03-30T00:00:00.000+01:00", "end": "2025-03-30T23:59:59.999+02:00"}


def test_consecutive_windows_neither_overlap_nor_leave_a_gap_at_ms_precision() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    mid = start + timedelta(days=1)
    end = mid + timedelta(days=1)
    (a_start, a_end), (b_start, b_end) = Window(start, mid).inclusive_ms(), Window(mid, end).inclusive_ms()
    assert b_start - a_end == timedelta(milliseconds=1)  # adjacent inclusive ms bounds
    assert (a_start, b_end) == (start, end - timedelta(milliseconds=1))


def test_sub_millisecond_bounds_round_up_so_the_window_stays_half_open() -> None:
    start = datetime(2025, 1, 1, 0, 0, 0, 500, tzinfo=UTC)  # 0.5 ms: the first whole ms inside is 1 ms
    end = datetime(2025, 1, 1, 0, 0, 1, 1500, tzinfo=UTC)
    first, last = Window(start, end).inclusive_ms()
    assert first == datetime(2025, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
    assert last == datetime(2025, 1, 1, 0, 0, 1, 1000, tzinfo=UTC)  # 1.5 ms excluded end: 1 ms is inside


def test_an_unknown_vendor_at_parse_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_API", '{"conn_type": "msghistory", "password": "k", "extra": {"vendor": "twilio"}}'
    )
    with pytest.raises(ValueError) as caught:
        make(export_type="message_history", msghistory_conn_id="crm_api")
    assert str(caught.value) == (
        "connection 'crm_api' extra vendor: unknown vendor 'twilio'; supported: 8x8, messangi, qlara"
    )
    with pytest.raises(ValueError) as caught:
        make(export_type="message_history", vendor="sinch")
    assert str(caught.value) == "vendor: unknown vendor 'sinch'; supported: 8x8, messangi, qlara"
