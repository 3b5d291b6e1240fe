"""A job-tracked wait (8x8) against one 429 with a long ``Retry-After``: the back-off is capped and the wait
still takes a last look before its deadline, so a job that is ready is not turned into a timeout (and a
cancelled job). Over HTTP against the 8x8 emulator, deferred and in the worker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from triggers.helpers import make_trigger, run_trigger

from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator

from .conftest import DAY1, DAY2

DEADLINE = 6.0  # seconds: far below the server's hour, and enough for a loaded machine's last look


def refuse_the_first_status_read_for_an_hour(emu: Any) -> None:
    emu.faults.retry_after = 3600
    emu.faults.script("status", [429])


def test_a_deferred_job_wait_takes_a_last_look_after_a_long_retry_after(make_emu: Any) -> None:
    emu = make_emu(export_delay=0.1)
    export_id = MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)
    refuse_the_first_status_read_for_an_hour(emu)
    trigger = make_trigger(export_id, poll_interval=0.2, end_time=time.time() + DEADLINE, cancel_on_kill=True)
    event, took = run_trigger(trigger)
    assert event["status"] == "success", event
    assert emu.faults.injected.get("429") == 1  # the hour was asked for, and not waited
    assert emu.cancelled_jobs == []
    assert took < DEADLINE


def test_a_job_wait_in_the_worker_takes_a_last_look_after_a_long_retry_after(make_emu: Any) -> None:
    emu = make_emu(export_delay=0.1)
    refuse_the_first_status_read_for_an_hour(emu)
    op = MsgHistoryExportOperator(
        task_id="export",
        export_type="message_history",
        start_datetime=DAY1,
        end_datetime=DAY2,
        poll_interval=0.2,
        timeout=DEADLINE,
        deferrable=False,
    )
    started = time.monotonic()
    try:
        export_id = op.execute({})
    except TaskDeferred:  # pragma: no cover - deferrable=False
        pytest.fail("the worker wait deferred")
    assert export_id and emu.faults.injected.get("429") == 1
    assert emu.cancelled_jobs == []
    assert time.monotonic() - started < DEADLINE + 2


def test_the_workers_cancel_on_kill_is_bounded_whatever_the_timeouts(
    make_emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msghistory.operators import export as operator_module

    emu = make_emu(export_delay=60)
    bound = 2.0  # the bound under test, shortened (20 s in production); the server takes 30 s
    monkeypatch.setattr(operator_module, "CANCEL_TIMEOUT", bound)
    op = MsgHistoryExportOperator(
        task_id="export", export_type="message_history", start_datetime=DAY1, end_datetime=DAY2
    )
    op._export_id = MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)
    emu.faults.script("cancel", ["slow:30"])  # the connection's read timeout (60 s) would wait it out
    started = time.monotonic()
    op.on_kill()
    took = time.monotonic() - started
    assert emu.faults.injected.get("slow") == 1  # the cancel reached the API
    assert took < bound + 5, took  # bounded: not the 30 s the server took
