"""A compressed API reply over HTTP is inflated in bounded steps: a gzip bomb is refused at the 8 MiB reply
cap without ever holding a network read's worth of inflated bytes (~64 MiB), sync and async; ordinary
gzip and deflate replies read as before."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib
from functools import cache
from typing import Any

import pytest
from hostile.server import API_PREFIX, HostileServer, reply

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.errors import UnexpectedResponseError
from airflow_provider_msghistory.client.transport import MAX_REPLY_BYTES

EXPORTS = API_PREFIX + "/exports"
PAGE = [{"exportId": "exp_1", "status": "PENDING"}]
# Peak bytes a refused bomb may take: the capped reply plus a few inflate steps (not 64 MiB at once).
PEAK_LIMIT = MAX_REPLY_BYTES + (8 << 20)


@cache
def bomb() -> bytes:
    """256 KiB on the wire, 256 MiB of JSON-ish bytes inflated (each 64 KiB read: ~64 MiB)."""
    return gzip.compress(b"[" + b" " * (256 << 20), compresslevel=9)


@pytest.fixture
def server() -> Any:
    with HostileServer() as hostile:
        yield hostile


def settings(server: HostileServer) -> ClientConfig:
    return ClientConfig(
        base_url=server.api_url, api_key="enc-key-1a2b3c4d", max_attempts=1, read_timeout=10.0
    )


def list_exports(server: HostileServer, mode: str) -> Any:
    if mode == "sync":
        with ExportClient(settings(server)) as client:
            return client.list_exports()

    async def go() -> Any:
        async with AsyncExportClient(settings(server)) as client:
            return await client.list_exports()

    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_gzip_bomb_is_refused_at_the_cap_in_bounded_memory(server: HostileServer, mode: str) -> None:
    body = bomb()
    server.route(EXPORTS, reply(200, body, {"Content-Encoding": "gzip", "Content-Type": "application/json"}))
    tracemalloc.start()
    try:
        with pytest.raises(UnexpectedResponseError, match="MiB limit"):
            list_exports(server, mode)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak {peak >> 20} MiB"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send it
        ("identity", lambda data: data),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "identity"],
)
def test_compressed_replies_read_as_before(
    server: HostileServer, mode: str, encoding: str, encode: Any
) -> None:
    body = encode(json.dumps({"content": PAGE * 5000}).encode())  # many inflate steps
    server.route(EXPORTS, reply(200, body, {"Content-Encoding": encoding}))
    jobs = list_exports(server, mode)
    assert len(jobs) == 5000 and jobs[0].export_id == "exp_1"
    assert server.seen[0].headers.get("Accept-Encoding") == "gzip, deflate"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_encoding_not_asked_for_or_a_corrupt_body_is_refused_clearly(
    server: HostileServer, mode: str
) -> None:
    server.route(EXPORTS, reply(200, b"\x00" * 64, {"Content-Encoding": "br"}))
    with pytest.raises(UnexpectedResponseError, match="not asked for"):
        list_exports(server, mode)
    corrupt = gzip.compress(b"[]")[:-12] + b"garbage!" * 4
    server.route(EXPORTS, reply(200, corrupt, {"Content-Encoding": "gzip"}))
    with pytest.raises(UnexpectedResponseError, match="corrupt"):
        list_exports(server, mode)
