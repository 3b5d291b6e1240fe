"""AsyncExportClient in a real event loop (``asyncio.run``) against the emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_msghistory.client.errors import AuthenticationError, NotFoundError, RateLimitedError
from airflow_provider_msghistory.client.models import ExportStatus

from .conftest import Sleeps, api_calls, async_client, log_entries


def test_export_lifecycle_async(emu: Any, sleeps: Sleeps) -> None:
    export_id = emu.create_export(ready=False)

    async def scenario() -> None:
        async with async_client(emu, sleeps) as client:
            job, page = await client.find_export(export_id, page_size=5)
            assert job is not None and job.status is ExportStatus.PENDING and page == 0
            emu.complete_export(export_id)
            assert (await client.get_export(export_id)).ready
            emu.expire_link(export_id)
            assert (await client.get_export(export_id)).status is ExportStatus.EXPIRED
            await client.regenerate_download_link(export_id)
            with pytest.raises(NotFoundError):
                await client.get_export("exp_unknown")

    asyncio.run(scenario())
    assert emu.exports[export_id].regenerations == 1
    assert all(e.had_auth for e in log_entries(emu, "api"))


def test_async_retries_use_the_injected_sleep(emu: Any, sleeps: Sleeps) -> None:
    emu.faults.retry_after = 12
    emu.faults.script("list", [429, 503, "reset"])

    async def scenario() -> list[Any]:
        async with async_client(emu, sleeps) as client:
            return await client.list_exports()

    assert asyncio.run(scenario()) == []
    assert sleeps.waits[0] == 12.0 and len(sleeps.waits) == 3
    assert [e.status for e in api_calls(emu, "GET", "/exports")] == [429, 503, 0, 200]


def test_async_errors(emu: Any, sleeps: Sleeps) -> None:
    async def wrong_key() -> None:
        async with async_client(emu, sleeps, api_key="bad-key-987") as client:
            await client.check_connection()

    with pytest.raises(AuthenticationError) as info:
        asyncio.run(wrong_key())
    assert info.value.status_code == 401 and "bad-key-987" not in str(info.value)

    emu.faults.script("list", [429] * 3)

    async def limited() -> None:
        async with async_client(emu, sleeps, max_attempts=2) as client:
            await client.list_exports()

    with pytest.raises(RateLimitedError):
        asyncio.run(limited())


def test_async_calls_do_not_block_the_loop(emu: Any, sleeps: Sleeps) -> None:
    """While a slow API call is in flight, other coroutines keep running."""
    emu.faults.script("list", ["slow:0.5"])

    async def scenario() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        async with async_client(emu, sleeps) as client:
            await client.list_exports()
        task.cancel()
        return ticks

    assert asyncio.run(scenario()) >= 10
