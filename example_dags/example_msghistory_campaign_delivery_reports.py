"""Delivery reports of one campaign, gzipped, on demand.

submit -> wait -> store. Trigger it with a ``campaign_id`` param (e.g. ``{"campaign_id": "12345"}``); the
file lands at ``<root>/delivery_reports/campaign=<id>/delivery_reports.csv.gz``. The XCom of ``store``
carries the SHA-256 and row count of the CSV before compression.

``<root>`` is the Airflow Variable ``msghistory_destination_root`` when set (read when the task runs), else
the environment variable ``MSGHISTORY_DESTINATION_ROOT``, else ``file:///tmp/msghistory``.
``MSGHISTORY_STORAGE_CONN_ID`` names the storage connection; ``MSGHISTORY_EXAMPLE_POLL_INTERVAL`` the
seconds between status polls (default 10).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]
    from airflow.models.param import Param  # type: ignore[assignment]

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

DEFAULT_ROOT = os.environ.get("MSGHISTORY_DESTINATION_ROOT", "file:///tmp/msghistory").rstrip("/")
ROOT = "{{ var.value.get('msghistory_destination_root', '" + DEFAULT_ROOT + "').rstrip('/') }}"
STORAGE_CONN_ID = os.environ.get("MSGHISTORY_STORAGE_CONN_ID") or None
POLL_INTERVAL = float(os.environ.get("MSGHISTORY_EXAMPLE_POLL_INTERVAL", "10"))
EXPORT_ID = "{{ ti.xcom_pull(task_ids='submit')['export_id'] }}"

# Retries are what make a worker crash harmless: on Airflow >= 3.3 a retry of an export task reconnects
# to the export the crashed try submitted (kept in task_state_store) instead of submitting another, and a
# retry of a store task downloads again (a failed try leaves no partial file). Without retries, a crash
# fails the run.
RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=1)}

with DAG(
    dag_id="example_msghistory_campaign_delivery_reports",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    params={"campaign_id": Param("12345", type="string", description="Campaign whose reports to export")},
    default_args=RETRIES,
    tags=["example", "msghistory"],
    doc_md=__doc__,
):
    # campaign_id alone scopes the export (no date window).
    submit = MsgHistoryExportOperator(
        task_id="submit",
        export_type="delivery_reports",
        campaign_id="{{ params.campaign_id }}",
        wait_for_completion=False,
    )
    wait = MsgHistoryExportSensor(task_id="wait", export_id=EXPORT_ID, poke_interval=POLL_INTERVAL)
    store = MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=EXPORT_ID,
        destination=f"{ROOT}/delivery_reports/campaign={{{{ params.campaign_id }}}}/delivery_reports.csv.gz",
        storage_conn_id=STORAGE_CONN_ID,
        compression="gzip",
        if_exists="replace",
        poll_interval=POLL_INTERVAL,
    )
    submit >> wait >> store
