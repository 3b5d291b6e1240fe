"""The reporting example DAGs end to end: `airflow dags test` in a subprocess; emulator and S3 on loopback."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import AWS_CONN_ID, S3Server

pytestmark = pytest.mark.e2e

DAY = "2025-01-01"  # `dags test ... 2025-01-02` runs the data interval [Jan 1, Jan 2)


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any]) -> Any:
    return msghistory_emulator_factory(messages=3000, export_delay=0.5)


def dag_env(root: str, **extra: str) -> dict[str, str]:
    return {"MSGHISTORY_DESTINATION_ROOT": root, "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "0.5", **extra}


def only_export(emulator: Any) -> str:
    (export_id,) = emulator.exports
    return export_id


def test_daily_report_to_local_disk(run_dag: Callable[..., Any], emu: Any, tmp_path: Path) -> None:
    result = run_dag(
        "example_msghistory_daily_report",
        "2025-01-02",
        conn_json=emu.airflow_conn_json(),
        env=dag_env(tmp_path.as_uri()),
    )

    export_id = only_export(emu)
    submitted, stored = result.xcom("submit"), result.xcom("store")
    dest = tmp_path / "message_history" / f"date={DAY}" / "messages.csv"
    assert submitted["window"] == {"start": f"{DAY}T00:00:00.000+00:00", "end": f"{DAY}T23:59:59.999+00:00"}
    assert stored["path"] == f"file://{dest}"
    assert dest.read_bytes() == emu.export_csv(export_id)
    assert stored["sha256"] == emu.export_sha256(export_id)
    assert stored["rows"] == len(emu.expected_history(f"{DAY}T00:00:00Z", f"{DAY}T23:59:59.999Z")) > 0
    assert sorted(p.name for p in dest.parent.iterdir()) == ["messages.csv"]
    assert not any(r.had_auth for r in emu.request_log if r.server == "storage")


def test_daily_report_to_s3(run_dag: Callable[..., Any], emu: Any, s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    env = dag_env(
        f"s3://{bucket}/reports",
        MSGHISTORY_STORAGE_CONN_ID=AWS_CONN_ID,
        **{f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": s3_server.conn_json},
    )

    conn = emu.airflow_conn_json()
    result = run_dag("example_msghistory_daily_report", "2025-01-02", conn_json=conn, env=env)

    key = f"reports/message_history/date={DAY}/messages.csv"
    export_id = only_export(emu)
    assert result.xcom("store")["path"] == f"s3://{bucket}/{key}"
    assert s3_server.read(bucket, key) == emu.export_csv(export_id)
    assert result.xcom("store")["sha256"] == emu.export_sha256(export_id)
    assert s3_server.keys(bucket) == [key]


def test_campaign_delivery_reports_gzipped(run_dag: Callable[..., Any], emu: Any, tmp_path: Path) -> None:
    result = run_dag(
        "example_msghistory_campaign_delivery_reports",
        "2025-01-02",
        conn_json=emu.airflow_conn_json(),
        conf={"campaign_id": "1004"},
        env=dag_env(tmp_path.as_uri()),
    )

    export_id = only_export(emu)
    dest = tmp_path / "delivery_reports" / "campaign=1004" / "delivery_reports.csv.gz"
    assert gzip.decompress(dest.read_bytes()) == emu.export_csv(export_id)
    assert result.xcom("store")["sha256"] == emu.export_sha256(export_id)
    assert emu.export(export_id).params.get("campaignId") in ("1004", 1004)
