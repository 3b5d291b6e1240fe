"""Export yesterday's message history, delivery reports and the contacts, and wait until each is ready.

A data-interval timetable makes each run cover one full UTC day ``[data_interval_start, data_interval_end)``
(Airflow 3's plain ``schedule="@daily"`` is a CronTriggerTimetable whose interval is empty). Parsing this
file makes no network call and reads no Variable: the connection is looked up only when a task runs.

Environment knobs (read at parse time, so ``airflow dags test`` can switch modes):
``MSGHISTORY_EXAMPLE_DEFERRABLE`` (``true`` waits in the triggerer) and
``MSGHISTORY_EXAMPLE_POLL_INTERVAL`` (seconds, default 10).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG, CronDataIntervalTimetable, Param
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment]
    from airflow.models.param import Param  # type: ignore[assignment]
    from airflow.timetables.interval import CronDataIntervalTimetable  # type: ignore[assignment]

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator

DEFERRABLE = os.environ.get("MSGHISTORY_EXAMPLE_DEFERRABLE", "false").strip().lower() in ("1", "true", "yes")
POLL_INTERVAL = float(os.environ.get("MSGHISTORY_EXAMPLE_POLL_INTERVAL", "10"))

# Retries are what make a worker crash harmless: on Airflow >= 3.3 a retry of an export task reconnects
# to the export the crashed try submitted (kept in task_state_store) instead of submitting another, and a
# retry of a store task downloads again (a failed try leaves no partial file). Without retries, a crash
# fails the run.
RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=1)}

with DAG(
    dag_id="example_msghistory_exports",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    params={
        "campaign_id": Param("12345", type="string", description="Campaign for the delivery-reports export"),
        "list_ids": Param("1,2", type="string", description="Comma-separated contact lists to export"),
    },
    default_args={
        **RETRIES,
        "msghistory_conn_id": "msghistory_default",
        "deferrable": DEFERRABLE,
        "poll_interval": POLL_INTERVAL,
        "timeout": 3600,
    },
    tags=["example", "msghistory"],
    doc_md=__doc__,
) as dag:
    # The run's data interval: every message sent during the previous UTC day, none twice across runs.
    MsgHistoryExportOperator(task_id="export_message_history", export_type="message_history")

    # Delivery reports for the same day...
    MsgHistoryExportOperator(task_id="export_delivery_reports_of_day", export_type="delivery_reports")

    # ...or for one campaign, whatever its dates.
    MsgHistoryExportOperator(
        task_id="export_delivery_reports_of_campaign",
        export_type="delivery_reports",
        campaign_id="{{ params.campaign_id }}",
    )

    # Contacts take no window: the contacts of the given lists as they are now.
    MsgHistoryExportOperator(
        task_id="export_contacts",
        export_type="contacts",
        list_ids="{{ params.list_ids }}",
    )
