"""Client-side pacing: one limiter per API key and process, shared by sync and async clients, held by what
the server says (429 retryAfter, X-RateLimit-Remaining), against the emulator's rate limit over HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.pacing import Pacer, RateLimit, _binding, pacer_for

from .conftest import config_for

EVER = ("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")


def list_calls(emulator: Any) -> list[Any]:
    return [r for r in emulator.request_log if r.server == "api" and r.path.endswith("/exports")]


def test_only_limits_that_can_bind_are_kept() -> None:
    qlara = [RateLimit(1000, 60), RateLimit(50, 1)]
    assert _binding(qlara) == [RateLimit(50, 1), RateLimit(1000, 60)]
    # 8/s allows at most 480 a minute: a 600/min limit can never bind.
    assert _binding([RateLimit(8, 1), RateLimit(600, 60)]) == [RateLimit(8, 1)]
    # 10 a minute implies at most 10 a second.
    assert _binding([RateLimit(50, 1), RateLimit(10, 60)]) == [RateLimit(10, 60)]
    with pytest.raises(ValueError, match="requests"):
        RateLimit(0, 60)


def test_one_pacer_per_key_and_base_url_never_keyed_by_the_secret_in_clear() -> None:
    limits = (RateLimit(50, 1),)
    first = pacer_for("https://api.example/api", "key-1", limits)
    assert pacer_for("https://api.example/api", "key-1", limits) is first
    assert pacer_for("https://api.example/api", "key-2", limits) is not first
    assert pacer_for("https://other.example/api", "key-1", limits) is not first
    assert "key-1" not in repr(first)


def test_sync_and_async_clients_of_one_key_share_its_budget(
    msghistory_emulator_factory: Callable[..., Any],
) -> None:
    emu = msghistory_emulator_factory(rate_limit=(600, 5))
    config = config_for(emu, requests_per_second=5)
    sync_client, async_client = ExportClient(config), AsyncExportClient(config)
    assert sync_client._transport.pacer is async_client._transport.pacer

    async def async_calls() -> None:
        for _ in range(6):
            await async_client.list_exports()
        await async_client.aclose()

    started = time.monotonic()
    for _ in range(6):
        sync_client.list_exports()
    asyncio.run(async_calls())
    sync_client.close()
    # 12 calls at 5 per (1.05 s) window: two waits of a window at least, and never a 429.
    assert time.monotonic() - started >= 2.0
    assert [r.status for r in list_calls(emu)] == [200] * 12


def test_a_429_holds_every_client_of_the_key(msghistory_emulator_factory: Callable[..., Any]) -> None:
    emu = msghistory_emulator_factory()
    emu.faults.retry_after = 2
    emu.faults.script("list", [429])
    first, second = ExportClient(config_for(emu)), ExportClient(config_for(emu))
    first.list_exports()  # 429, waits 2 s, then 200; the key is held meanwhile
    second.list_exports()
    times = [r.time for r in list_calls(emu)]
    assert [r.status for r in list_calls(emu)] == [429, 200, 200]
    assert times[2] - times[0] >= 1.9
    first.close()
    second.close()


def test_remaining_zero_holds_until_the_reset(msghistory_emulator_factory: Callable[..., Any]) -> None:
    # The server allows 3 a minute; the client believes 1,000: X-RateLimit-Remaining: 0 stops it before
    # a 429 would (the reset is the oldest request's age out of the minute, so only the hold is checked).
    emu = msghistory_emulator_factory(rate_limit=(3, 3))
    client = ExportClient(config_for(emu))
    for _ in range(3):
        client.list_exports()
    pacer = client._transport.pacer
    assert pacer is not None and 55 <= pacer.held_for() <= 61
    assert [r.status for r in list_calls(emu)] == [200, 200, 200]
    client.close()


def test_a_hold_is_capped_and_unreadable_headers_are_ignored() -> None:
    pacer = Pacer([RateLimit(50, 1)])
    pacer.observe({"X-RateLimit-Remaining": "nan"})
    pacer.observe({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "9999"})
    assert pacer.held_for() == 0
    pacer.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1e8"})  # seconds: 3 years
    assert 119 <= pacer.held_for() <= 120
    fresh = Pacer([RateLimit(50, 1)])
    fresh.observe({"X-RateLimit-Remaining": "0"})  # no reset sent: a second
    assert 0.5 < fresh.held_for() <= 1.0


def test_async_history_pages_are_exact_and_lazy(msghistory_emulator_factory: Callable[..., Any]) -> None:
    emu = msghistory_emulator_factory(messages=3000)
    start, end = "2025-01-02T00:00:00+00:00", "2025-01-03T00:00:00+00:00"

    async def scenario() -> list[dict[str, Any]]:
        async with AsyncExportClient(config_for(emu)) as client:
            pages = client.iter_history_pages("RCS", start, end, page_size=10)
            assert list_calls(emu) == [] and emu.request_log == []  # nothing fetched yet
            return [m async for page in pages for m in page.messages]

    got = asyncio.run(scenario())
    assert got == emu.expected_messages(start, end, "RCS") and got


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_task_process_gets_pacers_of_its_own() -> None:
    limits = (RateLimit(5, 1),)
    parent = pacer_for("https://fork.example/api", "key", limits)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new pacer that works (no lock or thread inherited mid-use)
        child = pacer_for("https://fork.example/api", "key", limits)
        child.acquire()
        os.write(write, b"new" if child is not parent else b"same")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 8) == b"new"
    assert pacer_for("https://fork.example/api", "key", limits) is parent
