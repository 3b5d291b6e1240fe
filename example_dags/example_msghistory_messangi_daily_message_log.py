"""Messangi: yesterday's message log into the lake, every channel, as JSON Lines.

One task pages Messangi's JSON message log (``GET /v3/mlog``, the only route that brings Messangi data
into a lake; its CSV reports are e-mailed) for the run's day ``[data_interval_start, data_interval_end)``,
channel by channel (S, E, P, W, R), and writes ``<root>/messangi_mlog/date=YYYY-MM-DD/mlog.jsonl.gz``.
Messangi does not say whether ``to`` is inclusive, so each read covers the day to the millisecond on both
sides and the records are cut to the day by ``createdAt``: consecutive days hold every message once. A
window over 92 days (a back-fill) is read in 92-day pieces. The file appears only once complete.

The connection ``msghistory_messangi``: see ``example_msghistory_messangi_quarterly_report`` (no report
extras needed here).

Parsing reads no Variable and makes no network call. ``<root>`` is the Airflow Variable
``msghistory_destination_root`` when set (read when the task runs), else the environment variable
``MSGHISTORY_DESTINATION_ROOT``, else ``file:///tmp/msghistory``; ``MSGHISTORY_STORAGE_CONN_ID`` names the
storage connection (e.g. an ``aws`` one); ``MSGHISTORY_MESSANGI_CONN_ID`` overrides the connection id.
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
CONN_ID = os.environ.get("MSGHISTORY_MESSANGI_CONN_ID", "msghistory_messangi")
DAY = "{{ data_interval_start.strftime('%Y-%m-%d') }}"

with DAG(
    dag_id="example_msghistory_messangi_daily_message_log",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["example", "msghistory", "messangi"],
    doc_md=__doc__,
):
    MsgHistoryMessagesToStorageOperator(
        task_id="load",
        destination=f"{ROOT}/messangi_mlog/date={DAY}/mlog.jsonl.gz",
        storage_conn_id=STORAGE_CONN_ID,
        msghistory_conn_id=CONN_ID,
        compression="gzip",
        if_exists="replace",  # a re-run of the day replaces its file
    )
