"""The Airflow side of waiting for an export, shared by the operator, sensor and transfer.

Lives below them (``utils/``, not ``hooks/``: it builds a trigger, which no hook should import), so none
imports another's module: the wait itself is :mod:`airflow_provider_msghistory.client.waiting`; this turns
its outcomes into Airflow's terms (exceptions, the deferral to the trigger, the trigger's event read back).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_msghistory.client.errors import WaitFailedError
from airflow_provider_msghistory.client.waiting import ExportWaiter, wait_until_ready
from airflow_provider_msghistory.triggers.events import ExportEvent

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator

    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.models import ExportJob


def wait_in_worker(client: ExportClient, waiter: ExportWaiter, log: Any) -> ExportJob:
    """Poll from the worker until the export is ready; ``AirflowException`` on failure or timeout."""
    try:
        return wait_until_ready(client, waiter, log)
    except WaitFailedError as error:
        raise AirflowException(str(error)) from None


def defer_wait(
    task: BaseOperator, waiter: ExportWaiter, conn_id: str, *, cancel_on_kill: bool = False
) -> NoReturn:
    """Hand ``waiter``'s wait on to the triggerer: ``task`` resumes in ``execute_complete`` with the
    trigger's event (read it with :func:`finished_event`).

    :param task: the operator or sensor deferring.
    :param cancel_on_kill: the export is the task's own: cancel it when the task is killed or times out.
    """
    # Imported here: the trigger pulls in the async client, which a task needs only once it defers.
    from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

    # The trigger keeps the deadline itself; the deferral's timeout only guards against a lost triggerer.
    timeout = timedelta(seconds=max(waiter.remaining(time.time()), 0) + 5 * waiter.poll_interval + 60)
    task.defer(
        trigger=MsgHistoryExportTrigger.for_waiter(waiter, conn_id, cancel_on_kill=cancel_on_kill),
        method_name="execute_complete",
        timeout=timeout,
    )


def finished_event(
    payload: dict[str, Any] | None, timeout_error: type[Exception] = AirflowException
) -> ExportEvent:
    """The trigger's event of a successful wait; raises with the cause otherwise.

    :param payload: the event the task was resumed with.
    :param timeout_error: what a timed-out wait raises (a sensor's own timeout error).
    """
    try:
        event = ExportEvent.from_payload(payload)
    except ValueError as error:
        raise AirflowException(str(error)) from None
    if event.status == "success":
        return event
    if event.status == "timeout":
        raise timeout_error(f"waiting for export {event.export_id} timed out: {event.message}")
    raise AirflowException(f"waiting for export {event.export_id} failed: {event.message}")
