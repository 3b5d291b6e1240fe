"""Consecutive daily runs export every message exactly once, including those at the midnight boundary."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator


@pytest.fixture
def emu(msghistory_emulator: Any, use_emulator: Callable[..., None]) -> Any:
    use_emulator(msghistory_emulator)
    return msghistory_emulator


def exported_rows(emulator: Any, start: str, end: str) -> dict[str, dict[str, str]]:
    op = MsgHistoryExportOperator(
        task_id="export", export_type="message_history", start_datetime=start, end_datetime=end,
        poll_interval=0.05, timeout=20, deferrable=False,
    )  # fmt: skip
    export_id = op.execute({})["export_id"]
    rows = csv.DictReader(io.StringIO(emulator.export_csv(export_id).decode("utf-8")))
    return {row["messageId"]: row for row in rows}


def test_two_daily_windows_partition_a_two_day_window(emu: Any) -> None:
    day1 = exported_rows(emu, "2025-01-05T00:00:00+00:00", "2025-01-06T00:00:00+00:00")
    day2 = exported_rows(emu, "2025-01-06T00:00:00+00:00", "2025-01-07T00:00:00+00:00")
    both = exported_rows(emu, "2025-01-05T00:00:00+00:00", "2025-01-07T00:00:00+00:00")

    assert day1 and day2
    assert not set(day1) & set(day2), "a message was exported by both days"
    assert set(day1) | set(day2) == set(both), "a message fell between the days"

    # The emulator puts messages at each midnight and at 23:59:59.999: they land on the right side.
    send_dates = {row["sendDate"] for row in day1.values()}
    assert any(d.startswith("2025-01-05T00:00:00.000") for d in send_dates)
    assert any(d.startswith("2025-01-05T23:59:59.999") for d in send_dates)
    assert not any(d.startswith("2025-01-06T00:00:00.000") for d in send_dates)
    assert any(row["sendDate"].startswith("2025-01-06T00:00:00.000") for row in day2.values())
    assert not any(row["sendDate"].startswith("2025-01-07T00:00:00.000") for row in day2.values())


def test_a_window_in_another_offset_covers_the_same_instants(emu: Any) -> None:
    utc = exported_rows(emu, "2025-01-05T00:00:00+00:00", "2025-01-06T00:00:00+00:00")
    rome = exported_rows(emu, "2025-01-05T01:00:00+01:00", "2025-01-06T01:00:00+01:00")
    assert set(utc) == set(rome)
