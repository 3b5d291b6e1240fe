"""AsyncExportClient in a real event loop (``asyncio.run``) against the emulator over loopback HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    AuthenticationError,
    ExportExpiredError,
    NotFoundError,
    RateLimitedError,
)
from airflow_provider_msghistory.client.models import ExportRequest, ExportStatus

from .conftest import Sleeps, api_calls, async_client, log_entries

EVER = ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z")


def test_export_lifecycle_async(emu: Any, sleeps: Sleeps) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        async with async_client(emu, sleeps) as client:
            export_id = await client.submit_export(ExportRequest.build("contacts", list_ids=[1]))
            job, page = await client.find_export(export_id, page_size=5)
            assert job is not None and job.status is ExportStatus.PENDING and page == 0
            with pytest.raises(ExportExpiredError):
                await client.get_download_link(export_id)
            emu.complete_export(export_id)
            assert (await client.get_export(export_id)).ready
            link = await client.get_download_link(export_id)
            async with client.open_download(link.url) as response:
                assert response.status_code == 200
                whole = b"".join([chunk async for chunk in response.iter_bytes(5)])
            async with client.open_download(link.url, offset=3) as response:
                assert response.status_code == 206
                tail = b"".join([chunk async for chunk in response.iter_bytes()])
            emu.expire_link(export_id)
            assert (await client.get_export(export_id)).status is ExportStatus.EXPIRED
            await client.regenerate_download_link(export_id)
            with pytest.raises(NotFoundError):
                await client.get_export("exp_unknown")
            return whole, tail

    whole, tail = asyncio.run(scenario())
    csv = next(iter(emu.exports.values()))
    assert whole == emu.export_csv(csv.export_id) and tail == whole[3:]
    assert not any(e.had_auth for e in log_entries(emu, "storage"))
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


def test_async_submit_is_not_retried_after_a_reset(emu: Any, sleeps: Sleeps) -> None:
    emu.faults.script("submit", ["reset"])

    async def scenario() -> None:
        async with async_client(emu, sleeps) as client:
            await client.submit_export(ExportRequest.build("contacts"))

    with pytest.raises(ApiConnectionError):
        asyncio.run(scenario())
    assert len(api_calls(emu, "POST", "/exports/contacts")) == 1 and sleeps.waits == []


def test_async_errors(emu: Any, sleeps: Sleeps) -> None:
    async def wrong_key() -> None:
        async with async_client(emu, sleeps, api_key="bad-key-987") as client:
            await client.check_connection()

    with pytest.raises(AuthenticationError) as info:
        asyncio.run(wrong_key())
    assert info.value.status_code == 401 and "bad-key-987" not in str(info.value)

    emu.faults.script("link", [429] * 3)

    async def limited() -> None:
        async with async_client(emu, sleeps, max_attempts=2) as client:
            await client.get_download_link("exp_1")

    with pytest.raises(RateLimitedError):
        asyncio.run(limited())


def test_async_history_is_lazy(emu: Any, sleeps: Sleeps) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        async with async_client(emu, sleeps) as client:
            first = []
            async for message in client.iter_message_history("SMS", *EVER, page_size=10):
                first.append(message)
                if len(first) == 12:
                    break
            everything = [m async for m in client.iter_message_history("SMS", *EVER, page_size=1000)]
            return first, everything

    first, everything = asyncio.run(scenario())
    assert first == everything[:12]
    pages = [int(c.query["page"]) for c in api_calls(emu, "GET", "/messages/history")]
    assert pages == [0, 1, 0]


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


def test_async_download_reports_a_truncated_body(emu: Any, sleeps: Sleeps) -> None:
    export_id = emu.create_export()
    emu.faults.script("download", ["reset", "truncate:50"])

    async def scenario() -> bytes:
        received = bytearray()
        async with async_client(emu, sleeps) as client:
            url = (await client.get_download_link(export_id)).url
            async with client.open_download(url) as response:
                with pytest.raises(ApiConnectionError) as info:
                    async for chunk in response.iter_bytes(16):
                        received += chunk
        assert f"interrupted after {len(received)} bytes" in str(info.value)
        return bytes(received)

    received = asyncio.run(scenario())
    assert 0 < len(received) <= 50 and received == emu.export_csv(export_id)[: len(received)]
    assert len(sleeps.waits) == 1  # the reset was retried
