"""A real DAG run (`airflow dags test`) on a connection whose ``rate_limit_conn_id`` names a Redis connection:
the task takes its permits from the shared bucket in a real Redis server, and with Redis gone the next run
still stores every message, with one warning."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer

from airflow_provider_msghistory.client.shared_pacing import store_key

DAG_ID = "example_msghistory_hourly_messages"
FIRST = 1735862400000  # 2025-01-03T00:00:00Z


@pytest.mark.e2e
def test_an_hourly_load_paces_through_redis_and_survives_its_loss(
    run_dag: Callable[..., Any], msghistory_emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    import redis

    emu = msghistory_emulator_factory(messages=20_000)
    conn = json.loads(emu.airflow_conn_json())
    conn["extra"] = {"rate_limit_conn_id": "pace_redis"}
    with RedisServer() as server:
        env = {
            "MSGHISTORY_DESTINATION_ROOT": tmp_path.as_uri(),
            "AIRFLOW_CONN_PACE_REDIS": json.dumps(
                {"conn_type": "redis", "host": "127.0.0.1", "port": server.port, "extra": {"db": 0}}
            ),
        }
        for hour in ("00", "01"):
            if hour == "01":
                server.kill()
            result = run_dag(
                DAG_ID, f"2025-01-03T{int(hour) + 1:02d}:00:00+00:00", conn_json=json.dumps(conn), env=env
            )
            path = tmp_path / "messages" / "date=2025-01-03" / f"hour={hour}" / "messages.jsonl.gz"
            records = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
            offset = int(hour) * 3_600_000
            want = [
                m.to_json()
                for channel in ("SMS", "RCS", "WHATSAPP")
                for m in emu.dataset.channel_range(channel, FIRST + offset, FIRST + offset + 3_599_999)
            ]
            assert records == want and records
            warned = result.output.count("Shared rate limiter: Redis is unreachable")
            if hour == "00":  # every request of the task took its permit from the shared bucket
                store = redis.Redis(port=server.port)
                history = [r for r in emu.request_log if r.path.endswith("/messages/history")]
                assert store.zcard(store_key(emu.base_url, emu.api_key)) == len(history) > 0
                assert warned == 0
            else:
                assert warned == 1
