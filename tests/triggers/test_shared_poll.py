"""Triggers of one connection in one event loop share the export-list poll and the API client.

Against the emulator over loopback HTTP; the shared state is looked at through the module's registry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.triggers import _shared_poll
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger
from triggers.helpers import make_trigger

CONN_ID = "msghistory_default"


def submit(emulator: Any, count: int) -> list[str]:
    with MsgHistoryHook().get_client() as client:
        return [client.submit_contacts_export() for _ in range(count)]


def list_requests(emulator: Any) -> list[Any]:
    return [r for r in emulator.request_log if r.method == "GET" and r.path.endswith("/exports")]


def poller(page_size: int) -> _shared_poll._Poller:
    return _shared_poll._shares[asyncio.get_running_loop()][CONN_ID].pollers[page_size]


def start(trigger: MsgHistoryExportTrigger) -> asyncio.Task[dict[str, Any]]:
    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return asyncio.ensure_future(first_event())


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.01)


def no_share_left() -> bool:
    return not _shared_poll._shares.get(asyncio.get_running_loop())


def run_to_events(triggers: list[MsgHistoryExportTrigger]) -> list[dict[str, Any]]:
    """Run ``triggers`` together in one event loop to their events; nothing shared may be left after."""

    async def scenario() -> list[dict[str, Any]]:
        events = await asyncio.gather(*(start(trigger) for trigger in triggers))
        assert no_share_left()
        return events

    return asyncio.run(scenario())


@pytest.fixture
def slow_emu(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> Iterator[Any]:
    """An emulator whose exports stay pending until a test completes them."""
    emulator = msghistory_emulator_factory(export_delay=600)
    use_emulator(emulator)
    yield emulator


def test_triggers_of_one_connection_share_each_list_read(slow_emu: Any) -> None:
    export_ids = submit(slow_emu, 5)
    slow_emu.clear_request_log()

    async def scenario() -> tuple[list[dict[str, Any]], int, Any]:
        tasks = [start(make_trigger(e, page_size=50)) for e in export_ids]
        await until(lambda: CONN_ID in _shared_poll._shares.get(asyncio.get_running_loop(), {}), "a share")
        await until(lambda: 50 in _shared_poll._shares[asyncio.get_running_loop()][CONN_ID].pollers, "poll")
        shared = poller(50)
        await until(lambda: shared.rounds_started >= 3, "three rounds")
        assert len(shared.subscriptions) == 5
        for export_id in export_ids:
            slow_emu.complete_export(export_id)
        events = await asyncio.gather(*tasks)
        assert no_share_left()
        return events, shared.rounds_started, shared.client

    events, rounds, client = asyncio.run(scenario())
    assert [e["status"] for e in events] == ["success"] * 5
    # All five exports sit on page 0: one request per round for the five triggers, not one each.
    assert len(list_requests(slow_emu)) == rounds
    assert client.closed  # the last trigger to leave closed the shared client


def test_a_round_reads_only_the_pages_in_use(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> None:
    # 120 exports, pages of 50: the oldest sits on page 2, the newest on page 0. The first round scans
    # 0..2 (and one page ahead with page 2, searching past the hint); later rounds read pages 0 and 2 only
    # (page 1 holds nothing waited for), together.
    emulator = msghistory_emulator_factory(export_delay=600)
    use_emulator(emulator)
    export_ids = submit(emulator, 120)
    oldest, newest = export_ids[0], export_ids[-1]
    emulator.clear_request_log()

    async def scenario() -> None:
        tasks = [start(make_trigger(e, page_size=50)) for e in (oldest, newest)]
        await until(lambda: len(list_requests(emulator)) >= 9, "a few rounds")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert no_share_left()

    asyncio.run(scenario())
    pages = [int(r.query.get("page", 0)) for r in list_requests(emulator)]
    assert pages[:2] == [0, 1] and sorted(pages[2:4]) == [2, 3]
    assert set(pages[4:]) == {0, 2}


def test_a_cancelled_trigger_leaves_and_the_last_one_stops_the_poll(slow_emu: Any) -> None:
    first, second = submit(slow_emu, 2)

    async def scenario() -> None:
        tasks = [start(make_trigger(e, page_size=50)) for e in (first, second)]
        await until(lambda: CONN_ID in _shared_poll._shares.get(asyncio.get_running_loop(), {}), "a share")
        await until(lambda: 50 in _shared_poll._shares[asyncio.get_running_loop()][CONN_ID].pollers, "poll")
        shared = poller(50)
        await until(lambda: shared.rounds_started >= 2, "two rounds")
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)
        assert [s.export_id for s in shared.subscriptions] == [second]
        assert not shared.client.closed
        rounds = shared.rounds_started
        await until(lambda: shared.rounds_started >= rounds + 2, "the poll goes on for the other trigger")
        tasks[1].cancel()
        await asyncio.gather(tasks[1], return_exceptions=True)
        assert no_share_left()
        assert shared.client.closed
        assert shared._task is not None and shared._task.done()
        requests = len(list_requests(slow_emu))
        await asyncio.sleep(0.2)  # four poll intervals: a poll still running would show up
        assert len(list_requests(slow_emu)) == requests

    asyncio.run(scenario())


def test_a_failing_shared_poll_is_a_transient_error_for_each_trigger(
    slow_emu: Any, use_emulator: Callable[..., None]
) -> None:
    use_emulator(slow_emu, max_attempts=1)  # every fault reaches the shared poll
    export_ids = submit(slow_emu, 3)
    for export_id in export_ids:
        slow_emu.complete_export(export_id)
    slow_emu.clear_request_log()
    slow_emu.faults.script("list", [500, 503, "reset"])

    events = run_to_events([make_trigger(e, poll_interval=0.02) for e in export_ids])
    assert [e["status"] for e in events] == ["success"] * 3
    # The three faults were served to the shared poll once each, not once per trigger.
    assert [r.status for r in list_requests(slow_emu)] == [500, 503, 0, 200]


def test_a_non_transient_error_ends_every_trigger(slow_emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    export_ids = submit(slow_emu, 3)
    conn = json.loads(slow_emu.airflow_conn_json())
    conn["password"] = "wrong-key"
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))

    events = run_to_events([make_trigger(e) for e in export_ids])
    assert [e["status"] for e in events] == ["error"] * 3
    assert all("401" in e["message"] and "wrong-key" not in e["message"] for e in events)
    # The refusal was believed after one rebuild of the client: two list reads, not one per trigger.
    assert [r.status for r in list_requests(slow_emu)] == [401, 401]


def test_a_refused_key_rebuilds_the_shared_client_from_the_connection_once(slow_emu: Any) -> None:
    # A 401 may mean the key was rotated after the shared client was built: the poll looks the connection
    # up again and retries once before handing the refusal to the triggers.
    export_ids = submit(slow_emu, 2)
    for export_id in export_ids:
        slow_emu.complete_export(export_id)
    slow_emu.clear_request_log()
    slow_emu.faults.script("list", [401])

    events = run_to_events([make_trigger(e) for e in export_ids])
    assert [e["status"] for e in events] == ["success"] * 2
    assert [r.status for r in list_requests(slow_emu)] == [401, 200]


def test_a_faster_trigger_joining_reschedules_the_poll(slow_emu: Any) -> None:
    slow_id, fast_id = submit(slow_emu, 2)
    slow_emu.complete_export(fast_id)

    async def scenario() -> dict[str, Any]:
        slow = start(make_trigger(slow_id, poll_interval=300))
        await until(lambda: len(list_requests(slow_emu)) >= 1, "the first round")
        # Without the reschedule the next round would come in 300 s, past this trigger's deadline.
        fast = start(make_trigger(fast_id, poll_interval=0.05, end_time=time.time() + 5))
        event = await fast
        slow.cancel()
        await asyncio.gather(slow, return_exceptions=True)
        return event

    assert asyncio.run(scenario())["status"] == "success"


def test_a_trigger_joining_after_a_round_started_is_served_within_half_an_interval(slow_emu: Any) -> None:
    first_id, joined_id = submit(slow_emu, 2)
    slow_emu.complete_export(joined_id)
    interval = 10.0

    async def scenario() -> tuple[dict[str, Any], float]:
        first = start(make_trigger(first_id, poll_interval=interval, end_time=time.time() + 60))
        await until(lambda: len(list_requests(slow_emu)) >= 1, "the first round")
        joined_at = time.monotonic()
        event = await start(make_trigger(joined_id, poll_interval=interval, end_time=time.time() + 60))
        served_in = time.monotonic() - joined_at
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        return event, served_in

    event, served_in = asyncio.run(scenario())
    assert event["status"] == "success"
    # The next round comes half an interval after the first (5 s), not a whole one (10 s).
    assert served_in < 0.85 * interval, served_in


def test_a_restarted_trigger_resumes_with_its_own_state(slow_emu: Any) -> None:
    other, export_id = submit(slow_emu, 2)
    end_time = time.time() + 20

    async def scenario() -> dict[str, Any]:
        bystander = start(make_trigger(other))
        trigger = make_trigger(export_id, end_time=end_time, regenerations=1, page_hint=0)
        first = start(trigger)
        await until(lambda: len(list_requests(slow_emu)) >= 2, "a couple of rounds")
        first.cancel()  # the triggerer lost the trigger; another one rebuilds it from serialize()
        await asyncio.gather(first, return_exceptions=True)
        classpath, kwargs = trigger.serialize()
        rebuilt = MsgHistoryExportTrigger(**kwargs)
        assert rebuilt.serialize() == (classpath, kwargs)
        again = start(rebuilt)
        slow_emu.complete_export(export_id)
        slow_emu.expire_link(export_id)  # one more regeneration allowed (max 2, one done before)
        await until(lambda: slow_emu.exports[export_id].status == "PENDING", "the regeneration")
        slow_emu.complete_export(export_id)  # a regenerated export is pending again until completed
        event = await again
        bystander.cancel()
        await asyncio.gather(bystander, return_exceptions=True)
        return event

    event = asyncio.run(scenario())
    assert event["status"] == "success", event
    assert event["regenerations"] == 2


def test_a_round_reads_its_pages_together_within_the_key_limit(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> None:
    # 50 exports, pages of 5: one wait on the oldest export of each of the 10 pages. Once the first round
    # found them, a round reads the 10 pages together (8, then 2), not one latency after another.
    emulator = msghistory_emulator_factory(export_delay=600, latency=0.3)
    use_emulator(emulator)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: submit(emulator, 5), range(10)))
    with MsgHistoryHook().get_client() as client:
        waited = [job.export_id for job in client.iter_exports(page_size=50)][4::5]  # last of each page
    emulator.clear_request_log()

    async def scenario() -> None:
        tasks = [start(make_trigger(e, page_size=5, poll_interval=0.5)) for e in waited]
        await until(lambda: len(list_requests(emulator)) >= 30, "the first round and a later one")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
    arrivals = sorted(r.time for r in list_requests(emulator))
    # Read one after another, 8 pages arrive 7 latencies (2.1 s) apart; read together, within one.
    together = max(sum(1 for t in arrivals if first <= t < first + 0.3) for first in arrivals)
    assert together >= 8, arrivals
