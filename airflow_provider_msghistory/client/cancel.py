"""Cancelling an export while its task is being killed: bounded in time whatever the connection's timeouts.

Airflow gives ``on_kill`` about 30 s before it kills the task outright; with the default timeouts (60 s
reads, 300 s calls, 120 s of retries) one slow cancel call would outlast that. The trigger bounds its
async cancel by cancelling the coroutine; the worker's sync cancel runs on a client of its own whose
timeouts fit :data:`CANCEL_TIMEOUT`, in a thread it stops waiting for at that bound.
"""

from __future__ import annotations

import dataclasses
import threading

from airflow_provider_msghistory.client.api import ExportClient
from airflow_provider_msghistory.client.config import ClientConfig

#: seconds a cancel may take in all (Airflow bounds on_kill at about 30 s)
CANCEL_TIMEOUT = 20.0


def cancel_config(config: ClientConfig, timeout: float = CANCEL_TIMEOUT) -> ClientConfig:
    """``config`` with timeouts and retries that fit one cancel into ``timeout`` seconds."""
    return dataclasses.replace(
        config,
        connect_timeout=min(config.connect_timeout, timeout / 4),
        read_timeout=min(config.read_timeout, timeout / 2),
        call_timeout=min(config.call_timeout, timeout / 2),
        max_attempts=min(config.max_attempts, 2),
        max_retry_time=min(config.max_retry_time, timeout / 4),
    )


def cancel_within(config: ClientConfig, export_id: str, timeout: float = CANCEL_TIMEOUT) -> bool:
    """Cancel ``export_id`` (the vendor must have ``caps.cancel``), giving up waiting after ``timeout`` s.

    :returns: ``True`` once the cancel call completed (an export already gone included); ``False`` when it
        did not finish in time (it may still complete; the task is being killed anyway).
    :raises: what the cancel call raised.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with ExportClient(cancel_config(config, timeout)) as client:
                client.cancel_export(export_id)
        except BaseException as error:  # handed to the caller's thread
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, name="msghistory-cancel", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return False
    if outcome[0] is not None:
        raise outcome[0]
    return True
