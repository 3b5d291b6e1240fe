"""The wait step's contract, and every driver following it.

``ExportWaiter.step`` says what to do after each look at an export. The same scripted looks (a miss with
large list pages, a pending export, a transient failure, an expired link, a completed export not yet
available, then a ready one; or a failure) are handed to the pure step and to each driver: the sync wait
(the operator and transfer in the worker), the sensor's pokes and the trigger. Each must do the same I/O
(which page size it looks with, when it regenerates) and log the same lines, and end the same way: a
driver that decided, logged or regenerated on its own would fail here.

The scripted client and watch stand in for the wire only to place an exact state at an exact look (the
emulator's exports move by time); the real-wire waits are in the driver's own tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_msghistory.client.errors import AuthenticationError, ServerError, WaitFailedError
from airflow_provider_msghistory.client.models import ExportJob, ExportStatus
from airflow_provider_msghistory.client.waiting import ExportWaiter, wait_until_ready
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor
from airflow_provider_msghistory.triggers import export as trigger_module
from airflow_provider_msghistory.triggers._shared_poll import Look
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

EXPORT = "exp_1"
BIG, SMALL = 500, 50  # the dialect's list page sizes: a miss with big pages is looked for with small ones
INTERVAL = 0.01


def job(status: ExportStatus, available: bool = False) -> ExportJob:
    return ExportJob(EXPORT, status, available, status.value)


PENDING = job(ExportStatus.PENDING)
EXPIRED = job(ExportStatus.EXPIRED)
NOT_YET = job(ExportStatus.COMPLETED)
READY = job(ExportStatus.COMPLETED, available=True)
BUSY = ServerError(503, "busy", "list_exports")

# (what a look saw: (job, page) or an error) -> the step's (action, reason); the I/O a driver does.
SUCCESS = [
    ((None, 0), "wait", "not found with large list pages; rescanning with small ones"),
    ((PENDING, 2), "wait", "still being generated (status 'PENDING')"),
    (BUSY, "wait", f"transient failure #1 ({BUSY})"),
    ((EXPIRED, 2), "regenerate", "download link expired; regenerating (1/1)"),
    ((NOT_YET, 0), "wait", "completed but not yet available for download"),
    ((READY, 0), "done", "completed and available for download"),
]
SUCCESS_IO = [("look", BIG), ("look", SMALL), ("look", SMALL), ("look", SMALL), ("regenerate", None)]
SUCCESS_IO += [("look", SMALL), ("look", SMALL)]
EXPIRED_TWICE = [
    ((EXPIRED, 0), "regenerate", "download link expired; regenerating (1/1)"),
    ((EXPIRED, 0), "fail", "download link expired again after 1 regeneration(s) (max_regenerations)"),
]
FAILED = [
    ((PENDING, 0), "wait", "still being generated (status 'PENDING')"),
    ((job(ExportStatus.FAILED), 0), "fail", "export failed on the server (status 'FAILED')"),
]
DENIED = AuthenticationError(401, "bad key", "list_exports")
REFUSED = [((PENDING, 0), "wait", "still being generated (status 'PENDING')"), (DENIED, "fail", str(DENIED))]


def lines_of(script: list[Any], tail: str = "retrying in 0.0s") -> list[tuple[int, str]]:
    """The log lines of a wait that saw ``script``: each new status, and each transient failure."""
    lines, polls = [], 0
    for seen, action, reason in script:
        if action == "fail":
            break  # the failure is the driver's to report
        if isinstance(seen, Exception):  # not a look at the export: no poll counted
            lines.append((logging.WARNING, f"Export {EXPORT}: {reason}; {tail}"))
        else:
            polls += 1
            counted = "1 poll" if polls == 1 else f"{polls} polls"
            lines.append((logging.INFO, f"Export {EXPORT}: {reason} (after 0s, {counted})"))
    return lines


class Recorder:
    """A logger keeping (level, message)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []

    def log(self, level: int, msg: str, *args: Any) -> None:
        self.lines.append((level, msg % args))

    def info(self, msg: str, *args: Any) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def debug(self, msg: str, *args: Any) -> None:
        pass


