"""A task retry after submission, through ``airflow dags test``: reconnect (3.3+) or resubmit (older)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_msghistory.emulator import Emulator

DAGS = Path(__file__).resolve().parents[1] / "dags"


def airflow_has_task_state_store() -> bool:
    from airflow import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    return (major, minor) >= (3, 3)


@pytest.mark.e2e
def test_a_retry_after_submission_reuses_the_export_where_airflow_keeps_task_state(
    run_dag, msghistory_emulator: Emulator
) -> None:
    # The first try submits, then its first status poll gets a non-transient 400: the try fails after the
    # export exists, as a worker crash would leave it. The retry must find it again.
    msghistory_emulator.faults.script("list", [400])
    result = run_dag(
        "msghistory_test_retry",
        conn_json=msghistory_emulator.airflow_conn_json(),
        env={"AIRFLOW__CORE__DAGS_FOLDER": str(DAGS)},
    )

    submits = [r for r in msghistory_emulator.request_log if r.method == "POST" and r.server == "api"]
    xcom = result.xcom("export")
    assert xcom["status"] == "COMPLETED"
    assert msghistory_emulator.faults.injected.get("400") == 1  # the first try did fail after submitting
    if airflow_has_task_state_store():
        assert len(submits) == 1, "the retry submitted a second export instead of reconnecting"
        assert list(msghistory_emulator.exports) == [xcom["export_id"]]
    else:
        # No task_state_store below 3.3: the retry submits again (documented in the README).
        assert len(submits) == 2
        assert xcom["export_id"] in msghistory_emulator.exports
