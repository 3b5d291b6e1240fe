"""Job-tracked looks are admitted in order, a bounded number in flight and started per loop iteration; the
collector walks only what is new while waits run, and is restored when the last one leaves."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.triggers import _gc, _shared_poll
from triggers.helpers import make_trigger, run_trigger

DAY1, DAY2 = "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"


class Iterations:
    """Counts the event loop's iterations: a callback that schedules itself again runs once per iteration."""

    def __init__(self) -> None:
        self.count = 0
        self._running = True

    def start(self) -> None:
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        if self._running:
            asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._running = False


@pytest.fixture
def done_jobs(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> list[str]:
    """120 8x8 jobs, all finished: every wait's first look is due at once and sees its job done."""
    emulator = msghistory_emulator_factory(vendor="8x8", export_delay=0.1)
    use_emulator(emulator, max_retry_time=10)
    with MsgHistoryHook().get_client() as client:
        export_ids = [client.submit_message_history_export(DAY1, DAY2) for _ in range(120)]
    for export_id in export_ids:
        emulator.job(ExportRef.parse(export_id).job_id).ready_at = time.time() - 1
    return export_ids


def test_looks_due_together_start_a_few_per_loop_iteration_and_a_pool_at_most(
    done_jobs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    iterations = Iterations()
    started_in: list[int] = []
    in_flight = [0, 0]  # now, the most seen
    look = _shared_poll._OwnPoll._look

    async def counted_look(self: Any) -> Any:
        started_in.append(iterations.count)
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            return await look(self)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(_shared_poll._OwnPoll, "_look", counted_look)

    async def triggerer() -> list[dict[str, Any]]:
        iterations.start()
        # A poll interval of 10 ms: every first look falls due within the first few iterations.
        triggers = [make_trigger(e, poll_interval=0.01) for e in done_jobs]
        try:
            return await asyncio.gather(*(first_event(t) for t in triggers))
        finally:
            iterations.stop()

    events = asyncio.run(triggerer())
    assert [e["status"] for e in events] == ["success"] * 120
    assert len(started_in) == 120  # one look each: every job was done
    per_iteration = max(started_in.count(n) for n in set(started_in))
    assert per_iteration <= _shared_poll.LOOKS_PER_ITERATION, f"{per_iteration} started in one iteration"
    assert in_flight[1] <= _shared_poll.ASYNC_POOL


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_the_gate_admits_in_order_and_a_cancelled_wait_takes_no_slot() -> None:
    async def scenario() -> tuple[list[int], int]:
        gate = _shared_poll._LookGate(2)
        admitted: list[int] = []
        release = asyncio.Event()

        async def look(number: int) -> None:
            async with gate.slot():
                admitted.append(number)
                await release.wait()

        tasks = [asyncio.ensure_future(look(n)) for n in range(40)]
        while len(admitted) < 2:
            await asyncio.sleep(0)
        tasks[5].cancel()  # still queued
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return admitted, gate.in_flight

    admitted, in_flight = asyncio.run(scenario())
    assert admitted == [n for n in range(40) if n != 5]
    assert in_flight == 0


def test_while_waits_run_full_collections_freeze_their_survivors_and_the_last_wait_unfreezes(
    done_jobs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.unfreeze()
    freeze_counts: list[int] = []
    look = _shared_poll._OwnPoll._look

    async def observed_look(self: Any) -> Any:
        if not freeze_counts:  # inside the first wait's first look
            freeze_counts.append(gc.get_freeze_count())
            survivors = [[] for _ in range(5_000)]  # allocated after the freeze
            gc.collect()
            freeze_counts.append(gc.get_freeze_count())
            del survivors
        return await look(self)

    monkeypatch.setattr(_shared_poll._OwnPoll, "_look", observed_look)

    async def triggerer() -> list[dict[str, Any]]:
        return await asyncio.gather(*(first_event(make_trigger(e)) for e in done_jobs[:3]))

    try:
        assert [e["status"] for e in asyncio.run(triggerer())] == ["success"] * 3
        assert freeze_counts[0] > 10_000  # what was alive when the first wait started: the modules, at least
        assert freeze_counts[1] >= freeze_counts[0] + 5_000  # a full collection's survivors: frozen
        assert gc.get_freeze_count() == 0  # the last wait left: nothing stays frozen
        assert _gc._after_collection not in gc.callbacks
    finally:
        gc.unfreeze()


def test_a_wait_that_cannot_start_leaves_the_collector_as_it_was(done_jobs: list[str]) -> None:
    gc.unfreeze()
    payload, _ = run_trigger(make_trigger(done_jobs[0], msghistory_conn_id="no_such_connection"))
    assert payload["status"] == "error"
    assert gc.get_freeze_count() == 0
    assert _gc._waits == 0 and _gc._after_collection not in gc.callbacks


def test_frozen_objects_grown_past_the_bound_are_walked_by_the_next_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gc.unfreeze()
    try:
        _gc.enter()
        monkeypatch.setattr(_gc, "_checked_at", time.monotonic() - _gc.CHECK_EVERY)
        cycles: list[list[Any]] = []
        for _ in range(5_000):  # alive at a full collection, so frozen; garbage cycles once dropped
            cycle: list[Any] = []
            cycle.append(cycle)
            cycles.append(cycle)
        monkeypatch.setattr(_gc, "_base", 1_000)  # as if the heap had been much smaller at the last walk
        gc.collect()
        assert gc.get_freeze_count() == 0 and _gc._base is None  # grown past GROWTH: all unfrozen
        del cycles, cycle
        assert gc.collect() >= 5_000  # the next full collection walks the whole heap: the cycles go
        assert _gc._base is not None and gc.get_freeze_count() > 0  # its survivors: frozen, the new base
    finally:
        _gc.leave()
        gc.unfreeze()


def test_the_collector_is_restored_only_when_the_last_of_nested_waits_leaves() -> None:
    gc.unfreeze()
    try:
        _gc.enter()
        _gc.enter()
        assert gc.get_freeze_count() > 0
        _gc.leave()
        assert gc.get_freeze_count() > 0 and _gc._after_collection in gc.callbacks
        _gc.leave()
        assert gc.get_freeze_count() == 0 and _gc._after_collection not in gc.callbacks
    finally:
        gc.unfreeze()
