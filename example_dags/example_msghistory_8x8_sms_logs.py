"""8x8: yesterday's SMS logs into the lake, one CSV per day.

export (deferrable) -> store. Each run exports one full UTC day ``[data_interval_start,
data_interval_end)`` from 8x8's log export jobs and stores one CSV at
``<root>/8x8_sms_logs/date=YYYY-MM-DD/sms_logs.csv``, however many files the job yields (parts are merged,
the header kept once, gzip/zip parts unpacked). 8x8 takes whole seconds and does not say whether ``to`` is
inclusive, so the job covers a little more than the day and the transfer keeps only the rows whose
``createdat`` lies inside it: consecutive days hold every message once. The transfer learns the day from
the export id in the XCom; nothing else is wired.

The connection ``msghistory_8x8`` (``conn_type`` ``msghistory``): host = the product/region base URL, e.g.
``https://sms.8x8.com``; password = the API key; extra ``{"vendor": "8x8", "sub_account_id": "<id>"}``.
A killed task cancels its 8x8 job.

Where files land (parsing reads no Variable and makes no network call):

- ``<root>`` is the Airflow Variable ``msghistory_destination_root`` when set (read when the task runs),
  else the environment variable ``MSGHISTORY_DESTINATION_ROOT``, else ``file:///tmp/msghistory``.
- ``MSGHISTORY_STORAGE_CONN_ID`` names the storage connection (e.g. an ``aws`` one); unset for local disk.
- ``MSGHISTORY_8X8_CONN_ID`` overrides the connection id; ``MSGHISTORY_EXAMPLE_POLL_INTERVAL`` the poll
  interval in seconds (default 10); ``MSGHISTORY_8X8_COUNTRIES`` (e.g. ``SG,US``) filters by country;
  ``MSGHISTORY_EXAMPLE_DEFERRABLE=false`` waits in the worker instead of the triggerer.
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
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

DEFAULT_ROOT = os.environ.get("MSGHISTORY_DESTINATION_ROOT", "file:///tmp/msghistory").rstrip("/")
ROOT = "{{ var.value.get('msghistory_destination_root', '" + DEFAULT_ROOT + "').rstrip('/') }}"
STORAGE_CONN_ID = os.environ.get("MSGHISTORY_STORAGE_CONN_ID") or None
CONN_ID = os.environ.get("MSGHISTORY_8X8_CONN_ID", "msghistory_8x8")
POLL_INTERVAL = float(os.environ.get("MSGHISTORY_EXAMPLE_POLL_INTERVAL", "10"))
DEFERRABLE = os.environ.get("MSGHISTORY_EXAMPLE_DEFERRABLE", "true").strip().lower() != "false"
COUNTRIES = [c for c in os.environ.get("MSGHISTORY_8X8_COUNTRIES", "").split(",") if c.strip()]
DAY = "{{ data_interval_start.strftime('%Y-%m-%d') }}"
# A retry reconnects to the job a crashed try submitted (Airflow >= 3.3) or downloads again: give both.
RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=1)}

with DAG(
    dag_id="example_msghistory_8x8_sms_logs",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=RETRIES,
    tags=["example", "msghistory", "8x8"],
    doc_md=__doc__,
):
    export = MsgHistoryExportOperator(
        task_id="export",
        export_type="message_history",
        vendor="8x8",  # the parse-time checks use 8x8's rules (the connection may live in the database)
        filters={"countries": COUNTRIES} if COUNTRIES else None,
        msghistory_conn_id=CONN_ID,
        deferrable=DEFERRABLE,
        poll_interval=POLL_INTERVAL,
        timeout=3 * 3600,
    )
    store = MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id="{{ ti.xcom_pull(task_ids='export')['export_id'] }}",
        destination=f"{ROOT}/8x8_sms_logs/date={DAY}/sms_logs.csv",
        storage_conn_id=STORAGE_CONN_ID,
        msghistory_conn_id=CONN_ID,
        if_exists="replace",  # a re-run of the day replaces its file
        on_empty="write",  # a quiet day still gets its (header-only) file
    )
    export >> store
