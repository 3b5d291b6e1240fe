"""The Messangi quarterly-report example through ``airflow dags test``: one quarter is one request (a
quarter fits in 92 days); a 200-day back-fill from the run's conf is three contiguous ones; a login
connection's key never reaches the output; and the DAG parses offline."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import RECIPIENTS, SENDER

DAG_ID = "example_msghistory_messangi_quarterly_report"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
ENV = {"MSGHISTORY_MESSANGI_CONN_ID": "msghistory_default"}


def test_the_quarter_is_one_request_and_a_long_backfill_is_split(
    msghistory_emulator_factory: Callable[..., Any], run_dag: Callable[..., Any]
) -> None:
    emu = msghistory_emulator_factory(vendor="messangi")
    conn = emu.airflow_conn_json(True, report_emails=RECIPIENTS, report_sender=SENDER)

    # `dags test ... 2025-04-01` runs the quarter that ends there: [2025-01-01, 2025-04-01).
    quarter = run_dag(DAG_ID, "2025-04-01", conn_json=conn, env=ENV)
    (sent,) = emu.report_requests
    assert (sent.query["from"], sent.query["to"]) == ("2025-01-01T00:00:00.000Z", "2025-03-31T23:59:59.999Z")
    xcom = quarter.xcom("email_report")
    assert xcom["delivery"] == "email" and xcom["requests"][0]["transaction_id"] == sent.transaction_id

    backfill = run_dag(
        DAG_ID,
        "2025-07-01",
        conn_json=conn,
        env=ENV,
        conf={"start_datetime": "2025-01-01T00:00:00+00:00", "end_datetime": "2025-07-20T00:00:00+00:00"},
    )
    split = emu.report_requests[1:]
    assert [(r.query["from"], r.query["to"]) for r in split] == [
        ("2025-01-01T00:00:00.000Z", "2025-04-02T23:59:59.999Z"),
        ("2025-04-03T00:00:00.000Z", "2025-07-03T23:59:59.999Z"),
        ("2025-07-04T00:00:00.000Z", "2025-07-19T23:59:59.999Z"),
    ]
    assert [r["transaction_id"] for r in backfill.xcom("email_report")["requests"]] == [
        r.transaction_id for r in split
    ]
    assert emu.logins >= 1
    keys = emu.login_keys()
    output = quarter.output + backfill.output
    assert all(key not in output for key in keys) and emu.password not in output


def test_the_example_dag_parses_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access while parsing: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("AIRFLOW_CONN_MSGHISTORY_MESSANGI", raising=False)
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]  # Airflow 2
    bag = DagBag(str(EXAMPLE_DAGS / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    assert set(bag.dags[DAG_ID].task_ids) == {"email_report"}
