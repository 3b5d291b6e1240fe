"""Eight workers on one API key: the fleet's aggregate rate and 429s, shared Redis bucket vs per process.

Eight worker processes (fresh interpreters, as Celery or Kubernetes workers are) each load one channel's
message list for a month, page after page, with the same API key, against the emulator with its rate limit
lowered (default 120 requests a minute, burst 10 a second: the ceiling of the issue's measurement). Two runs:

- ``shared``: the key's bucket in a real Redis server (``rate_limit_store``, what ``rate_limit_conn_id``
  sets), every worker taking its permits there;
- ``per process``: each worker paces on its own (no Redis), as before.

Printed per run: the requests the server saw, the aggregate sustained rate of accepted requests as a share of
the ceiling (after the first window's allowance, which any client may spend at burst speed: a ceiling's
worth of requests divided by the time they took, averaged over the run), and the 429s' share of all
responses. Targets (shared): rate >= 90% of the ceiling, 429s < 1%. Every load is checked: all its records,
no duplicate. Needs ``redis-server`` (``make venv`` installs it). Run:
``.venv-3.3.2/bin/python benchmarks/shared_pacing.py [--ceiling 120/10] [--workers 8]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

API_KEY = "bench-fleet-key"
CHANNEL = "SMS"
MESSAGES = 2400  # ~840 SMS: 42 pages of 20 per load
PAGE_SIZE = 20
MONTH = ("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")
STEP_TIMEOUT = 1200.0


# --- child: one worker's load -------------------------------------------------------------------------
def worker(base_url: str, per_minute: int, burst: int, store: str) -> None:
    """Build the client, say READY, wait for ``go`` on stdin, load the list, print RESULT."""
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.config import ClientConfig

    logging.getLogger("airflow_provider_msghistory.client.transport").setLevel(logging.ERROR)  # 429 retries
    config = ClientConfig(
        base_url=base_url, api_key=API_KEY, requests_per_minute=per_minute, requests_per_second=burst,
        rate_limit_store=store or None, max_retry_time=600, max_attempts=50,
    )  # fmt: skip
    with ExportClient(config) as client:
        print("READY", flush=True)
        sys.stdin.readline()
        started = time.monotonic()
        ids = [m["messageId"] for page in client.iter_history_pages(CHANNEL, *MONTH, page_size=PAGE_SIZE)
               for m in page.messages]  # fmt: skip
    result = {"records": len(ids), "unique": len(set(ids)), "seconds": time.monotonic() - started}
    print("RESULT " + json.dumps(result), flush=True)


# --- parent -------------------------------------------------------------------------------------------
def expected_records() -> int:
    """The channel's records in the month, read from an unthrottled emulator with the same data."""
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.config import ClientConfig
    from airflow_provider_msghistory.emulator import create_emulator

    with (
        create_emulator(api_key=API_KEY, messages=MESSAGES) as emulator,
        ExportClient(ClientConfig(base_url=emulator.base_url, api_key=API_KEY)) as client,
    ):
        pages = client.iter_history_pages(CHANNEL, *MONTH, page_size=PAGE_SIZE)
        return sum(len(page.messages) for page in pages)


def run(name: str, workers: int, per_minute: int, burst: int, store: str, expected: int) -> dict[str, Any]:
    from airflow_provider_msghistory.emulator import create_emulator

    with create_emulator(api_key=API_KEY, messages=MESSAGES, rate_limit=(per_minute, burst)) as emulator:
        cmd = [sys.executable, __file__, "worker", emulator.base_url, str(per_minute), str(burst), store]
        procs = [
            subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(workers)
        ]
        for proc in procs:  # all imported and configured before the first request
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "READY":
                raise RuntimeError("a worker failed to start")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=STEP_TIMEOUT)
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"a worker failed:\n{out[-3000:]}")
            results.append(json.loads(lines[-1][len("RESULT ") :]))
        log = [(r.time, r.status) for r in emulator.request_log if r.path.endswith("/messages/history")]
    for result in results:
        if result["records"] != expected or result["unique"] != expected:
            raise RuntimeError(f"{name}: a load got {result} instead of {expected} records")
    ok = sorted(t for t, status in log if status == 200)
    refused = sum(1 for _, status in log if status == 429)
    periods = [ok[i + per_minute] - ok[i] for i in range(per_minute, len(ok) - per_minute)]
    sustained = per_minute / (sum(periods) / len(periods)) if periods else float("nan")
    ceiling = per_minute / 60
    return {
        "run": name, "workers": workers, "ceiling": f"{per_minute}/min, burst {burst}/s",
        "requests": len(log), "accepted": len(ok), "responses_429": refused,
        "share_429": round(refused / max(len(log), 1), 4), "sustained_per_s": round(sustained, 3),
        "sustained_share": round(sustained / ceiling, 3), "seconds": round(ok[-1] - ok[0], 1),
        "records_per_load": expected,
        "first_429s_at_s": [round(t - ok[0], 1) for t, status in sorted(log) if status == 429][:10],
    }  # fmt: skip


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ceiling", default="120/10", help="the emulator's PER_MIN/BURST (default 120/10)")
    parser.add_argument("--workers", type=int, default=8, help="worker processes (default 8)")
    args = parser.parse_args()
    per_minute, burst = (int(x) for x in args.ceiling.split("/"))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_server import RedisServer

    expected = expected_records()
    with RedisServer() as redis:
        shared = run("shared", args.workers, per_minute, burst, redis.url, expected)
    print("shared      " + json.dumps(shared), flush=True)
    alone = run("per process", args.workers, per_minute, burst, "", expected)
    print("per process " + json.dumps(alone), flush=True)
    print(f"{'':14}{'rate / ceiling':>16}{'429s':>10}{'requests':>10}")
    for row in (shared, alone):
        print(f"{row['run']:14}{row['sustained_share']:>16.1%}{row['share_429']:>10.2%}{row['requests']:>10}")
    met = shared["sustained_share"] >= 0.9 and shared["share_429"] < 0.01
    print("shared: targets met (>= 90% of the ceiling, < 1% 429s)" if met else "FAILED: shared targets")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
