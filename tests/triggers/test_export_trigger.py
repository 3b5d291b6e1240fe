"""MsgHistoryExportTrigger against the emulator over loopback HTTP, each run in its own event loop."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from blocking import no_blocking_calls

from airflow_provider_msghistory.client.waiting import ExportWaiter
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.triggers.events import ExportEvent
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger
from triggers.helpers import make_trigger, run_trigger

LIST_PATH = "/exports"


def submit_contacts(emulator: Any) -> str:
    with MsgHistoryHook().get_client() as client:
        return client.submit_contacts_export()


def list_requests(emulator: Any) -> list[Any]:
    return [r for r in emulator.request_log if r.method == "GET" and r.path.endswith(LIST_PATH)]


@pytest.fixture
def emu(msghistory_emulator: Any, use_emulator: Callable[..., None]) -> Any:
    use_emulator(msghistory_emulator)
    return msghistory_emulator


def test_success_once_completed_and_available(emu: Any) -> None:
    export_id = submit_contacts(emu)
    event, _ = run_trigger(make_trigger(export_id))
    assert event["status"] == "success", event
    assert event["export_id"] == export_id
    assert event["export_status"] == "COMPLETED"
    assert emu.exports[export_id].status == "COMPLETED"


def test_expired_link_is_regenerated_then_waited_for(emu: Any) -> None:
    export_id = submit_contacts(emu)
    emu.complete_export(export_id)
    emu.expire_link(export_id)
    event, _ = run_trigger(make_trigger(export_id))
    assert event["status"] == "success", event
    assert event["regenerations"] == 1
    regenerate_calls = [r for r in emu.request_log if r.method == "POST" and r.path.endswith(export_id)]
    assert len(regenerate_calls) == 1


def test_expired_more_often_than_allowed_is_an_error(emu: Any) -> None:
    export_id = submit_contacts(emu)
    emu.complete_export(export_id)
    emu.expire_link(export_id)
    event, _ = run_trigger(make_trigger(export_id, max_regenerations=0))
    assert event["status"] == "error"
    assert "max_regenerations" in event["message"]


def test_failed_export_is_an_error_event(emu: Any) -> None:
    export_id = submit_contacts(emu)
    emu.fail_export(export_id)
    event, _ = run_trigger(make_trigger(export_id))
    assert event == {"status": "error", "export_id": export_id, "message": event["message"]}
    assert "failed on the server" in event["message"]


def test_unknown_id_is_an_error_event(emu: Any) -> None:
    submit_contacts(emu)
    event, _ = run_trigger(make_trigger("exp_does_not_exist"))
    assert event["status"] == "error"
    assert "not found" in event["message"]


def test_timeout_at_the_absolute_deadline(
    msghistory_emulator_factory: Callable[..., Any], use_emulator
) -> None:
    with msghistory_emulator_factory(export_delay=120) as emulator:
        use_emulator(emulator)
        export_id = submit_contacts(emulator)
        deadline = time.time() + 0.6
        event, took = run_trigger(make_trigger(export_id, poll_interval=0.2, end_time=deadline))
    assert event["status"] == "timeout", event
    assert "deadline" in event["message"]
    assert 0.4 < took < 10  # at its deadline (never early), not at the export's 120 s


def test_deadline_already_passed_times_out_without_a_request(emu: Any) -> None:
    export_id = submit_contacts(emu)
    before = len(list_requests(emu))
    event, _ = run_trigger(make_trigger(export_id, end_time=time.time() - 1))
    assert event["status"] == "timeout"
    assert len(list_requests(emu)) == before


def test_transient_failures_are_waited_out_inside_the_trigger(emu: Any, use_emulator) -> None:
    # One attempt per client call, so every fault reaches the trigger's own backoff.
    use_emulator(emu, max_attempts=1)
    export_id = submit_contacts(emu)
    emu.faults.script("list", [500, 503, 429, "reset", 502, 503])
    event, _ = run_trigger(make_trigger(export_id, poll_interval=0.02))
    assert event["status"] == "success", event
    served = [r.status for r in list_requests(emu)]
    assert served[:6] == [500, 503, 429, 0, 502, 503]
    assert served[-1] == 200


def test_non_transient_api_error_is_an_error_event(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    export_id = submit_contacts(emu)
    conn = json.loads(emu.airflow_conn_json())
    conn["password"] = "wrong-key"
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
    event, _ = run_trigger(make_trigger(export_id))
    assert event["status"] == "error"
    assert "401" in event["message"]
    assert "wrong-key" not in event["message"]


@pytest.mark.parametrize(
    "shape",
    [
        {"id_field": "id"},
        {"id_type": "int"},
        {"export_list_wrap": None},
        {"export_list_wrap": "items"},
        {"export_list_wrap": "data"},
        {"status_case": "lower"},
        {"status_case": "title"},
        {"pending_status": "QUEUED"},
        {"pending_status": "RUNNING", "status_case": "lower"},
        {"pending_status": "IN_PROGRESS"},
        {"completed_status": "SUCCEEDED"},
        {"error_body": "empty"},
    ],
)
def test_every_response_shape_variant(emu: Any, shape: dict[str, Any]) -> None:
    emu.set_shape(**shape)
    export_id = submit_contacts(emu)
    event, _ = run_trigger(make_trigger(export_id))
    assert event["status"] == "success", event
    assert event["export_id"] == export_id


@pytest.mark.parametrize("failed_status", ["ERROR", "CANCELLED"])
def test_failure_status_variants(emu: Any, failed_status: str) -> None:
    emu.set_shape(failed_status=failed_status, status_case="lower")
    export_id = submit_contacts(emu)
    emu.fail_export(export_id)
    event, _ = run_trigger(make_trigger(export_id))
    assert event["status"] == "error"
    assert failed_status.lower() in event["message"]


def test_finds_the_export_with_one_request_per_poll_not_a_scan(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> None:
    # 120 exports, pages of 50: the oldest sits on page 2. The first look scans pages 0..2 (reading one
    # page ahead with page 2, as a search past the hint does); every later poll reads page 2 only.
    with msghistory_emulator_factory(export_delay=60) as emulator:
        use_emulator(emulator)
        oldest = submit_contacts(emulator)
        for _ in range(119):
            submit_contacts(emulator)
        emulator.clear_request_log()
        trigger = make_trigger(oldest, page_size=50)

        async def poll_for(seconds: float) -> None:
            task = asyncio.ensure_future(trigger.run().__anext__())
            await asyncio.sleep(seconds)
            assert not task.done(), "the export is still pending: no event expected"
            task.cancel()

        asyncio.run(poll_for(0.5))
        pages = [int(r.query.get("page", 0)) for r in list_requests(emulator)]
    assert pages[:2] == [0, 1] and sorted(pages[2:4]) == [2, 3]
    assert len(pages) >= 7
    assert set(pages[4:]) == {2}


def test_serialize_round_trips_with_plain_json_kwargs() -> None:
    trigger = MsgHistoryExportTrigger(
        export_id="exp_1",
        msghistory_conn_id="other",
        poll_interval=5,
        end_time=1_900_000_000.5,
        max_regenerations=4,
        page_hint=3,
        regenerations=1,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_msghistory.triggers.export.MsgHistoryExportTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["end_time"] == 1_900_000_000.5  # absolute: a triggerer restart keeps the deadline


def test_serialize_survives_airflow_serde() -> None:
    from airflow.serialization.serialized_objects import BaseSerialization

    _, kwargs = make_trigger("exp_9", end_time=1_900_000_000.0).serialize()
    assert BaseSerialization.deserialize(BaseSerialization.serialize(kwargs)) == kwargs


@pytest.mark.parametrize(
    "event",
    [
        ExportEvent("success", "exp_1", export_status="EMPTY", page_hint=4, regenerations=2),
        ExportEvent("error", "exp_1", "export exp_1: export failed on the server (status 'FAILED')"),
        ExportEvent("timeout", "exp_1", "export exp_1 was not ready before the deadline"),
    ],
    ids=["success", "error", "timeout"],
)
def test_an_event_round_trips_through_the_triggerers_payload(event: ExportEvent) -> None:
    """Built by the trigger, fired as a plain dict, stored and read back as the triggerer does."""
    from airflow.serialization.serialized_objects import BaseSerialization
    from airflow.triggers.base import TriggerEvent

    fired = TriggerEvent(event.to_payload()).payload
    assert json.loads(json.dumps(fired)) == fired
    stored = BaseSerialization.deserialize(BaseSerialization.serialize(fired))
    assert ExportEvent.from_payload(stored) == event


def test_a_trigger_carries_its_waiters_wait_on() -> None:
    waiter = ExportWaiter("exp_1", 5.0, 1_900_000_000.5, 4, page_hint=3, regenerations=1, page_size=500)
    trigger = MsgHistoryExportTrigger.for_waiter(waiter, "other", cancel_on_kill=True)
    rebuilt = MsgHistoryExportTrigger(**trigger.serialize()[1])
    carried = (rebuilt.export_id, rebuilt.poll_interval, rebuilt.end_time, rebuilt.max_regenerations)
    assert carried == ("exp_1", 5.0, 1_900_000_000.5, 4)
    assert (rebuilt.page_hint, rebuilt.regenerations, rebuilt.page_size) == (3, 1, 500)
    assert (rebuilt.msghistory_conn_id, rebuilt.cancel_on_kill) == ("other", True)


def test_run_makes_no_blocking_call(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No sync socket, sleep or file call on the loop's thread (by what the calls are, not their duration)."""
    export_id = submit_contacts(emu)
    emu.complete_export(export_id)
    emu.expire_link(export_id)  # exercise regenerate too
    trigger = make_trigger(export_id)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    with no_blocking_calls(monkeypatch) as calls:
        event = asyncio.run(first_event())
    assert event["status"] == "success"
    assert not calls, calls


CALLS: dict[str, Callable[[int, Path], None]] = {
    "connect": lambda port, _: socket.create_connection(("127.0.0.1", port), timeout=5).close(),
    "sleep": lambda _, __: time.sleep(0.001),
    "file": lambda _, tmp: (tmp / "f.txt").write_text("x"),
}


@pytest.mark.parametrize("blocking", CALLS)
def test_the_blocking_call_detector_sees_a_fast_blocking_call(
    emu: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blocking: str
) -> None:
    async def on_the_loop() -> None:
        CALLS[blocking](emu.port, tmp_path)  # however fast, it holds the loop

    with no_blocking_calls(monkeypatch) as calls:
        asyncio.run(on_the_loop())
    assert calls
