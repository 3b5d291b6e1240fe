"""Three consecutive daily runs with restate_days=2 against an emulator whose statuses settle (issue 19).

The emulator's clock is moved to each run's time (00:05 after the day): every day's partition must equal
the vendor's view at its last restatement, no message in two partitions, none missing, and the manifests
show the statuses settling from run to run.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from triggers.helpers import conn_json

from airflow_provider_msghistory.emulator.timeutil import to_epoch_ms
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

UTC = timezone.utc
FIRST_RUN_DAY = datetime(2025, 1, 4, tzinfo=UTC)
UNSETTLED = {"qlara": "SENT", "8x8": "sent", "messangi": "SENT"}


def run_export(day: datetime, template: str) -> dict[str, Any]:
    export = MsgHistoryExportOperator(
        task_id="export", export_type="message_history", start_datetime=day.isoformat(),
        end_datetime=(day + timedelta(days=1)).isoformat(), restate_days=2, poll_interval=0.05,
        timeout=20, deferrable=False,
    )  # fmt: skip
    export_id = export.execute({})["export_id"]
    store = MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=template, partition_by="day", poll_interval=0.05,
        timeout=20, deferrable=False,
    )  # fmt: skip
    return store.execute({})


def run_list(day: datetime, template: str) -> dict[str, Any]:
    op = MsgHistoryMessagesToStorageOperator(
        task_id="list", destination=template, start_datetime=day.isoformat(),
        end_datetime=(day + timedelta(days=1)).isoformat(), restate_days=2, partition_by="day", format="csv",
    )  # fmt: skip
    return op.execute({})


def vendor_view(vendor: str, emu: Any, day: datetime) -> dict[str, str]:
    """id -> status of the messages sent on ``day``, as the emulator shows them at its clock's now."""
    start, end = to_epoch_ms(day), to_epoch_ms(day + timedelta(days=1))
    if vendor == "qlara":
        rows = emu.expected_history(day, day + timedelta(days=1) - timedelta(milliseconds=1))
        return {r["messageId"]: r["deliveryStatus"] for r in rows}
    if vendor == "8x8":
        return {r.cells[0]: r.cells[7] for r in emu.dataset.select(start, end)}
    return {r.record_id: r.status for r in emu.dataset.select(start, end)}


def file_view(vendor: str, path: Path) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    key, status = {"qlara": ("messageId", "deliveryStatus"), "8x8": ("umid", "status_value")}.get(
        vendor, ("id", "status")
    )
    return {r[key]: r[status] for r in rows}


@pytest.mark.parametrize("vendor", ["qlara", "8x8", "messangi"])
def test_three_daily_runs_restate_two_days_and_statuses_settle(
    vendor: str,
    msghistory_emulator_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    options: dict[str, Any] = {"messages": 900, "days": 8, "clock": "2025-01-05T00:05:00Z"}
    if vendor != "messangi":
        options["export_delay"] = 0.05
    emu = msghistory_emulator_factory(vendor=vendor, **options)
    extras = {"report_emails": ["ops@acme.example"], "report_sender": "r@acme.example"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emu, **(extras if vendor == "messangi" else {}))
    )
    template = f"{tmp_path.as_uri()}/date={{partition}}/messages.csv"
    run = run_list if vendor == "messangi" else run_export
    unsettled: dict[str, list[int]] = {}

    for n in range(3):
        day = FIRST_RUN_DAY + timedelta(days=n)
        emu.set_clock(day + timedelta(days=1, minutes=5))  # the run starts 00:05 after its day
        result = run(day, template)

        assert [p["partition"] for p in result["partitions"]] == [
            (day - timedelta(days=back)).strftime("%Y-%m-%d") for back in (2, 1, 0)
        ]
        for entry in result["partitions"]:
            assert entry["replaced"]
            partition_day = datetime.fromisoformat(entry["partition"]).replace(tzinfo=UTC)
            path = tmp_path / f"date={entry['partition']}" / "messages.csv"
            written = file_view(vendor, path)
            assert written == vendor_view(vendor, emu, partition_day)  # the vendor's view at this run
            manifest = json.loads(Path(f"{path}.manifest.json").read_text())
            counts: dict[str, int] = {}
            for status in written.values():
                counts[status] = counts.get(status, 0) + 1
            assert manifest["statuses"] == dict(sorted(counts.items())) and manifest["rows"] == len(written)
            assert manifest["snapshot"] == entry["snapshot"] and manifest["vendor"] == vendor
            unsettled.setdefault(entry["partition"], []).append(counts.get(UNSETTLED[vendor], 0))

    every: dict[str, str] = {}
    for path in sorted(tmp_path.glob("date=*/messages.csv")):
        rows = file_view(vendor, path)
        assert not set(rows) & set(every), "a message is in two partitions"
        every.update(rows)
    emu.set_clock(FIRST_RUN_DAY + timedelta(days=3, minutes=5))
    expected = {
        key for back in range(-2, 3) for key in vendor_view(vendor, emu, FIRST_RUN_DAY + timedelta(days=back))
    }
    assert len(every) > 300 and set(every) == expected  # none missing
    # The day restated three times (the 4th) settles from run to run, and was taken last 3 days after it.
    history = unsettled["2025-01-04"]
    assert len(history) == 3 and history[0] > history[-1] and history == sorted(history, reverse=True)
