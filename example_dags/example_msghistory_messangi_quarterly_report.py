"""Messangi: a quarterly message report e-mailed as CSV to the operations team.

One task. Each run asks Messangi for the report of one calendar quarter ``[data_interval_start,
data_interval_end)`` and Messangi e-mails the CSV to the recipients: no link comes back, so there is nothing
to wait for or download; the task ends once every request is accepted, and its log says where the reports
will arrive. A quarter spans at most 92 days, Messangi's cap on one request; a longer window (a manual run
with ``start_datetime``/``end_datetime`` in the run's conf) is split into contiguous 92-day pieces, one
request each, and with several channels into one request per channel per piece. On Airflow >= 3.3 a retry
after a partial failure sends only the requests not yet accepted.

To land Messangi data in a lake, load its JSON message log instead (``MsgHistoryMessagesToStorageOperator``).

The connection ``msghistory_messangi`` (``conn_type`` ``msghistory``): host ``https://elastic.messangi.me``;
either the password alone = a platform API key, or login + password (the provider logs in at
``/kingslanding/login`` and reuses the 24 h key); extra ``{"vendor": "messangi", "report_emails":
["ops@acme.example"], "report_sender": "reports@acme.example"}`` (the operator's ``email_recipients`` and
``email_sender`` override them).

Parsing reads no Variable and makes no network call. Environment: ``MSGHISTORY_MESSANGI_CONN_ID``
overrides the connection id; ``MSGHISTORY_MESSANGI_CHANNELS`` (e.g. ``S,W``) asks for those channels
only, one report per channel; ``MSGHISTORY_MESSANGI_RECIPIENTS`` (comma-separated) and
``MSGHISTORY_MESSANGI_SENDER`` set the report's addresses instead of the connection's extras.
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

CONN_ID = os.environ.get("MSGHISTORY_MESSANGI_CONN_ID", "msghistory_messangi")
CHANNELS = [c.strip() for c in os.environ.get("MSGHISTORY_MESSANGI_CHANNELS", "").split(",") if c.strip()]
RECIPIENTS = [r.strip() for r in os.environ.get("MSGHISTORY_MESSANGI_RECIPIENTS", "").split(",") if r.strip()]
SENDER = os.environ.get("MSGHISTORY_MESSANGI_SENDER") or None
# The run's quarter, or a window from the run's conf (a manual back-fill of any length).
START = "{{ dag_run.conf.get('start_datetime') or data_interval_start.isoformat() }}"
END = "{{ dag_run.conf.get('end_datetime') or data_interval_end.isoformat() }}"
# A retry after a transient failure (5xx, network) sends only the reports not yet accepted (Airflow >= 3.3).
RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=1)}

with DAG(
    dag_id="example_msghistory_messangi_quarterly_report",
    schedule=CronDataIntervalTimetable("0 0 1 1,4,7,10 *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args=RETRIES,
    tags=["example", "msghistory", "messangi"],
    doc_md=__doc__,
):
    MsgHistoryExportOperator(
        task_id="email_report",
        export_type="message_history",
        vendor="messangi",  # parse-time checks use Messangi's rules (the connection may live in the DB)
        start_datetime=START,
        end_datetime=END,
        filters={"channel": CHANNELS} if CHANNELS else None,
        email_recipients=RECIPIENTS or None,
        email_sender=SENDER,
        msghistory_conn_id=CONN_ID,
    )
