"""Datetime and export-request validation: bad input is refused before any request, naming the field."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.datetimes import format_api, parse_aware, parse_vendor_time
from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect
from airflow_provider_msghistory.client.models import ExportKind, ExportRequest

EXAMPLE = "2025-01-01T00:00:00+01:00"
CET = timezone(timedelta(hours=1))
UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-01T00:00:00+01:00", "2025-01-01T00:00:00.000+01:00"),
        ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00.000+00:00"),
        ("2025-01-01T00:00:00.123456-05:30", "2025-01-01T00:00:00.123-05:30"),
        ("2025-06-30T23:59:59.999+02:00", "2025-06-30T23:59:59.999+02:00"),
        (datetime(2025, 1, 1, 12, 0, tzinfo=CET), "2025-01-01T12:00:00.000+01:00"),
        (pendulum.datetime(2025, 3, 30, 1, 30, tz="Europe/Rome"), "2025-03-30T01:30:00.000+01:00"),
        (pendulum.datetime(2025, 3, 30, 3, 30, tz="Europe/Rome"), "2025-03-30T03:30:00.000+02:00"),
    ],
)
def test_accepted_values_go_on_the_wire_with_their_offset(value: object, expected: str) -> None:
    assert format_api(parse_aware(value, "start")) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2025-01-01", "date only"),
        ("20250101", "date only"),
        ("2025-01-01T00:00:00", "no UTC offset"),
        ("2025-01-01 00:00", "no UTC offset"),
        ("yesterday", "not an ISO-8601 datetime"),
        ("2025-13-01T00:00:00+01:00", "not an ISO-8601 datetime"),
        ("", "not an ISO-8601 datetime"),
        ("2025-01-01T00:00:00+1", "not an ISO-8601 datetime"),
        (datetime(2025, 1, 1), "no UTC offset"),
        (date(2025, 1, 1), "a date has no time"),
        (1735689600, "expected an aware datetime"),
        (datetime(2025, 1, 1, tzinfo=timezone(timedelta(seconds=30))), "whole minutes"),
    ],
)
def test_rejected_values_name_the_parameter_and_show_an_example(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_aware(value, "end")
    message = str(info.value)
    assert message.startswith("end:")
    assert fragment in message
    if fragment != "whole minutes":
        assert EXAMPLE in message


def test_build_rejects_bad_datetimes_naming_start_or_end() -> None:
    with pytest.raises(ValueError, match=r"^start: .*date only.*2025-01-01T00:00:00\+01:00"):
        ExportRequest.build("message_history", "2025-01-01", "2025-01-02T00:00:00Z")
    with pytest.raises(ValueError, match=r"^end: .*no UTC offset"):
        ExportRequest.build("message_history", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00")


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^end: .*before start"):
        ExportRequest.build("message_history", "2025-01-02T00:00:00+01:00", "2025-01-01T23:00:00+01:00")
    # the same instant written in two offsets is not "before"
    same = ExportRequest.build("message_history", "2025-01-01T00:00:00+01:00", "2024-12-31T23:00:00Z")
    assert same.start == same.end


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"kind": "message_history"}, "start", "needs start and end"),
        ({"kind": "message_history", "start": EXAMPLE}, "end", "go together"),
        ({"kind": "message_history", "start": EXAMPLE, "end": EXAMPLE, "campaign_id": 7}, "campaign_id", ""),
        ({"kind": "delivery_reports"}, "campaign_id", "campaign_id"),
        ({"kind": "delivery_reports", "end": EXAMPLE}, "start", "go together"),
        ({"kind": "delivery_reports", "campaign_id": "  "}, "campaign_id", "empty"),
        ({"kind": "contacts", "start": EXAMPLE, "end": EXAMPLE}, "start", "no date range"),
        ({"kind": "contacts", "list_ids": [1], "contact_ids": [2]}, "contact_ids", "not both"),
        ({"kind": "contacts", "list_ids": []}, "list_ids", "empty list"),
        ({"kind": "contacts", "list_ids": [1, None]}, "list_ids", "strings or integers"),
        ({"kind": "contacts", "contact_ids": [True]}, "contact_ids", "strings or integers"),
        ({"kind": "exports"}, "kind", "'message_history', 'delivery_reports', 'contacts'"),
    ],
)
def test_request_validation_table(kwargs: dict[str, object], param: str, fragment: str) -> None:
    """Value checks are ExportRequest.build's; which fields a kind takes is the vendor's (Qlara's here)."""
    qlara = QlaraDialect(ClientConfig(api_key="k"))
    with pytest.raises(ValueError) as info:
        qlara.check(ExportRequest.build(**kwargs))  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{param}:")
    assert fragment in str(info.value)


def test_valid_requests_are_normalised() -> None:
    history = ExportRequest.build(
        ExportKind.MESSAGE_HISTORY, EXAMPLE, pendulum.datetime(2025, 1, 2, tz="UTC"), sender=" ACME "
    )
    assert history.kind is ExportKind.MESSAGE_HISTORY and history.sender == "ACME"
    assert history.end == datetime(2025, 1, 2, tzinfo=timezone.utc)
    reports = ExportRequest.build("DELIVERY_REPORTS", campaign_id=1001)
    assert reports.campaign_id == "1001" and reports.start is None
    both = ExportRequest.build("delivery_reports", EXAMPLE, EXAMPLE, campaign_id="1001")
    assert both.campaign_id == "1001" and both.start is not None
    assert ExportRequest.build("contacts").list_ids is None
    assert ExportRequest.build("contacts", list_ids="1, 2").list_ids == ("1", "2")
    assert ExportRequest.build("contacts", contact_ids=(5, "6")).contact_ids == (5, "6")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-10-25T06:58:41.74Z", datetime(2020, 10, 25, 6, 58, 41, 740000, tzinfo=timezone.utc)),
        ("2020-10-25 06:58:41.740Z", datetime(2020, 10, 25, 6, 58, 41, 740000, tzinfo=timezone.utc)),
        ("2020-10-25t06:58:41z", datetime(2020, 10, 25, 6, 58, 41, tzinfo=timezone.utc)),
        ("2020-10-25T07:58:41.123456789+0100", datetime(2020, 10, 25, 6, 58, 41, 123456, tzinfo=UTC)),
        ("2020-10-25 06:58:41.7", datetime(2020, 10, 25, 6, 58, 41, 700000, tzinfo=timezone.utc)),
        ("1603609121740", datetime(2020, 10, 25, 6, 58, 41, 740000, tzinfo=timezone.utc)),
        (1603609121, datetime(2020, 10, 25, 6, 58, 41, tzinfo=timezone.utc)),
    ],
)
def test_one_parser_reads_every_vendor_spelling_of_a_time(text: object, expected: datetime) -> None:
    """Row times and link expiries: any fraction length (8x8 writes two; Python 3.10 reads 3 or 6 only)."""
    assert parse_vendor_time(text) == expected
    if isinstance(text, str):
        assert parse_vendor_time(text.encode()) == expected


@pytest.mark.parametrize("text", ["2020-13-01T00:00:00Z", "yesterday", "", "1e400", 1e20, float("nan"), True])
def test_an_unreadable_vendor_time_is_none_never_an_error(text: object) -> None:
    assert parse_vendor_time(text) is None
    assert parse_vendor_time("2020-10-25T06:58:41", naive_is_utc=False) is None
