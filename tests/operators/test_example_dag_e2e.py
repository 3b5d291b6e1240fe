"""End to end: ``airflow dags test`` of the example DAG against the emulator, sync and deferrable."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "example_msghistory_exports"
TASKS = (
    "export_message_history",
    "export_delivery_reports_of_day",
    "export_delivery_reports_of_campaign",
    "export_contacts",
)
EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "example_msghistory_exports.py"


def test_example_dag_parses_with_a_data_interval_timetable(monkeypatch: pytest.MonkeyPatch) -> None:
    # A connection to nowhere: parsing must not look it up, let alone call the API.
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT", '{"conn_type": "msghistory", "host": "http://192.0.2.1"}'
    )
    spec = importlib.util.spec_from_file_location("example_msghistory_exports", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    assert dag.dag_id == DAG_ID
    assert sorted(dag.task_ids) == sorted(TASKS)
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"


@pytest.mark.e2e
@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_dags_test_runs_every_export_type(msghistory_emulator: Any, run_dag: Any, deferrable: bool) -> None:
    result = run_dag(
        DAG_ID,
        "2025-01-02",
        conn_json=msghistory_emulator.airflow_conn_json(),
        env={
            "MSGHISTORY_EXAMPLE_DEFERRABLE": str(deferrable).lower(),
            "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "0.2",
        },
    )
    exports = msghistory_emulator.exports
    xcoms = {task: result.xcom(task) for task in TASKS}
    for task, xcom in xcoms.items():
        assert xcom is not None, f"{task} pushed no XCom"
        assert xcom["status"] == "COMPLETED", xcom
        assert exports[xcom["export_id"]].status == "COMPLETED"
        # "Submitted ..." comes from the operator alone (Airflow 2's `dags test` prints each log line twice).
        submitted = f"Submitted {xcom['export_type']} export {xcom['export_id']}"
        assert result.output.count(submitted) == result.output.count(f"{submitted} (window") > 0
    assert len(exports) == len(TASKS)  # one export per task: nothing submitted twice

    # Both day-scoped exports cover one full UTC day of the run's data interval, sent as inclusive bounds.
    for task in ("export_message_history", "export_delivery_reports_of_day"):
        window = xcoms[task]["window"]
        start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
        assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
        assert end - start == timedelta(days=1, milliseconds=-1)
    assert xcoms["export_delivery_reports_of_campaign"]["window"] is None
    assert xcoms["export_contacts"]["window"] is None
    assert msghistory_emulator.api_key not in result.output

    # Deferrable: each task only submits, then `dags test` runs its trigger in line; sync: no trigger.
    assert result.output.count("running trigger in line") == (len(TASKS) if deferrable else 0)
