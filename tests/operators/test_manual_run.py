"""A run without a logical date (Airflow 3 allows one) has no data interval: the default window says what to
pass instead, at task start, before any request, and without retrying.

`airflow dags test DAG` with no date runs at the current time on 3.3 (the CLI fills in `utcnow()`), so the
dateless run is made the way the CLI makes its runs, through ``DAG.test``, with ``logical_date=None``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLE_DAGS, airflow_env

from airflow_provider_msghistory.arguments import (
    NO_RUN_INTERVAL_HELP,
    RUN_INTERVAL_END,
    RUN_INTERVAL_START,
)
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator

DAG_ID = "example_msghistory_exports"
WINDOWED = ("export_message_history", "export_delivery_reports_of_day")
UNWINDOWED = ("export_delivery_reports_of_campaign", "export_contacts")

# Runs the DAG as `airflow dags test` does, without a logical date; prints each task's state and tries.
DATELESS_RUN = textwrap.dedent(
    """
    import json, sys
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(sys.argv[1]).get_dag(sys.argv[2])
    run = dag.test(logical_date=None)
    states = {ti.task_id: [str(ti.state), ti.try_number] for ti in run.get_task_instances()}
    print("STATES " + json.dumps({"logical_date": str(run.logical_date), "tasks": states}))
    """
)


def airflow_runs_without_logical_date() -> bool:
    from airflow import __version__

    return int(__version__.split(".")[0]) >= 3


@pytest.mark.e2e
@pytest.mark.skipif(not airflow_runs_without_logical_date(), reason="Airflow 2 runs always have a date")
def test_a_run_without_logical_date_fails_the_windowed_tasks_with_advice(
    msghistory_emulator: Any, airflow_home: Path
) -> None:
    env = airflow_env(
        {
            "AIRFLOW_CONN_MSGHISTORY_DEFAULT": msghistory_emulator.airflow_conn_json(),
            "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "0.2",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", DATELESS_RUN, str(EXAMPLE_DAGS), DAG_ID],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    report = json.loads(output.split("STATES ", 1)[1].splitlines()[0])
    assert report["logical_date"] == "None"
    tasks = report["tasks"]

    # The windowed tasks fail with the advice, once each: no retry although the example DAG retries.
    assert {task: tasks[task] for task in WINDOWED} == {task: ["failed", 1] for task in WINDOWED}
    assert "BadArgumentError: " + NO_RUN_INTERVAL_HELP in output
    assert "UndefinedError" not in output
    # Contacts and a campaign's reports take no window: they run as usual.
    assert {task: tasks[task][0] for task in UNWINDOWED} == {task: "success" for task in UNWINDOWED}
    submits = [r for r in msghistory_emulator.request_log if r.method == "POST" and r.server == "api"]
    assert len(submits) == len(UNWINDOWED)  # nothing submitted for the windowed tasks


def test_a_dateless_context_renders_the_default_window_empty_and_execute_gives_the_advice() -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    operator = MsgHistoryExportOperator(task_id="export", export_type="message_history")
    assert (operator.start_datetime, operator.end_datetime) == (RUN_INTERVAL_START, RUN_INTERVAL_END)
    jinja = operator.get_template_env()
    context: dict[str, Any] = {"ds": None}  # no data_interval_* keys, as on a dateless Airflow 3 run
    operator.start_datetime = jinja.from_string(RUN_INTERVAL_START).render(**context)
    operator.end_datetime = jinja.from_string(RUN_INTERVAL_END).render(**context)
    assert (operator.start_datetime, operator.end_datetime) == ("", "")
    with pytest.raises(ValueError) as caught:
        operator.execute({})
    assert str(caught.value) == NO_RUN_INTERVAL_HELP
    assert isinstance(caught.value, AirflowFailException)  # failed without retrying


def test_a_dated_context_renders_the_default_window_as_before() -> None:
    from datetime import datetime, timezone

    operator = MsgHistoryExportOperator(task_id="export", export_type="message_history")
    jinja = operator.get_template_env()
    start, end = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 2, tzinfo=timezone.utc)
    context = {"data_interval_start": start, "data_interval_end": end}
    operator.start_datetime = jinja.from_string(RUN_INTERVAL_START).render(**context)
    operator.end_datetime = jinja.from_string(RUN_INTERVAL_END).render(**context)
    _, window = operator.build_request()
    assert window == {"start": "2025-01-01T00:00:00.000+00:00", "end": "2025-01-01T23:59:59.999+00:00"}
