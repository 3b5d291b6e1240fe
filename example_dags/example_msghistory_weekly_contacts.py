"""Weekly contacts snapshot: every contact, as a CSV that replaces last week's.

submit -> wait -> store. The destination is static (``<root>/contacts/contacts.csv``), so the store task
declares it as an outlet Asset (a Dataset on Airflow 2): DAGs scheduled on that asset run after each
refresh.

``<root>`` is the environment variable ``MSGHISTORY_DESTINATION_ROOT`` (read at parse time, so the asset's
URI is known), else ``file:///tmp/msghistory``. ``MSGHISTORY_STORAGE_CONN_ID`` names the storage
connection; ``MSGHISTORY_EXAMPLE_POLL_INTERVAL`` the seconds between status polls (default 10).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

ROOT = os.environ.get("MSGHISTORY_DESTINATION_ROOT", "file:///tmp/msghistory").rstrip("/")
STORAGE_CONN_ID = os.environ.get("MSGHISTORY_STORAGE_CONN_ID") or None
POLL_INTERVAL = float(os.environ.get("MSGHISTORY_EXAMPLE_POLL_INTERVAL", "10"))
EXPORT_ID = "{{ ti.xcom_pull(task_ids='submit')['export_id'] }}"

# Retries are what make a worker crash harmless: on Airflow >= 3.3 a retry of an export task reconnects
# to the export the crashed try submitted (kept in task_state_store) instead of submitting another, and a
# retry of a store task downloads again (a failed try leaves no partial file). Without retries, a crash
# fails the run.
RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=1)}

with DAG(
    dag_id="example_msghistory_weekly_contacts",
    schedule="@weekly",
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=RETRIES,
    tags=["example", "msghistory"],
    doc_md=__doc__,
):
    # No list_ids / contact_ids: every contact of the account.
    submit = MsgHistoryExportOperator(task_id="submit", export_type="contacts", wait_for_completion=False)
    wait = MsgHistoryExportSensor(task_id="wait", export_id=EXPORT_ID, poke_interval=POLL_INTERVAL)
    store = MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=EXPORT_ID,
        destination=f"{ROOT}/contacts/contacts.csv",
        storage_conn_id=STORAGE_CONN_ID,
        if_exists="replace",
        poll_interval=POLL_INTERVAL,
    )
    submit >> wait >> store
