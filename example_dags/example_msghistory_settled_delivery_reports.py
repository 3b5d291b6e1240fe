"""Settled delivery reports: every day restated for three days, one file per day, never going backwards.

submit -> wait -> store, daily. A delivery status changes after the day a message was sent (SENT becomes
DELIVERED minutes to days later, READ comes later still), so each run exports its day *and the three
before it* (``restate_days=3``) and rewrites each of those days' files whole:
``<root>/delivery_reports/date=YYYY-MM-DD/delivery_reports.csv`` (the day a message was sent, in
``PARTITION_TIMEZONE``), with ``delivery_reports.csv.manifest.json`` beside it (rows per status, snapshot
time, SHA-256). A day's file is final three days after the day ended; a run finishing out of order (a
backfill) never replaces a newer snapshot with an older one. See ``docs/settled-history.md``.

Where files land (parsing reads no Variable and makes no network call): ``<root>`` is the Airflow Variable
``msghistory_destination_root`` when set, else ``MSGHISTORY_DESTINATION_ROOT``, else
``file:///tmp/msghistory``. ``MSGHISTORY_STORAGE_CONN_ID`` names the storage connection;
``MSGHISTORY_PARTITION_TIMEZONE`` the zone of the days (default UTC; the DAG's schedule follows it);
``MSGHISTORY_EXAMPLE_POLL_INTERVAL`` the seconds between status polls (default 10).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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
PARTITION_TIMEZONE = os.environ.get("MSGHISTORY_PARTITION_TIMEZONE", "UTC")
POLL_INTERVAL = float(os.environ.get("MSGHISTORY_EXAMPLE_POLL_INTERVAL", "10"))
EXPORT_ID = "{{ ti.xcom_pull(task_ids='submit')['export_id'] }}"
# How many trailing days each run rewrites: a day's statuses are taken for the last time this many days
# after it ended (see docs/settled-history.md for choosing it).
RESTATE_DAYS = 3

with DAG(
    dag_id="example_msghistory_settled_delivery_reports",
    # Days of the partition time zone: each run's window starts at a local midnight, as its partitions do.
    schedule=CronDataIntervalTimetable("@daily", timezone=PARTITION_TIMEZONE),
    start_date=datetime(2025, 1, 1, tzinfo=ZoneInfo(PARTITION_TIMEZONE)),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["example", "msghistory"],
    doc_md=__doc__,
):
    # The export covers [data_interval_start - 3 days, data_interval_end); its id carries that window and
    # when the vendor was asked, which is all the store task needs.
    submit = MsgHistoryExportOperator(
        task_id="submit",
        export_type="delivery_reports",
        restate_days=RESTATE_DAYS,
        partition_timezone=PARTITION_TIMEZONE,
        wait_for_completion=False,
    )
    wait = MsgHistoryExportSensor(
        task_id="wait", export_id=EXPORT_ID, deferrable=True, poke_interval=POLL_INTERVAL, timeout=3600
    )
    store = MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=EXPORT_ID,
        destination=f"{ROOT}/delivery_reports/date={{partition}}/delivery_reports.csv",
        storage_conn_id=STORAGE_CONN_ID,
        partition_by="day",
        partition_timezone=PARTITION_TIMEZONE,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )
    submit >> wait >> store
