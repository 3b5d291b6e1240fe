"""The reporting example DAGs parse offline, chain submit -> wait -> store, and declare static outlets."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
FILES = {
    "example_msghistory_daily_report": "example_msghistory_daily_report.py",
    "example_msghistory_weekly_contacts": "example_msghistory_weekly_contacts.py",
    "example_msghistory_campaign_delivery_reports": "example_msghistory_campaign_delivery_reports.py",
    "example_msghistory_settled_delivery_reports": "example_msghistory_settled_delivery_reports.py",
}


def load(dag_file: str) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]  # Airflow 2
    bag = DagBag(str(EXAMPLE_DAGS / dag_file))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection while parsing fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access while parsing: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("dag_id", list(FILES))
def test_parses_offline_as_submit_wait_store(
    dag_id: str, offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSGHISTORY_DESTINATION_ROOT", "s3://lake/msghistory/")
    dag = load(FILES[dag_id]).dags[dag_id]

    assert sorted(t.task_id for t in dag.tasks) == ["store", "submit", "wait"]
    assert dag.get_task("wait").upstream_task_ids == {"submit"}
    assert dag.get_task("store").upstream_task_ids == {"wait"}
    store = dag.get_task("store")
    outlets = [outlet.uri for outlet in store.outlets]
    if dag_id == "example_msghistory_weekly_contacts":
        assert outlets == ["s3://lake/msghistory/contacts/contacts.csv"]  # static path: an asset
    else:
        assert outlets == []  # templated path: known only at run time
        assert "{{" in store.destination


def test_daily_report_uses_a_data_interval_timetable_and_defers() -> None:
    dag = load(FILES["example_msghistory_daily_report"]).dags["example_msghistory_daily_report"]

    # Both Airflow lines then export a full UTC day (the e2e test checks the window sent).
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.get_task("wait").deferrable and dag.get_task("store").deferrable


def test_every_example_task_retries_so_a_worker_crash_reconnects() -> None:
    # Crash safety needs a retry: on Airflow >= 3.3 the retry reconnects to the export already submitted.
    bag = load("")
    # the four export DAGs, the hourly message-list load, 8x8 SMS logs, Messangi's report and message log,
    # the settled delivery reports
    assert len(bag.dags) == 9
    no_retries = [
        f"{dag_id}.{task.task_id}"
        for dag_id, dag in bag.dags.items()
        for task in dag.tasks
        if not task.retries
    ]
    assert no_retries == []