class Script:
    """The looks of a wait, in order, and the I/O the driver did."""

    def __init__(self, script: Iterable[Any]) -> None:
        self.looks = deque(seen for seen, _, _ in script)
        self.io: list[tuple[str, int | None]] = []
        self.current: ExportJob | None = None

    def next(self, page_size: int) -> tuple[ExportJob | None, int]:
        self.io.append(("look", page_size))
        seen = self.looks.popleft()
        if isinstance(seen, Exception):
            raise seen
        self.current = seen[0]
        return seen

    def regenerate(self) -> None:
        self.io.append(("regenerate", None))


CAPS = SimpleNamespace(regenerate=True, tracking="list", cancel=False)
DIALECT = SimpleNamespace(name="scripted", list_page_size=BIG, list_fallback_page_size=SMALL)


class SyncClient:
    caps, dialect = CAPS, DIALECT

    def __init__(self, script: Script) -> None:
        self.script = script

    def look(self, export_id: str, page_hint: int, page_size: int) -> tuple[ExportJob | None, int]:
        return self.script.next(page_size)

    def regenerate_download_link(self, export_id: str) -> None:
        self.script.regenerate()


class AsyncClient:
    """The trigger's own calls: the fresh look before a regeneration sees the export as last delivered."""

    caps, dialect = CAPS, DIALECT

    def __init__(self, script: Script) -> None:
        self.script = script

    async def look(self, export_id: str, page_hint: int, page_size: int) -> tuple[ExportJob | None, int]:
        return self.script.current, page_hint

    async def regenerate_download_link(self, export_id: str) -> None:
        self.script.regenerate()


class Watch:
    """The shared poll's side of one trigger: each round hands it the next scripted look."""

    def __init__(self, script: Script, page_size: int) -> None:
        self.script = script
        self.page_size = page_size
        self.client = AsyncClient(script)
        self.rounds = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def next_look(self, timeout: float) -> Look:
        self.rounds += 1
        try:
            found, page = self.script.next(self.page_size)
        except Exception as error:
            return Look(None, 0, error, self.rounds)
        return Look(found, page, None, self.rounds)

    def export_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    def skip_rounds_started(self) -> None:
        pass

    async def repage(self, page_size: int, page_hint: int) -> None:
        self.page_size = page_size


def by_step(script: list[Any]) -> list[tuple[str, str]]:
    waiter = ExportWaiter(EXPORT, INTERVAL, 100.0, 1, page_size=BIG, fallback_page_size=SMALL)
    steps = []
    for seen, _, _ in script:
        error = seen if isinstance(seen, Exception) else None
        step = waiter.step(*(() if error else seen), error=error, now=0.0)
        steps.append((step.action, step.reason))
        if step.action == "regenerate":
            waiter.regenerated()
    return steps


def by_sync_wait(script: list[Any]) -> tuple[Script, Recorder, Any]:
    played, log = Script(script), Recorder()
    waiter = ExportWaiter.for_client(SyncClient(played), EXPORT, INTERVAL, time.time() + 30, 1)
    try:
        outcome: Any = wait_until_ready(SyncClient(played), waiter, log)  # type: ignore[arg-type]
    except Exception as error:
        outcome = error
    return played, log, outcome


class _RecordingSensor(MsgHistoryExportSensor):
    recorder = Recorder()

    @property
    def log(self) -> Any:  # type: ignore[override]
        return self.recorder


def by_sensor(script: list[Any]) -> tuple[Script, Recorder, Any]:
    played = Script(script)
    sensor = _RecordingSensor(task_id="wait", export_id=EXPORT, poke_interval=INTERVAL, max_regenerations=1)
    sensor.recorder = Recorder()
    sensor.__dict__["hook"] = SimpleNamespace(get_client=lambda: SyncClient(played))
    outcome: Any = False
    try:
        while outcome is False:
            outcome = sensor.poke({})
    except Exception as error:
        outcome = error
    return played, sensor.recorder, outcome


