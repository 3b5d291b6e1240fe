"""Daily report: yesterday's message history as a CSV in a date-partitioned folder.

submit -> wait -> store. Each run exports one full UTC day ``[data_interval_start, data_interval_end)``
(a data-interval timetable, so Airflow 2 and 3 agree on the window) and streams the CSV to
``<root>/message_history/date=YYYY-MM-DD/messages.csv``. Waiting happens in the triggerer.

Where files land (parsing reads no Variable and makes no network call):

- ``<root>`` is the Airflow Variable ``msghistory_destination_root`` when set (read when the task runs),
  else the environment variable ``MSGHISTORY_DESTINATION_ROOT``, else ``file:///tmp/msghistory``;
  e.g. ``s3://my-lake/msghistory``.
- ``MSGHISTORY_STORAGE_CONN_ID`` names the storage connection (e.g. an ``aws`` one); unset for local disk.
- ``MSGHISTORY_EXAMPLE_POLL_INTERVAL``: seconds between status polls (default 10).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[assignment]

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

DEFAULT_ROOT = os.environ.get("MSGHISTORY_DESTINATION_ROOT", "file:///tmp/msghistory").rstrip("/")
ROOT = "{{ var.value.get('msghistory_destination_root', '" + DEFAULT_ROOT + "').rstrip('/') }}"
STORAGE_CONN_ID = os.environ.get("MSGHISTORY_STORAGE_CONN_ID") or None
POLL_INTERVAL = float(os.environ.get("MSGHISTORY_EXAMPLE_POLL_INTERVAL", "10"))
EXPORT_ID = "{{ ti.xcom_pull(task_ids='submit')['export_id'] }}"
DAY = "{{ data_interval_start.strftime('%Y-%m-%d') }}"

# Retries are what make a worker crash harmless: on Airflow >= 3.3 a retry of an export task reconnects
# to the export the crashed try submitted (kept in task_state_store) instead of submitting another, and a
# retry of a store task downloads again (a failed try leaves no partial file). Without retries, a crash
# fails the run.
RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=1)}

with DAG(
    dag_id="example_msghistory_daily_report",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=RETRIES,
    tags=["example", "msghistory"],
    doc_md=__doc__,
):
    submit = MsgHistoryExportOperator(
        task_id="submit", export_type="message_history", wait_for_completion=False
    )
    wait = MsgHistoryExportSensor(
        task_id="wait", export_id=EXPORT_ID, deferrable=True, poke_interval=POLL_INTERVAL, timeout=3600
    )
    store = MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=EXPORT_ID,
        destination=f"{ROOT}/message_history/date={DAY}/messages.csv",
        storage_conn_id=STORAGE_CONN_ID,
        if_exists="replace",  # a re-run of the day replaces its file
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )
    submit >> wait >> store
