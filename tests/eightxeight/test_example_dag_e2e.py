"""The 8x8 example DAG through ``airflow dags test`` on two consecutive days: every message once, the
rows at 23:59:59.999 and 00:00:00.000 on the right side of midnight, deferrable and in the worker; and the
DAG parses offline."""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "example_msghistory_8x8_sms_logs"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("deferrable", ["true", "false"])
def test_two_consecutive_days_hold_every_message_once(
    msghistory_emulator_factory: Callable[..., Any],
    run_dag: Callable[..., Any],
    tmp_path: Path,
    deferrable: str,
) -> None:
    # to_inclusive: the emulator reads `to` as covering its whole second, so a naive export of the first
    # day would also hold the next day's 00:00:00.000 row.
    emu = msghistory_emulator_factory(
        vendor="8x8", export_delay=0.5, parts=3, gzip_parts=[2], to_inclusive=True
    )
    env = {
        "MSGHISTORY_DESTINATION_ROOT": f"file://{tmp_path}",
        "MSGHISTORY_8X8_CONN_ID": "msghistory_default",
        "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "0.2",
        "MSGHISTORY_EXAMPLE_DEFERRABLE": deferrable,
    }
    days = {}
    # `dags test ... D` runs the data interval [D - 1 day, D)
    for day, logical_date, start, end in (
        ("2025-01-02", "2025-01-03", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"),
        ("2025-01-03", "2025-01-04", "2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z"),
    ):
        result = run_dag(DAG_ID, logical_date, conn_json=emu.airflow_conn_json(), env=env)
        stored = (tmp_path / "8x8_sms_logs" / f"date={day}" / "sms_logs.csv").read_bytes()
        assert stored == emu.expected_csv(start, end)  # byte for byte: multi-line bodies intact
        xcom = result.xcom("store")
        assert xcom["parts"] == 3 and xcom["rows"] == len(rows(stored)) and xcom["dropped_rows"] > 0
        days[day] = rows(stored)

    first = {r["umid"] for r in days["2025-01-02"]}
    second = {r["umid"] for r in days["2025-01-03"]}
    assert first and second and not first & second
    both = {r["umid"] for r in emu.expected_rows("2025-01-02T00:00:00Z", "2025-01-04T00:00:00Z")}
    assert first | second == both  # no gap, no duplicate
    assert any(r["createdat"] == "2025-01-02T23:59:59.999Z" for r in days["2025-01-02"])
    assert any(r["createdat"] == "2025-01-03T00:00:00.000Z" for r in days["2025-01-03"])
    assert not any(r["createdat"].startswith("2025-01-03") for r in days["2025-01-02"])
    assert len(emu.jobs) == 2 and not emu.cancelled_jobs


def test_the_example_dag_parses_offline_with_8x8_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access while parsing: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("AIRFLOW_CONN_MSGHISTORY_8X8", raising=False)
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]  # Airflow 2
    bag = DagBag(str(EXAMPLE_DAGS / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    assert dag.get_task("store").upstream_task_ids == {"export"}
    export = dag.get_task("export")
    assert export.vendor == "8x8" and export.deferrable
