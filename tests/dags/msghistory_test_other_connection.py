"""Test-only DAG: an export on one connection, its transfer on another (the mistake the transfer refuses)."""

from __future__ import annotations

from datetime import datetime, timezone

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

with DAG(
    dag_id="msghistory_test_other_connection",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
):
    export = MsgHistoryExportOperator(
        task_id="export",
        export_type="message_history",
        start_datetime="2025-01-01T00:00:00+00:00",
        end_datetime="2025-01-02T00:00:00+00:00",
        poll_interval=0.2,
        timeout=60,
        deferrable=False,
    )
    export >> MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id="{{ ti.xcom_pull(task_ids='export')['export_id'] }}",
        destination="{{ dag_run.conf['dest'] }}",
        msghistory_conn_id="msghistory_other",
        poll_interval=0.2,
        timeout=60,
        deferrable=False,
    )
