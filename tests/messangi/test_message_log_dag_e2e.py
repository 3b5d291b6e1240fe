"""Messangi's daily message-log example through ``airflow dags test`` on two consecutive days: every
record once, the boundary records on the right side of midnight, with a login connection; parses offline."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "example_msghistory_messangi_daily_message_log"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
CHANNELS = ("S", "E", "P", "W", "R")


def test_two_consecutive_days_hold_every_record_once(
    msghistory_emulator_factory: Callable[..., Any], run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    emu = msghistory_emulator_factory(vendor="messangi", to_inclusive=True)
    env = {
        "MSGHISTORY_DESTINATION_ROOT": f"file://{tmp_path}",
        "MSGHISTORY_MESSANGI_CONN_ID": "msghistory_default",
    }
    days = {}
    # `dags test ... D` runs the data interval [D - 1 day, D)
    for day, logical_date, start, end in (
        ("2025-01-02", "2025-01-03", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"),
        ("2025-01-03", "2025-01-04", "2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z"),
    ):
        result = run_dag(DAG_ID, logical_date, conn_json=emu.airflow_conn_json(True), env=env)
        path = tmp_path / "messangi_mlog" / f"date={day}" / "mlog.jsonl.gz"
        records = [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]
        assert records == [r for ch in CHANNELS for r in emu.expected_records(start, end, ch)]
        assert result.xcom("load")["records"] == len(records)
        days[day] = records
    first = {r["id"] for r in days["2025-01-02"]}
    second = {r["id"] for r in days["2025-01-03"]}
    assert first and second and first.isdisjoint(second)
    assert any(r["createdAt"] == "2025-01-03T00:00:00.000Z" for r in days["2025-01-03"])


def test_the_example_dag_parses_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access while parsing: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]  # Airflow 2
    bag = DagBag(str(EXAMPLE_DAGS / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    assert set(bag.dags[DAG_ID].task_ids) == {"load"}
