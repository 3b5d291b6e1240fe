"""Pacing shared by a fleet through a real Redis server: processes of one API key share its ceiling and its
holds, and a Redis that goes away degrades to per-process pacing with one warning, never a failed load.
Every process talks HTTP to the emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.shared_pacing import SharedPacer, store_key

from .conftest import config_for

LOGGER = "airflow_provider_msghistory.client.shared_pacing"
MONTH = ("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")
FORK = multiprocessing.get_context("fork")


def list_calls(emulator: Any) -> list[Any]:
    return [r for r in emulator.request_log if r.server == "api" and r.path.endswith("/exports")]


def _list_exports(config: ClientConfig, times: int, go: Any = None) -> None:
    if go is not None:
        go.wait(60)
    with ExportClient(config) as client:
        for _ in range(times):
            client.list_exports()


def _alist_exports(config: ClientConfig) -> None:
    async def calls() -> None:
        client = AsyncExportClient(config)
        await client.list_exports()
        await client.aclose()

    asyncio.run(calls())


def run_processes(config: ClientConfig, processes: int, times: int) -> None:
    go = FORK.Event()
    workers = [FORK.Process(target=_list_exports, args=(config, times, go)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    go.set()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-process"])
def test_processes_of_one_key_stay_under_its_ceiling_only_when_shared(
    msghistory_emulator_factory: Callable[..., Any], redis_server: Any, shared: bool
) -> None:
    # The server allows 5 a second; each process keeps to 4 (so only several processes together exceed it).
    emu = msghistory_emulator_factory(rate_limit=(600, 5))
    config = config_for(emu, requests_per_second=4, rate_limit_store=redis_server.url if shared else None)
    run_processes(config, processes=4, times=5)
    statuses = [r.status for r in list_calls(emu)]
    assert statuses.count(200) == 20
    if shared:
        assert 429 not in statuses
        import redis

        store = redis.Redis.from_url(redis_server.url)
        keys = store.keys("*")
        assert keys == [store_key(emu.base_url, emu.api_key).encode()]  # a digest, not the key
        assert not any(emu.api_key.encode() in key for key in keys)
        assert 0 < store.pttl(keys[0]) <= 2 * 63_000  # left alone, it expires after two minute-windows
    else:  # the control: four processes pacing alone send up to four times the key's rate
        assert statuses.count(429) > 0


@pytest.mark.parametrize("first_client", ["sync", "async"])
def test_a_429_in_one_process_holds_the_others(
    msghistory_emulator_factory: Callable[..., Any], redis_server: Any, first_client: str
) -> None:
    emu = msghistory_emulator_factory()
    emu.faults.retry_after = 3
    emu.faults.script("list", [429])
    config = config_for(emu, rate_limit_store=redis_server.url)
    # an async client (a triggerer) writes the hold from its event loop, without blocking it
    target, args = (_list_exports, (config, 1)) if first_client == "sync" else (_alist_exports, (config,))
    first = FORK.Process(target=target, args=args)
    first.start()
    deadline = time.monotonic() + 60
    while not list_calls(emu):  # the first process met its 429 and holds the key
        assert time.monotonic() < deadline
        time.sleep(0.02)
    run_processes(config, processes=1, times=1)
    first.join(60)
    assert first.exitcode == 0
    calls = list_calls(emu)
    assert [r.status for r in calls] == [429, 200, 200]
    # The second process sent nothing until the server's 3 s had passed.
    assert min(r.time for r in calls[1:]) - calls[0].time >= 2.5


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_redis_killed_mid_load_degrades_with_one_warning_and_the_load_completes_exactly(
    msghistory_emulator_factory: Callable[..., Any],
    redis_server: Any,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    emu = msghistory_emulator_factory(messages=1500, rate_limit=(6000, 100))
    plain = config_for(emu, requests_per_second=50)
    shared = dataclasses.replace(plain, rate_limit_store=redis_server.url)
    with ExportClient(plain) as client:
        expected = [m["messageId"] for page in client.iter_history_pages("SMS", *MONTH, page_size=20)
                    for m in page.messages]  # fmt: skip
    assert len(expected) > 200

    def killed_after(pages: int, index: int) -> None:
        if index == pages:
            assert not [r for r in caplog.records if r.name == LOGGER]  # shared until now
            redis_server.kill()

    got: list[str] = []
    caplog.set_level(logging.INFO, logger=LOGGER)
    if mode == "sync":
        with ExportClient(shared) as client:
            assert isinstance(client._transport.pacer, SharedPacer)
            for index, page in enumerate(client.iter_history_pages("SMS", *MONTH, page_size=20)):
                killed_after(3, index)
                got.extend(m["messageId"] for m in page.messages)
    else:

        async def load() -> None:
            client = AsyncExportClient(shared)
            assert isinstance(client._transport.pacer, SharedPacer)
            index = 0
            async for page in client.iter_history_pages("SMS", *MONTH, page_size=20):
                killed_after(3, index)
                index += 1
                got.extend(m["messageId"] for m in page.messages)
            await client.aclose()

        asyncio.run(load())
    assert got == expected
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis is unreachable" in warnings[0].getMessage()
    assert "pacing this process on its own" in warnings[0].getMessage()
    assert 429 not in [r.status for r in emu.request_log]


def test_an_unreachable_store_at_start_paces_per_process(
    msghistory_emulator_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    from redis_server import RedisServer

    never_started = RedisServer()  # a free port nobody listens on
    emu = msghistory_emulator_factory()
    config = config_for(emu, requests_per_second=50, rate_limit_store=never_started.url)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with ExportClient(config) as client:
        for _ in range(3):
            client.list_exports()
    never_started.stop()
    assert [r.status for r in list_calls(emu)] == [200] * 3
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


def test_the_store_url_is_checked_and_never_shown() -> None:
    with pytest.raises(ValueError, match="rate_limit_store: not a Redis URL") as error:
        ClientConfig(api_key="k", rate_limit_store="http://user:s3cret@redis.example")
    assert "s3cret" not in str(error.value)
    config = ClientConfig(api_key="k", rate_limit_store="redis://:s3cret@redis.example:6379/0")
    assert "s3cret" not in repr(config)


def test_without_the_redis_package_the_fix_is_named_at_client_creation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec  # the package is installed here: hide it from the check alone
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "redis" else real(name, *args)
    )
    config = ClientConfig(api_key="k", rate_limit_store="redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match=r"airflow-provider-msghistory\[redis\]"):
        ExportClient(config)


def test_a_key_without_published_limits_shares_only_the_servers_holds(redis_server: Any) -> None:
    # 8x8 and Messangi publish no limit: permits are free, but a 429's wait still holds every process.
    first, second = (SharedPacer([], redis_server.url, "msghistory:pace:test-no-limits") for _ in range(2))
    for _ in range(20):
        second.acquire()  # nothing to wait for
    first.hold(1.0)
    started = time.monotonic()
    second.acquire()
    assert time.monotonic() - started >= 0.8

    async def held() -> float:
        first.hold(1.0)
        await asyncio.sleep(0.1)  # the hold is published from the loop in the background
        started = time.monotonic()
        await second.aacquire()
        return time.monotonic() - started

    assert asyncio.run(held()) >= 0.7
