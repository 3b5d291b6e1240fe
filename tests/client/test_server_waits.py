"""The server's word on waiting (``Retry-After``, ``retryAfter``, ``X-RateLimit-Reset``) over HTTP: every wait
it asks for is capped and goes through the key's pacer, for every vendor and every path (a retried call, a
message-list page refused after the retries, a rate-limit header)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest
from hostile.server import HostileServer, reply

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.pacing import MAX_HOLD

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
OPTIONS = {"8x8": {"sub_account_id": "acme_sms_01"}}
HUGE = [
    pytest.param({"Retry-After": "80000"}, None, id="retry-after-80000"),
    pytest.param({"Retry-After": "1e400"}, None, id="retry-after-overflow"),
    pytest.param({}, {"retryAfter": 80000}, id="body-retryAfter-80000"),
]


@pytest.fixture
def server() -> Any:
    with HostileServer() as hostile:
        yield hostile


def config(server: HostileServer, vendor: str, **changes: Any) -> ClientConfig:
    base = server.api_url if vendor == "qlara" else server.base
    return ClientConfig(
        base_url=base,
        api_key="hostile-key-0a1b2c3d",
        vendor=vendor,
        options=OPTIONS.get(vendor, {}),
        connect_timeout=2.0,
        read_timeout=5.0,
        **changes,
    )


def route_of(client: ExportClient, request: Any) -> str:
    """The server-side path of a dialect's request."""
    return urlsplit(client.config.base_url).path + request.path


class Sleeps:
    """Records the waits asked of it (sync and async) instead of waiting them."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.asked.append(seconds)


@pytest.mark.parametrize("vendor", ["qlara", "8x8", "messangi"])
@pytest.mark.parametrize(("headers", "body"), HUGE)
def test_a_retried_call_waits_at_most_the_cap_whatever_the_server_says(
    server: HostileServer, vendor: str, headers: dict[str, str], body: Any
) -> None:
    sleeps = Sleeps()
    # A budget that would allow a day's wait: the cap, not the budget, bounds it.
    client = ExportClient(config(server, vendor, max_retry_time=86400), sleep=sleeps)
    answer = reply(200, {"data": []} if vendor == "messangi" else [])
    server.route(route_of(client, client.dialect.check_connection()), reply(429, body or {}, headers), answer)
    with client:
        client.check_connection()
    assert len(server.seen) == 2
    assert sleeps.asked and max(sleeps.asked) <= MAX_HOLD
    assert client._transport.pacer.held_for() <= MAX_HOLD  # every client of the key holds, capped


@pytest.mark.parametrize("vendor", ["qlara", "messangi"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("headers", "body"), HUGE)
def test_a_message_list_page_refused_after_the_retries_waits_the_capped_hold(
    server: HostileServer,
    monkeypatch: pytest.MonkeyPatch,
    vendor: str,
    mode: str,
    headers: dict[str, str],
    body: Any,
) -> None:
    sleeps = Sleeps()
    # Any sleep outside the transport's (injected) one is a wait that bypassed the pacer: caught here.
    monkeypatch.setattr(time, "sleep", sleeps)
    real_sleep = asyncio.sleep

    async def recorded(seconds: float, *args: Any) -> Any:
        sleeps.asked.append(seconds)
        return await real_sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    settings = config(server, vendor, max_attempts=1)
    end = START + timedelta(hours=1)
    kwargs = {"sleep": sleeps.asleep if mode == "async" else sleeps}
    probe = ExportClient(settings)
    channel = probe.dialect.message_list.channels[0]
    first, last = probe.dialect.history_bounds(START, end)
    path = route_of(probe, probe.dialect.message_history(channel, first, last, None, 0, 10))
    probe.close()
    page = {"data": []} if vendor == "messangi" else []
    server.route(path, reply(429, body or {}, headers), reply(200, page))
    if mode == "sync":
        with ExportClient(settings, **kwargs) as client:
            pages = list(client.iter_history_pages(channel, START, end, page_size=10))
    else:

        async def go() -> list[Any]:
            async with AsyncExportClient(settings, **kwargs) as client:
                return [p async for p in client.iter_history_pages(channel, START, end, page_size=10)]

        pages = asyncio.run(go())
    assert len(pages) == 1 and len(server.seen) == 2
    waits = [s for s in sleeps.asked if s > 0]
    assert waits and max(waits) <= MAX_HOLD


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        pytest.param(lambda: "30", 30.0, id="seconds"),
        pytest.param(lambda: str(int(time.time()) + 30), 30.0, id="epoch-seconds"),
        pytest.param(lambda: str(int(time.time() * 1000) + 30_000), 30.0, id="epoch-milliseconds"),
    ],
)
def test_x_ratelimit_reset_sent_as_an_epoch_time_holds_until_then(
    server: HostileServer, reset: Any, expected: float
) -> None:
    client = ExportClient(config(server, "qlara"))
    path = route_of(client, client.dialect.check_connection())
    limit = {"X-RateLimit-Remaining": "0"}
    server.route(path, lambda handler: reply(200, [], {**limit, "X-RateLimit-Reset": reset()})(handler))
    with client:
        client.check_connection()
        held = client._transport.pacer.held_for()
    assert expected - 10 < held <= expected + 1  # 10 s of slack for a loaded machine, never 120
