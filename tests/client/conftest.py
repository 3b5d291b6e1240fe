"""Helpers of the client tests: clients pointed at the emulator, with a recording (non-)sleep."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis_server import RedisServer

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "connect_timeout": 2.0, "read_timeout": 5.0}


class Sleeps:
    """Records the waits asked for instead of sleeping (sync and async)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def clock(self) -> float:
        """Real time plus the waits skipped, so the total-time budget sees them."""
        return time.monotonic() + sum(self.waits)


def config_for(emulator: Any, **overrides: Any) -> ClientConfig:
    options: dict[str, Any] = {"base_url": emulator.base_url, "api_key": emulator.api_key, **FAST}
    options.update(overrides)
    return ClientConfig(**options)


def log_entries(emulator: Any, server: str | None = None) -> list[Any]:
    """The emulator's request log (optionally one server's)."""
    log = emulator.request_log
    entries = list(log.entries() if hasattr(log, "entries") else log)
    return [e for e in entries if server is None or e.server == server]


def api_calls(emulator: Any, method: str, path_suffix: str) -> list[Any]:
    return [
        e
        for e in log_entries(emulator, "api")
        if e.method == method and e.path.rstrip("/").endswith(path_suffix)
    ]


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Iterator[Callable[..., ExportClient]]:
    """``make_client(emulator, **config_overrides)``: a sync client that records its waits."""
    made: list[ExportClient] = []

    def _make(emulator: Any, **overrides: Any) -> ExportClient:
        client = ExportClient(config_for(emulator, **overrides), sleep=sleeps, clock=sleeps.clock)
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


def async_client(emulator: Any, sleeps: Sleeps, **overrides: Any) -> AsyncExportClient:
    return AsyncExportClient(config_for(emulator, **overrides), sleep=sleeps.asleep, clock=sleeps.clock)


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any]) -> Any:
    """An emulator whose exports stay PENDING until a test completes them."""
    return msghistory_emulator_factory(export_delay=3600)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on a free port for the test (killable mid-test), stopped afterwards."""
    with RedisServer() as server:
        yield server
