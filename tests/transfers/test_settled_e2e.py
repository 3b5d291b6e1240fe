"""End to end: ``airflow dags test`` of the settled delivery-reports example against the emulator."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "example_msghistory_settled_delivery_reports"


@pytest.mark.e2e
def test_a_daily_run_restates_three_days_into_partitions_with_manifests(
    msghistory_emulator: Any, run_dag: Any, tmp_path: Path
) -> None:
    msghistory_emulator.set_clock("2025-01-06T00:05:00Z")  # the run starts 00:05 after its day
    result = run_dag(
        DAG_ID,
        "2025-01-06",  # the data interval [2025-01-05, 2025-01-06)
        conn_json=msghistory_emulator.airflow_conn_json(),
        env={"MSGHISTORY_DESTINATION_ROOT": tmp_path.as_uri(), "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "0.2"},
    )

    submitted = result.xcom("submit")
    assert submitted["window"] == {
        "start": "2025-01-02T00:00:00.000+00:00",  # restate_days=3
        "end": "2025-01-05T23:59:59.999+00:00",
    }
    store = result.xcom("store")
    days = ["2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05"]
    assert [p["partition"] for p in store["partitions"]] == days
    unsettled = []
    for entry in store["partitions"]:
        path = tmp_path / "delivery_reports" / f"date={entry['partition']}" / "delivery_reports.csv"
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        assert rows and all(r["sendDate"].startswith(entry["partition"]) for r in rows)
        manifest = json.loads(Path(f"{path}.manifest.json").read_text())
        assert manifest["rows"] == len(rows) == entry["rows"]
        assert manifest["export_ids"] == [submitted["export_id"]]  # the id carries window and snapshot
        unsettled.append(manifest["statuses"].get("SENT", 0) / len(rows))
    assert unsettled[-1] > unsettled[0]  # the day just ended is the least settled
