"""The hourly message-list example DAG: parses offline; two consecutive hours end to end with
`airflow dags test` against the emulator, every message once."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .test_example_dags_parse import load, offline  # noqa: F401  (a fixture)

DAG_ID = "example_msghistory_hourly_messages"
FILE = "example_msghistory_hourly_messages.py"


@pytest.mark.usefixtures("offline")
def test_parses_offline_with_a_templated_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSGHISTORY_DESTINATION_ROOT", "s3://lake/msghistory/")
    monkeypatch.setenv("MSGHISTORY_POOL", "msghistory_api")
    dag = load(FILE).dags[DAG_ID]

    task = dag.get_task("load")
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert "hour={{ data_interval_start.strftime('%H') }}" in task.destination
    assert task.outlets == [] and task.pool == "msghistory_api"
    assert (task.format, task.compression, task.if_exists) == ("jsonl", "gzip", "replace")


@pytest.mark.e2e
def test_two_consecutive_hours_give_every_message_once(
    run_dag: Callable[..., Any], msghistory_emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    emu = msghistory_emulator_factory(messages=20_000)
    env = {"MSGHISTORY_DESTINATION_ROOT": tmp_path.as_uri()}
    files = []
    for hour in ("00", "01"):
        # `dags test <logical date>` runs the hour that ends at it.
        result = run_dag(
            DAG_ID, f"2025-01-03T{int(hour) + 1:02d}:00:00+00:00", conn_json=emu.airflow_conn_json(), env=env
        )
        path = tmp_path / "messages" / "date=2025-01-03" / f"hour={hour}" / "messages.jsonl.gz"
        files.append([json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()])
        stored = result.xcom("load")
        assert stored["path"] == f"file://{path}" and stored["records"] == len(files[-1])

    first = 1735862400000  # 2025-01-03T00:00:00Z
    for records, offset in zip(files, (0, 3_600_000), strict=True):
        want = [
            m.to_json()
            for channel in ("SMS", "RCS", "WHATSAPP")
            for m in emu.dataset.channel_range(channel, first + offset, first + offset + 3_599_999)
        ]
        assert records == want and records
    ids = [m["messageId"] for records in files for m in records]
    assert len(ids) == len(set(ids))
    # The dataset's midnight message of every channel opens the first hour, never the day before's file.
    assert sum(m["sendDate"] == "2025-01-03T00:00:00.000Z" for m in files[0]) == 3
