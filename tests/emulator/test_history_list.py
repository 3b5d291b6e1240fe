"""Qlara's history list (B) as a message-list load meets it: every channel, exact windows, record shapes,
the limit cap and the documented rate limit, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.emulator import Emulator

from .conftest import Api

MONTH = ("2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z")


def _load(api: Api, channel: str, start: str, end_inclusive: str, limit: int, **extra: Any) -> list[Any]:
    """Every page until the first short one (the documented last-page rule)."""
    records, page = [], 0
    while True:
        params = {"channel": channel, "from": start, "to": end_inclusive, "page": page, "limit": limit}
        response = api.get("/messages/history", params={**params, **extra})
        assert response.status_code == 200, response.text
        items = response.json()
        records += items
        if len(items) < limit:
            return records
        page += 1


@pytest.mark.parametrize("channel", ["SMS", "RCS", "WHATSAPP"])
def test_paging_every_channel_gives_exactly_the_expected_messages(
    emu: Emulator, api: Api, channel: str
) -> None:
    loaded = _load(api, channel, MONTH[0], "2025-01-31T23:59:59.999Z", limit=7)
    expected = emu.expected_messages(*MONTH, channel=channel)
    assert loaded == expected and {r["channel"] for r in loaded} == {channel}
    assert len(expected) > 7 * 3


def test_consecutive_half_open_windows_sent_as_end_minus_1ms_neither_overlap_nor_gap(
    emu: Emulator, api: Api
) -> None:
    day1 = _load(api, "SMS", "2025-01-03T00:00:00.000Z", "2025-01-03T23:59:59.999Z", limit=5)
    day2 = _load(api, "SMS", "2025-01-04T00:00:00.000Z", "2025-01-04T23:59:59.999Z", limit=5)
    assert day1[-1]["sendDate"] == "2025-01-03T23:59:59.999Z"
    assert day2[0]["sendDate"] == "2025-01-04T00:00:00.000Z"
    assert day1 + day2 == emu.expected_messages("2025-01-03T00:00:00Z", "2025-01-05T00:00:00Z", "SMS")
    assert emu.expected_messages("2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "SMS") == day1


def test_expected_messages_filters_by_status_and_spans_channels(emu: Emulator, api: Api) -> None:
    errors = _load(api, "RCS", MONTH[0], "2025-01-31T23:59:59.999Z", limit=50, status="ERROR")
    assert errors == emu.expected_messages(*MONTH, channel="RCS", status="ERROR")
    assert errors and {r["deliveryStatus"] for r in errors} == {"ERROR"}
    every = emu.expected_messages(*MONTH)
    assert [r["channel"] for r in every] == sorted((r["channel"] for r in every), key="SMS RCS WHATSAPP".find)
    assert len(every) == len(emu.dataset.messages)


def test_documented_record_shape_has_only_the_published_fields(emu: Emulator, api: Api) -> None:
    emu.set_shape(history_record="documented", history_wrap="messages")
    params = {"channel": "SMS", "from": MONTH[0], "to": "2025-01-01T23:59:59.999Z", "limit": 3}
    items = api.get("/messages/history", params=params).json()["messages"]
    assert len(items) == 3
    assert all(set(i) == {"customerMessageId", "deliveryStatus", "deliveryStatusDescription"} for i in items)
    assert items == emu.expected_messages(MONTH[0], "2025-01-02T00:00:00Z", "SMS")[:3]


def test_limit_above_the_cap_is_refused_or_clamped(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(messages=600, history_max_limit=10)
    api = Api(emu)
    params = {"channel": "SMS", "from": MONTH[0], "to": "2025-01-31T23:59:59.999Z"}
    assert api.get("/messages/history", params={**params, "limit": 11}).status_code == 400
    emu.set_shape(history_over_limit="clamp")
    clamped = api.get("/messages/history", params={**params, "limit": 50}).json()
    assert len(clamped) == 10  # shorter than asked although more remain: the last-page rule misleads here


def test_documented_production_limit_bursts_50_per_second_then_429_with_retry_after(
    msghistory_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = msghistory_emulator_factory(messages=100, rate_limit=(1000, 50))
    api = Api(emu)
    params = {"channel": "SMS", "from": MONTH[0], "to": "2025-01-01T23:59:59.999Z", "limit": 1}
    answers = [api.get("/messages/history", params=params) for _ in range(51)]
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 50 and statuses[-1] == 429  # sequential loopback calls fit in 1 s
    limited = answers[-1]
    assert limited.json()["retryAfter"] == 1
    assert (
        limited.headers["X-RateLimit-Limit"] == "1000" and limited.headers["X-RateLimit-Remaining"] == "950"
    )
    assert int(limited.headers["X-RateLimit-Reset"]) <= 60
    emu.set_rate_limit((100, 10))  # the trial account's ceiling
    trial = [api.get("/messages/history", params=params) for _ in range(11)]
    assert [a.status_code for a in trial].count(429) == 1 and trial[0].headers["X-RateLimit-Limit"] == "100"
