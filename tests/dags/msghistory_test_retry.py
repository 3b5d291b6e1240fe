"""Test-only DAG: one export task with a retry, to check what a retry does with the submitted export."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator

with DAG(
    dag_id="msghistory_test_retry",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
):
    MsgHistoryExportOperator(
        task_id="export",
        export_type="message_history",
        start_datetime="2025-01-01T00:00:00+00:00",
        end_datetime="2025-01-02T00:00:00+00:00",
        poll_interval=0.2,
        timeout=60,
        deferrable=False,
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
