"""Airflow may run one trigger twice (HA triggerers, a reassignment): two triggerer-like event loops, each
in its own thread, on one connection, with every trigger duplicated in both and within each."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.triggers import export as trigger_module
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger
from triggers.helpers import make_trigger

DAY1, DAY2 = "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"


def in_two_loops(scenario: Callable[[int], Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run ``scenario(loop_number)`` in two event loops at once, each in its own thread (two triggerers)."""
    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            results[number] = asyncio.run(scenario(number))
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a loop did not finish within 60 s"
    if errors:
        raise errors[0]
    return results


async def first_event(trigger: MsgHistoryExportTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def copies(export_id: str, **kwargs: Any) -> list[MsgHistoryExportTrigger]:
    """Two copies of one trigger, as a triggerer rebuilds them from the same serialized kwargs."""
    original = make_trigger(export_id, **kwargs)
    return [original, type(original)(**original.serialize()[1])]


@pytest.fixture
def eight_emu(msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]) -> Any:
    emulator = msghistory_emulator_factory(vendor="8x8", export_delay=1.5)
    use_emulator(emulator, max_retry_time=10)
    return emulator


def test_duplicated_job_waits_cost_one_look_per_interval_per_loop(eight_emu: Any) -> None:
    client = MsgHistoryHook().get_client()
    export_ids = [client.submit_message_history_export(DAY1, DAY2) for _ in range(4)]
    eight_emu.clear_request_log()
    poll = 0.2

    async def triggerer(_: int) -> list[dict[str, Any]]:
        triggers = [t for e in export_ids for t in copies(e, poll_interval=poll, cancel_on_kill=True)]
        return await asyncio.gather(*(first_event(t) for t in triggers))

    started = time.monotonic()
    events = [event for loop_events in in_two_loops(triggerer) for event in loop_events]
    elapsed = time.monotonic() - started
    assert len(events) == 16 and all(e["status"] == "success" for e in events), events
    # Each loop looks at each job at most once per interval (plus the first look); twins share looks.
    ceiling = 2 * (math.ceil(elapsed / poll) + 1)
    for export_id in export_ids:
        job_id = ExportRef.parse(export_id).job_id
        looks = [r for r in eight_emu.request_log if r.method == "GET" and r.path.endswith(job_id)]
        assert len(looks) <= ceiling, f"{len(looks)} looks at one job in {elapsed:.1f}s (ceiling {ceiling})"
    assert eight_emu.cancelled_jobs == []


def test_a_killed_task_cancels_its_job_from_every_copy_without_an_error(
    eight_emu: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    export_id = MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)
    eight_emu.job(ExportRef.parse(export_id).job_id).ready_at = time.time() + 600
    monkeypatch.setattr(trigger_module, "_task_state", lambda ti: "failed")  # the user marked it failed
    monkeypatch.setattr(trigger_module, "ON_KILL_SUPPORTED", True)
    job_id = ExportRef.parse(export_id).job_id
    polled = threading.Barrier(2, timeout=30)

    async def triggerer(_: int) -> None:
        triggers = copies(export_id, poll_interval=0.05, cancel_on_kill=True)
        tasks = [asyncio.ensure_future(first_event(t)) for t in triggers]
        while not any(r.method == "GET" and r.path.endswith(job_id) for r in eight_emu.request_log):
            await asyncio.sleep(0.02)
        await asyncio.to_thread(polled.wait)  # both triggerers are waiting on the job
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(t.on_kill() for t in triggers))

    with caplog.at_level(logging.INFO):
        in_two_loops(triggerer)
    deletes = [r for r in eight_emu.request_log if r.method == "DELETE"]
    # Every copy cancels (none can know the others did); the later ones find it cancelled or gone.
    assert len(deletes) == 4 and deletes[0].status == 204 and {r.status for r in deletes} <= {204, 404}
    assert eight_emu.job(job_id).status == "cancelled"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "cancel" in r.getMessage()]


def test_duplicated_waits_on_an_expired_export_all_succeed_and_leave_it_downloadable(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> None:
    emulator = msghistory_emulator_factory(export_delay=0.5)
    use_emulator(emulator)
    with MsgHistoryHook().get_client() as client:
        export_id = client.submit_contacts_export()
    emulator.complete_export(export_id)
    emulator.expire_link(export_id)

    async def triggerer(_: int) -> list[dict[str, Any]]:
        return await asyncio.gather(*(first_event(t) for t in copies(export_id, poll_interval=0.1)))

    events = [event for loop_events in in_two_loops(triggerer) for event in loop_events]
    assert [e["status"] for e in events] == ["success"] * 4, events
    regenerations = [r for r in emulator.request_log if r.method == "POST" and r.path.endswith(export_id)]
    # One per loop at most (twins in a loop share the list read that saw it expired); a later copy finds
    # it no longer expired and leaves it alone.
    assert 1 <= len(regenerations) <= 2
    with MsgHistoryHook().get_client() as client:
        assert client.get_export(export_id).ready
        assert client.get_download_link(export_id).url
