"""Hourly message-list load to the lake: each hour's messages of every channel as JSON Lines.

One task pages the vendor's message list (Qlara ``GET /messages/history``) for the run's hour
``[data_interval_start, data_interval_end)`` and writes
``<root>/messages/date=YYYY-MM-DD/hour=HH/messages.jsonl.gz``. Consecutive hours share their boundary
and give every message once. Requests are paced under the API key's limit within a worker; across workers,
run the loads in a pool (``MSGHISTORY_POOL``, e.g. ``msghistory_api``) sized to the loads one key may run
at once (see the README).

Where files land (parsing reads no Variable and makes no network call):

- ``<root>`` is the Airflow Variable ``msghistory_destination_root`` when set (read when the task runs),
  else the environment variable ``MSGHISTORY_DESTINATION_ROOT``, else ``file:///tmp/msghistory``;
  e.g. ``s3://my-lake/msghistory``.
- ``MSGHISTORY_STORAGE_CONN_ID`` names the storage connection (e.g. an ``aws`` one); unset for local disk.
- ``MSGHISTORY_POOL`` names the pool (default ``default_pool``; create ``msghistory_api`` with as many slots
  as loads one API key may run at once and set it here).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[assignment]

from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

DEFAULT_ROOT = os.environ.get("MSGHISTORY_DESTINATION_ROOT", "file:///tmp/msghistory").rstrip("/")
ROOT = "{{ var.value.get('msghistory_destination_root', '" + DEFAULT_ROOT + "').rstrip('/') }}"
STORAGE_CONN_ID = os.environ.get("MSGHISTORY_STORAGE_CONN_ID") or None
POOL = os.environ.get("MSGHISTORY_POOL", "default_pool")
PARTITION = (
    "date={{ data_interval_start.strftime('%Y-%m-%d') }}/hour={{ data_interval_start.strftime('%H') }}"
)

with DAG(
    dag_id="example_msghistory_hourly_messages",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=2,
    tags=["example", "msghistory"],
    doc_md=__doc__,
):
    MsgHistoryMessagesToStorageOperator(
        task_id="load",
        destination=f"{ROOT}/messages/{PARTITION}/messages.jsonl.gz",
        storage_conn_id=STORAGE_CONN_ID,
        compression="gzip",
        if_exists="replace",  # a re-run of the hour replaces its file
        pool=POOL,
        retries=2,
        retry_delay=timedelta(minutes=1),
    )
