"""One 429 with a huge Retry-After must not freeze a connection's shared poll (a scripted API on loopback)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from hostile.server import API_PREFIX, HostileServer, reply

from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

READY = {
    "content": [
        {"exportId": export_id, "status": "COMPLETED", "isAvailableForDownload": True}
        for export_id in ("exp_a", "exp_b")
    ]
}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Any:
    with HostileServer() as server:
        conn = {"conn_type": "msghistory", "host": server.api_url, "password": "rate-key-0a9b",
                "extra": {"max_attempts": 1}}  # fmt: skip
        monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
        yield server


def test_a_wait_joining_after_a_retry_after_of_an_hour_is_still_served(api: HostileServer) -> None:
    # The first list read is refused for an hour; every later one is healthy.
    api.route(API_PREFIX + "/exports", reply(429, {"message": "slow down"}, {"Retry-After": "3600"}),
              reply(200, READY))  # fmt: skip

    async def scenario() -> list[tuple[dict[str, Any], float]]:
        started = time.monotonic()

        async def run(trigger: MsgHistoryExportTrigger, delay: float) -> tuple[dict[str, Any], float]:
            await asyncio.sleep(delay)
            async for event in trigger.run():
                return event.payload, time.monotonic() - started
            raise AssertionError("no event")

        first = MsgHistoryExportTrigger("exp_a", poll_interval=0.5, end_time=time.time() + 8)
        joined = MsgHistoryExportTrigger("exp_b", poll_interval=0.5, end_time=time.time() + 1 + 5)
        return list(await asyncio.gather(run(first, 0), run(joined, 1.0)))

    (first, first_at), (joined, joined_at) = asyncio.run(scenario())
    assert joined["status"] == "success", joined
    assert joined_at < 4  # served within its poll interval of joining, not after the hour
    # The first wait is given a last look before its own deadline, too.
    assert first["status"] == "success", first
    assert first_at < 8


def test_a_backed_off_poll_gives_a_wait_a_last_look_before_its_deadline(api: HostileServer) -> None:
    api.route(API_PREFIX + "/exports", reply(429, {"message": "slow down"}, {"Retry-After": "3600"}),
              reply(200, READY))  # fmt: skip
    trigger = MsgHistoryExportTrigger("exp_a", poll_interval=0.5, end_time=time.time() + 3)

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    started = time.monotonic()
    event = asyncio.run(first_event())
    assert event["status"] == "success", event
    assert time.monotonic() - started < 3
