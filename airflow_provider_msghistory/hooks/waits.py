"""The Airflow side of waiting for an export, shared by the operator, sensor and transfer.

Lives below them (``hooks/``), so none imports another's module: the wait itself is
:mod:`airflow_provider_msghistory.client.waiting`; this turns its outcomes into Airflow's terms (exceptions,
the trigger to defer to, the trigger's events).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_msghistory.client.errors import WaitFailedError
from airflow_provider_msghistory.client.waiting import ExportWaiter, wait_until_ready

if TYPE_CHECKING:
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.models import ExportJob
    from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger


def wait_in_worker(client: ExportClient, waiter: ExportWaiter, log: Any) -> ExportJob:
    """Poll from the worker until the export is ready; ``AirflowException`` on failure or timeout."""
    try:
        return wait_until_ready(client, waiter, log)
    except WaitFailedError as error:
        raise AirflowException(str(error)) from None


def export_trigger(
    waiter: ExportWaiter, conn_id: str, *, cancel_on_kill: bool = False
) -> MsgHistoryExportTrigger:
    """The trigger that carries ``waiter``'s wait on in the triggerer (deadline, hint, regenerations)."""
    from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

    return MsgHistoryExportTrigger(
        export_id=waiter.export_id,
        msghistory_conn_id=conn_id,
        poll_interval=waiter.poll_interval,
        end_time=waiter.deadline,
        max_regenerations=waiter.max_regenerations,
        page_hint=waiter.page_hint,
        regenerations=waiter.regenerations,
        page_size=waiter.page_size,
        fallback_page_size=waiter.fallback_page_size,
        cancel_on_kill=cancel_on_kill,
    )


def defer_timeout(waiter: ExportWaiter) -> timedelta:
    """The task's deferral timeout: the trigger keeps the deadline itself; this only guards against a
    lost triggerer."""
    return timedelta(seconds=max(waiter.remaining(time.time()), 0) + 5 * waiter.poll_interval + 60)


def raise_for_event(event: dict[str, Any] | None) -> str:
    """Return the export id of a success event; raise ``AirflowException`` with the cause otherwise."""
    if not event:
        raise AirflowException("the export trigger fired without an event")
    if event.get("status") == "success":
        return str(event["export_id"])
    kind = "timed out" if event.get("status") == "timeout" else "failed"
    raise AirflowException(f"waiting for export {event.get('export_id')} {kind}: {event.get('message')}")
