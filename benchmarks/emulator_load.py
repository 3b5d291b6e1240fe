"""Load figures of the Qlara emulator on loopback (bounded: about a minute).

1. 1,000 concurrent keep-alive clients poll E (``GET /exports``) with 200 ms injected latency: connections
   refused / errors, p50 / p99 latency, requests per second.
2. One 1 GiB export streamed from the storage host: MB/s, bytes checked against Content-Length.

The emulator runs as its CLI in a separate process, so client and server do not share an interpreter.

Run: ``.venv-3.3.2/bin/python benchmarks/emulator_load.py [--clients 1000] [--seconds 20] [--size 1GiB]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import requests

API_KEY = "bench-key"
V1 = "/partner-gateway/v1"


@dataclass
class LoadResult:
    connected: int = 0
    refused: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


def start_emulator(size: str, latency: float) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable, "-m", "airflow_provider_msghistory.emulator", "--port", "0", "--storage-port", "0",
        "--api-key", API_KEY, "--messages", "2000", "--export-delay", "0", "--rate-limit", "off",
        "--latency", str(latency), "--export-size", size,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().split()[-1]
    for _ in range(3):
        proc.stdout.readline()
    return proc, base_url


async def one_client(host: str, port: int, path: str, deadline: float, result: LoadResult) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
    except ConnectionRefusedError:
        result.refused += 1
        return
    except (OSError, asyncio.TimeoutError):
        result.errors += 1
        return
    result.connected += 1
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Api-Key: {API_KEY}\r\n\r\n".encode()
    try:
        while time.monotonic() < deadline:
            began = time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                result.errors += 1
            result.latencies.append(time.monotonic() - began)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        result.errors += 1
    finally:
        writer.close()


async def run_load(base_url: str, clients: int, seconds: float) -> tuple[LoadResult, float]:
    host_port = base_url.removeprefix("http://").split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    path = "/api" + V1 + "/exports"
    result = LoadResult()
    began = time.monotonic()
    deadline = began + seconds
    await asyncio.gather(*(one_client(host, int(port), path, deadline, result) for _ in range(clients)))
    return result, time.monotonic() - began


def run_download(base_url: str) -> tuple[int, int, float]:
    session = requests.Session()
    session.headers["X-Api-Key"] = API_KEY
    body = {"startDateTime": "2025-01-01T00:00:00.000Z", "endDateTime": "2025-01-31T23:59:59.999Z"}
    export_id = session.post(base_url + V1 + "/messages/history/export", json=body, timeout=30).json()[
        "exportId"
    ]
    url = session.get(base_url + V1 + f"/exports/{export_id}", timeout=30).json()["downloadUrl"]
    received = 0
    began = time.monotonic()
    with requests.get(url, stream=True, timeout=60) as response:
        response.raise_for_status()
        expected = int(response.headers["Content-Length"])
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    return received, expected, time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--size", default="1GiB")
    args = parser.parse_args()
    proc, base_url = start_emulator(args.size, args.latency)
    try:
        print(
            f"emulator at {base_url} (separate process); "
            f"{args.clients} keep-alive clients for {args.seconds}s"
        )
        result, elapsed = asyncio.run(run_load(base_url, args.clients, args.seconds))
        lat = sorted(result.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        print(
            f"polling: connected {result.connected}/{args.clients}, refused {result.refused}, "
            f"errors {result.errors}, requests {len(lat)}, {len(lat) / elapsed:.0f} req/s, "
            f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms (injected {args.latency * 1000:.0f} ms)"
        )
        received, expected, seconds = run_download(base_url)
        status = "complete" if received == expected else f"SHORT by {expected - received} bytes"
        print(
            f"download: {received / 2**20:.0f} MiB in {seconds:.2f}s = {received / seconds / 1e6:.0f} MB/s "
            f"({status}, Content-Length {expected})"
        )
        ok = result.refused == 0 and result.errors == 0 and received == expected
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