def by_trigger(script: list[Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Script, Recorder, Any]:
    played, log = Script(script), Recorder()
    watch = lambda _conn, _id, _hint, size, *_, **__: Watch(played, size)  # noqa: E731
    monkeypatch.setattr(trigger_module, "ExportWatch", watch)
    trigger = MsgHistoryExportTrigger(
        EXPORT, poll_interval=INTERVAL, end_time=time.time() + 30, max_regenerations=1, page_size=BIG,
        fallback_page_size=SMALL,
    )  # fmt: skip
    trigger._log = log  # type: ignore[assignment]

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return played, log, asyncio.run(first())


@pytest.mark.parametrize(
    "script", [SUCCESS, EXPIRED_TWICE, FAILED, REFUSED], ids=["ok", "expired", "failed", "refused"]
)
def test_the_step_maps_each_look_to_its_action(script: list[Any]) -> None:
    assert by_step(script) == [(action, reason) for _, action, reason in script]


def test_every_driver_follows_the_step_to_a_ready_export(monkeypatch: pytest.MonkeyPatch) -> None:
    played, log, ready = by_sync_wait(SUCCESS)
    assert ready is READY
    assert played.io == SUCCESS_IO
    assert log.lines == lines_of(SUCCESS)

    played, log, poked = by_sensor(SUCCESS)
    assert poked.is_done and poked.xcom_value == {"export_id": EXPORT, "status": "COMPLETED"}
    assert played.io == SUCCESS_IO
    assert log.lines == lines_of(SUCCESS, tail="poking again later")

    played, log, event = by_trigger(SUCCESS, monkeypatch)
    assert event == {
        "status": "success", "export_id": EXPORT, "export_status": "COMPLETED", "page_hint": 0,
        "regenerations": 1,
    }  # fmt: skip
    assert played.io == SUCCESS_IO
    assert log.lines == lines_of(SUCCESS)


@pytest.mark.parametrize("script", [EXPIRED_TWICE, FAILED], ids=["expired", "failed"])
def test_every_driver_fails_where_the_step_fails(script: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    reason = f"export {EXPORT}: {script[-1][2]}"
    io = [("look", BIG)] + [("regenerate", None)] * (script is EXPIRED_TWICE) + [("look", BIG)]

    played, log, error = by_sync_wait(script)
    assert isinstance(error, WaitFailedError) and str(error) == reason
    assert (played.io, log.lines) == (io, lines_of(script))

    played, log, error = by_sensor(script)
    assert isinstance(error, AirflowException) and str(error) == reason
    assert (played.io, log.lines) == (io, lines_of(script))

    played, log, event = by_trigger(script, monkeypatch)
    assert event == {"status": "error", "export_id": EXPORT, "message": reason}
    assert (played.io, log.lines) == (io, lines_of(script))


def test_an_error_that_is_not_transient_ends_every_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    io = [("look", BIG), ("look", BIG)]
    for drive in (by_sync_wait, by_sensor):
        played, log, error = drive(REFUSED)
        assert error is DENIED  # the typed client error, as it is
        assert (played.io, log.lines) == (io, lines_of(REFUSED))
    played, log, event = by_trigger(REFUSED, monkeypatch)
    assert event == {"status": "error", "export_id": EXPORT, "message": f"export {EXPORT}: {DENIED}"}
    assert (played.io, log.lines) == (io, lines_of(REFUSED))


def test_a_retry_reads_the_status_with_the_same_page_fallback() -> None:
    """The export operator's reconnect (``get_job_status``) looks without acting: a miss with big pages
    is looked for again at once with small ones, then the step decides."""
    played = Script([((None, 0), "", ""), ((EXPIRED, 3), "", "")])
    waiter = ExportWaiter.for_client(SyncClient(played), EXPORT, INTERVAL, time.time() + 30, 1)
    step = waiter.status(SyncClient(played))  # type: ignore[arg-type]
    assert (step.action, step.job) == ("regenerate", EXPIRED)
    assert played.io == [("look", BIG), ("look", SMALL)]  # nothing regenerated: the wait does that
    assert waiter.regenerations == 0
