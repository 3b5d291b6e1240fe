"""A long wait is visible but quiet: a line per status change, a sparse heartbeat, on a fake clock.

The clock is the only fake: the waits poll the emulator over loopback HTTP as usual, while fake time runs
twenty minutes ahead in a second or two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from triggers.helpers import make_trigger, run_trigger

from airflow_provider_msghistory.client.waiting import ExportWaiter
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.operators.export import wait_sync

PENDING = "still being generated (status 'PENDING')"
READY = "completed and available for download"
COMPLETE_AFTER = 20 * 60  # fake seconds the export stays PENDING


class FakeClock:
    """``time.time``/``time.sleep`` stand-ins. Fake time moves when slept, or ``speed`` times as fast as
    real time (for the trigger, whose shared poll sleeps in real time); the export is completed on the
    emulator once ``COMPLETE_AFTER`` fake seconds have passed."""

    def __init__(self, emulator: Any, export_id: str, speed: float = 0.0) -> None:
        self.start = self.slept = time.time()
        self.real_start = time.monotonic()
        self.speed = speed
        self.emulator = emulator
        self.export_id = export_id

    @property
    def now(self) -> float:
        return self.slept + (time.monotonic() - self.real_start) * self.speed

    def time(self) -> float:
        self._maybe_complete()
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self._maybe_complete()

    def _maybe_complete(self) -> None:
        if self.export_id and self.now - self.start >= COMPLETE_AFTER:
            self.emulator.complete_export(self.export_id)
            self.export_id = ""


@pytest.fixture
def slow_emu(msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]) -> Any:
    """Exports stay PENDING (an hour of real time) until the test completes them."""
    emulator = msghistory_emulator_factory(export_delay=3600)
    use_emulator(emulator)
    return emulator


def submit(emulator: Any) -> str:
    with MsgHistoryHook().get_client() as client:
        return client.submit_contacts_export()


def test_sync_wait_logs_each_status_and_a_heartbeat_ever_more_sparsely(
    slow_emu: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    export_id = submit(slow_emu)
    clock = FakeClock(slow_emu, export_id)
    monkeypatch.setattr("airflow_provider_msghistory.operators.export.time", clock)
    waiter = ExportWaiter(export_id, poll_interval=10, deadline=clock.now + 3600, max_regenerations=1)
    log = logging.getLogger("test.wait_sync")

    with caplog.at_level(logging.INFO, logger="test.wait_sync"):
        job = wait_sync(MsgHistoryHook().get_client(), waiter, log)

    assert job.ready
    lines = [r.getMessage() for r in caplog.records if r.name == "test.wait_sync"]
    assert lines == [
        f"Export {export_id}: {PENDING} (after 0s, 1 poll)",
        f"Export {export_id} still waiting after 1m00s (7 polls, next check in 10s): {PENDING}",
        f"Export {export_id} still waiting after 3m00s (19 polls, next check in 10s): {PENDING}",
        f"Export {export_id} still waiting after 7m00s (43 polls, next check in 10s): {PENDING}",
        f"Export {export_id} still waiting after 15m00s (91 polls, next check in 10s): {PENDING}",
        f"Export {export_id}: {READY} (after 20m00s, 121 polls)",
    ]


def test_trigger_logs_each_status_and_a_sparse_heartbeat(
    slow_emu: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    export_id = submit(slow_emu)
    # Fake time runs 600 times as fast as real time: a look every 50 ms is one every 30 fake seconds.
    clock = FakeClock(slow_emu, export_id, speed=600)
    monkeypatch.setattr("airflow_provider_msghistory.triggers.export.time", clock)
    trigger = make_trigger(export_id, poll_interval=0.05, end_time=clock.now + 3600)
    trigger._log = logging.getLogger("test.trigger")  # stdlib logging on both Airflow lines, for caplog

    with caplog.at_level(logging.INFO, logger="test.trigger"):
        event, _ = run_trigger(trigger)

    assert event["status"] == "success", event
    lines = [r.getMessage() for r in caplog.records if r.name == "test.trigger"]
    assert lines[0].startswith(f"Export {export_id}: {PENDING} (after ")
    assert lines[-1].startswith(f"Export {export_id}: {READY} (after ")
    # About forty looks in twenty fake minutes: heartbeats after about 1, 3, 7 and 15 minutes only.
    heartbeats = lines[1:-1]
    assert len(heartbeats) == 4, lines
    assert all(line.startswith(f"Export {export_id} still waiting after ") for line in heartbeats)
    assert "polls, next check in 0s): " in heartbeats[0]
