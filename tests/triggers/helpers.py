"""Shared by the operator, trigger and sensor tests: the emulator as `msghistory_default`; run a trigger."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger


def conn_json(emulator: Any, **extra: Any) -> str:
    """The emulator's connection, with ``extra`` merged into the connection extras."""
    conn = json.loads(emulator.airflow_conn_json())
    conn["extra"] = {**(conn.get("extra") or {}), **extra}
    return json.dumps(conn)


@pytest.fixture
def use_emulator(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``use_emulator(emu, **extras)`` points ``msghistory_default`` at ``emu``."""

    def _use(emulator: Any, **extra: Any) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator, **extra))

    return _use


def run_trigger(trigger: MsgHistoryExportTrigger) -> tuple[dict[str, Any], float]:
    """Run ``trigger`` in a fresh event loop; its first event's payload and the seconds it took."""

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    started = time.monotonic()
    payload = asyncio.run(first_event())
    return payload, time.monotonic() - started


def make_trigger(export_id: str, **kwargs: Any) -> MsgHistoryExportTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("end_time", time.time() + 20)
    kwargs.setdefault("max_regenerations", 2)
    return MsgHistoryExportTrigger(export_id=export_id, **kwargs)
