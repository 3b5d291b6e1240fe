"""MsgHistoryMessagesToStorageOperator on Messangi's JSON message log (``GET /v3/mlog``) over HTTP: windows
over 92 days in pieces, every channel (long names too), records cut to ``[start, end)`` by ``createdAt``,
JSONL and CSV, exact across consecutive days, a key renewed mid-load, paced through 429s."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_msghistory.client.dialects.messangi import RECORD_FIELDS
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
CHANNELS = ("S", "E", "P", "W", "R")


def load(tmp_path: Path, start: datetime, end: datetime, name: str = "log.jsonl", **kwargs: Any) -> Any:
    return MsgHistoryMessagesToStorageOperator(
        task_id="load",
        destination=f"file://{tmp_path}/{name}",
        start_datetime=start.isoformat(),
        end_datetime=end.isoformat(),
        **kwargs,
    ).execute({})


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected(emu: Any, start: datetime, end: datetime, channels: tuple[str, ...] = CHANNELS) -> list[Any]:
    """The operator's order: channel by channel, oldest first."""
    return [r for channel in channels for r in emu.expected_records(start, end, channel)]


def mlog_calls(emu: Any) -> list[Any]:
    return [r for r in emu.request_log if r.path == "/v3/mlog"]


def test_a_200_day_window_is_read_in_92_day_pieces_and_holds_every_record_once(
    make_emu: Callable[..., Any], tmp_path: Path
) -> None:
    emu = make_emu()
    end = START + timedelta(days=200)
    result = load(tmp_path, START, end, page_size=1000)
    assert lines(tmp_path / "log.jsonl") == expected(emu, START, end)
    assert result["records"] == len(expected(emu, START, end)) and result["channels"] == list(CHANNELS)
    spans = {(r.query["from"], r.query["to"]) for r in mlog_calls(emu)}
    assert sorted(spans) == [
        ("2025-01-01T00:00:00.000Z", "2025-04-03T00:00:00.000Z"),
        ("2025-04-03T00:00:00.000Z", "2025-07-04T00:00:00.000Z"),
        ("2025-07-04T00:00:00.000Z", "2025-07-20T00:00:00.000Z"),
    ]


def test_consecutive_days_are_exact_at_their_boundary(make_emu: Callable[..., Any], tmp_path: Path) -> None:
    emu = make_emu(to_inclusive=True)  # the server also returns the next day's 00:00:00.000 records
    day1 = load(tmp_path, START, START + timedelta(days=1), "d1.jsonl")
    day2 = load(tmp_path, START + timedelta(days=1), START + timedelta(days=2), "d2.jsonl")
    first, second = lines(tmp_path / "d1.jsonl"), lines(tmp_path / "d2.jsonl")
    assert first + second == [
        r for ch in CHANNELS for r in emu.expected_records(START, START + timedelta(days=1), ch)
    ] + [
        r
        for ch in CHANNELS
        for r in emu.expected_records(START + timedelta(days=1), START + timedelta(days=2), ch)
    ]
    assert {r["id"] for r in first}.isdisjoint(r["id"] for r in second)
    assert any(r["createdAt"].endswith("T23:59:59.999Z") for r in first)
    assert any(r["createdAt"] == "2025-01-02T00:00:00.000Z" for r in second)
    assert not any(r["createdAt"].startswith("2025-01-02") for r in first)
    assert day1["records"] + day2["records"] == len(first) + len(second)


def test_long_channel_names_a_status_filter_and_csv(make_emu: Callable[..., Any], tmp_path: Path) -> None:
    emu = make_emu()
    end = START + timedelta(days=5)
    result = load(
        tmp_path, START, end, "log.csv", channels=["SMS", "WHATSAPP"], status="DELIVERED", format="csv"
    )
    assert {r.query["channel"] for r in mlog_calls(emu)} == {"S", "W"}
    assert all(r.query["status"] == "DELIVERED" for r in mlog_calls(emu))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "log.csv").read_text(), newline="")))
    want = [r for ch in ("S", "W") for r in emu.expected_records(START, end, ch, status="DELIVERED")]
    assert [r["id"] for r in rows] == [r["id"] for r in want] and len(rows) > 0
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert tuple(header[: len(RECORD_FIELDS)]) == RECORD_FIELDS
    assert result["channels"] == ["S", "W"]


def test_an_unknown_channel_fails_before_any_request(make_emu: Callable[..., Any], tmp_path: Path) -> None:
    emu = make_emu()
    with pytest.raises(AirflowFailException, match=r"channels: \['FAX'\] not among"):
        load(tmp_path, START, START + timedelta(days=1), channels=["FAX"])
    assert mlog_calls(emu) == [] and not list(tmp_path.iterdir())


def test_a_login_key_expiring_mid_load_is_renewed(make_emu: Callable[..., Any], tmp_path: Path) -> None:
    emu = make_emu(login=True)
    seen: list[int] = []

    def expire_after_the_third_page(request: Any) -> None:
        if request.path == "/v3/mlog":
            seen.append(request.status)
            if len(seen) == 3:
                emu.expire_keys()

    emu.on_request(expire_after_the_third_page)
    end = START + timedelta(days=3)
    load(tmp_path, START, end, page_size=50)
    emu.on_request(None)
    assert lines(tmp_path / "log.jsonl") == expected(emu, START, end)
    assert 401 in seen and emu.logins == 2


def test_paced_through_the_vendor_s_429s(make_emu: Callable[..., Any], tmp_path: Path) -> None:
    emu = make_emu(rate_limit=(6000, 4))  # 4 a second: a burst of page reads meets 429 + Retry-After
    end = START + timedelta(days=10)
    load(tmp_path, START, end, page_size=20)
    assert lines(tmp_path / "log.jsonl") == expected(emu, START, end)
    assert 429 in {r.status for r in mlog_calls(emu)}
