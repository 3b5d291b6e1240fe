"""Drive the real pipeline in-process: export operator -> trigger (maybe restarted) -> transfer operator.

Everything an Airflow worker and triggerer would do, minus the scheduler: ``execute`` until it defers, the
trigger's ``run()`` in an event loop of its own, the event through JSON, ``execute_complete`` on a *fresh*
operator instance (Airflow rebuilds the task after a deferral). A triggerer restart is a cancelled
``run()`` followed by a trigger rebuilt from ``serialize()`` in a new event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import TaskDeferred
from state_store import DictStateStore

from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

from .schedules import (
    DOWNLOAD_ATTEMPTS,
    MAX_REGENERATIONS,
    POLL_INTERVAL,
    TRANSFER_TIMEOUT,
    Schedule,
)

# A trigger still running this long after the deadline its operator set is looping: stop it and report.
TRIGGER_OVERRUN = 15.0


@dataclass
class Outcome:
    """What one run did.

    :param export_xcom: the export task's return value (``None`` if it failed).
    :param result: the transfer task's return value (``None`` if it failed or never ran).
    :param error: the exception the failing task raised.
    :param phase: ``"export"`` or ``"transfer"`` (where it failed) or ``"done"``.
    :param triggers: every trigger built (originals and rebuilt ones), in order.
    :param run_seconds: how long each of ``triggers`` ran.
    :param rebuilds: ``(killed, rebuilt)`` pairs: trigger restarts (killed while still waiting).
    :param events: trigger events as the operators received them.
    :param overruns: triggers that ran past their operator's deadline (stopped by the harness).
    :param elapsed: seconds per phase.
    """

    export_xcom: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    phase: str = "done"
    triggers: list[MsgHistoryExportTrigger] = field(default_factory=list)
    run_seconds: list[float] = field(default_factory=list)
    rebuilds: list[tuple[MsgHistoryExportTrigger, MsgHistoryExportTrigger]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    overruns: int = 0
    elapsed: dict[str, float] = field(default_factory=dict)


def export_operator(schedule: Schedule) -> MsgHistoryExportOperator:
    day = schedule.day
    return MsgHistoryExportOperator(
        task_id="export",
        export_type="message_history",
        start_datetime=f"2025-01-{day:02d}T00:00:00+00:00",
        end_datetime=f"2025-01-{day + 1:02d}T00:00:00+00:00",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=schedule.export_timeout,
        max_regenerations=MAX_REGENERATIONS,
    )


def transfer_operator(export_id: str, destination: Path) -> MsgHistoryExportToStorageOperator:
    return MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=export_id,  # rendered from the export task's XCom
        destination=destination.as_uri(),
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=TRANSFER_TIMEOUT,
        max_attempts=DOWNLOAD_ATTEMPTS,
        max_regenerations=MAX_REGENERATIONS,
    )


def rebuild(trigger: MsgHistoryExportTrigger) -> MsgHistoryExportTrigger:
    """A trigger as a new triggerer builds it: classpath and kwargs from the DB (JSON) only."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**json.loads(json.dumps(kwargs)))


async def _first_event(
    trigger: MsgHistoryExportTrigger, kill_after: float | None, deadline: float
) -> tuple[dict[str, Any] | None, bool]:
    """The trigger's first event payload; ``(None, True)`` when killed after ``kill_after`` seconds,
    ``(None, False)`` when it was still running ``TRIGGER_OVERRUN`` s past ``deadline``."""
    events = trigger.run()
    task = asyncio.ensure_future(events.__anext__())
    overrun = deadline - time.time() + TRIGGER_OVERRUN
    kill = kill_after is not None and kill_after < overrun
    done, _ = await asyncio.wait({task}, timeout=kill_after if kill else overrun)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await events.aclose()
        return None, kill
    return task.result().payload, False


def _run_once(
    trigger: MsgHistoryExportTrigger, kill_after: float | None, deadline: float, outcome: Outcome
) -> tuple[dict[str, Any] | None, bool]:
    outcome.triggers.append(trigger)
    started = time.monotonic()
    try:
        return asyncio.run(_first_event(trigger, kill_after, deadline))  # a fresh loop: a new triggerer
    finally:
        outcome.run_seconds.append(time.monotonic() - started)


def run_trigger(
    trigger: MsgHistoryExportTrigger, kill_after: float | None, outcome: Outcome
) -> dict[str, Any]:
    """Run ``trigger`` as a triggerer would; kill and rebuild it after ``kill_after`` s if still waiting.

    The overrun guard counts from the deadline the operator set, not from what a rebuilt trigger claims.
    """
    deadline = trigger.end_time
    event, was_killed = _run_once(trigger, kill_after, deadline, outcome)
    if was_killed:  # the triggerer died mid-wait; another one rebuilds the trigger from the DB and goes on
        killed, trigger = trigger, rebuild(trigger)
        outcome.rebuilds.append((killed, trigger))
        event, _ = _run_once(trigger, None, deadline, outcome)
    if event is None:
        outcome.overruns += 1
        event = {"status": "error", "export_id": trigger.export_id, "message": "harness: trigger overran"}
    event = json.loads(json.dumps(event))  # events reach the task through the metadata DB
    outcome.events.append(event)
    return event


def run_pipeline(schedule: Schedule, destination: Path, on_export_done: Any) -> Outcome:
    """Run the export task, then (if it succeeded) the transfer task, the way Airflow would.

    :param on_export_done: called with the export id between the two tasks (e.g. to expire the link).
    """
    outcome = Outcome()
    context: dict[str, Any] = {"task_state_store": DictStateStore()}
    started = time.monotonic()
    try:
        try:
            outcome.export_xcom = export_operator(schedule).execute(context)
        except TaskDeferred as deferred:
            event = run_trigger(deferred.trigger, schedule.restart_export_after, outcome)
            outcome.export_xcom = export_operator(schedule).execute_complete(context, event)
    except Exception as error:
        outcome.error, outcome.phase = error, "export"
        return outcome
    finally:
        outcome.elapsed["export"] = time.monotonic() - started

    export_id = outcome.export_xcom["export_id"]
    on_export_done(export_id)
    started = time.monotonic()
    try:
        try:
            outcome.result = transfer_operator(export_id, destination).execute(context)
        except TaskDeferred as deferred:
            event = run_trigger(deferred.trigger, schedule.restart_transfer_after, outcome)
            outcome.result = transfer_operator(export_id, destination).execute_complete(context, event)
    except Exception as error:
        outcome.error, outcome.phase = error, "transfer"
    finally:
        outcome.elapsed["transfer"] = time.monotonic() - started
    return outcome
