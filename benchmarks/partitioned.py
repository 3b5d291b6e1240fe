"""CPU and memory of a day-partitioned transfer next to the unpartitioned one, on the same export.

The emulator runs as its CLI in its own process with ``--export-size`` (every export is a synthetic CSV of
that size, its rows spread over the export's window). One export of a three-day window is made (its id
carries the window and the snapshot, as ``restate_days`` makes it), then, alternating, ``--repeat`` times
each, ``MsgHistoryExportToStorageOperator`` stores it in a fresh child process:

- ``unpartitioned``: one file (the window cut row by row, as for any export id carrying a window);
- ``partitioned``: ``partition_by="day"``, one file per day plus its manifest;
- ``bare`` (Qlara only): the bare vendor id, streamed byte for byte (no window, no row split): the
  cheapest path there is, shown for reference.

Printed (medians): CPU s/GB and peak RSS growth of each, and partitioned / unpartitioned CPU against the
target of 1.25. Files go to a temp dir (tmpfs when there is one) and are deleted after each run.

Run: ``.venv-3.3.2/bin/python benchmarks/partitioned.py [--size 1GiB] [--vendor 8x8|qlara] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STEP_TIMEOUT = 900.0
UNITS = {"gib": 1 << 30, "mib": 1 << 20, "gb": 10**9, "mb": 10**6}
API_KEY = "bench-key"
SUB_ACCOUNT = "bench-sms_01"
WINDOW = (datetime(2025, 1, 2, tzinfo=timezone.utc), datetime(2025, 1, 5, tzinfo=timezone.utc))


def parse_size(text: str) -> int:
    lowered = text.strip().lower()
    for unit, factor in UNITS.items():
        if lowered.endswith(unit):
            return int(float(lowered[: -len(unit)]) * factor)
    return int(lowered)


def start_emulator(size: str, vendor: str) -> tuple[subprocess.Popen[str], str, str]:
    cmd = [
        sys.executable, "-m", "airflow_provider_msghistory.emulator", "--vendor", vendor, "--port", "0",
        "--api-key", API_KEY, "--messages", "1000", "--export-delay", "0", "--rate-limit", "off",
        "--link-ttl", "3600", "--export-size", size,
    ]  # fmt: skip
    cmd += ["--sub-account-id", SUB_ACCOUNT] if vendor == "8x8" else ["--storage-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    base_url = conn = ""
    while not conn:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator exited before printing its connection")
        if " emulator base URL:" in line:
            base_url = line.split()[-1]
        if line.startswith("export AIRFLOW_CONN_"):  # each vendor names its own connection
            conn = line.split("=", 1)[1].strip().strip("'")
    return proc, base_url, conn


def ready_export(base_url: str, vendor: str) -> tuple[str, str]:
    """Submit the window's export, wait until downloadable; its restating id (window + snapshot) and the
    bare vendor id."""
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.config import ClientConfig
    from airflow_provider_msghistory.client.refs import ExportRef
    from airflow_provider_msghistory.client.windows import Window

    options = {"sub_account_id": SUB_ACCOUNT} if vendor == "8x8" else {}
    config = ClientConfig(base_url=base_url, api_key=API_KEY, vendor=vendor, options=options)
    with ExportClient(config) as client:
        asked = datetime.now(timezone.utc)
        export_id = client.submit_message_history_export(*WINDOW)
        deadline = time.monotonic() + 60
        while not client.get_export(export_id).ready:
            if time.monotonic() > deadline:
                raise RuntimeError(f"export {export_id} not ready after 60 s")
            time.sleep(0.2)
    job_id = ExportRef.parse(export_id).job_id
    return str(ExportRef(job_id, Window(*WINDOW), asked)), job_id


def run_worker(conn: str, mode: str, export_id: str, directory: Path) -> dict[str, Any]:
    env = {**os.environ, "AIRFLOW_CONN_MSGHISTORY_DEFAULT": conn}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", mode, export_id, str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def worker(mode: str, export_id: str, directory: str) -> None:
    """Child process: one transfer; seconds, CPU seconds, bytes and RSS (baseline and peak) as JSON."""
    import logging

    import psutil

    from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

    logging.disable(logging.WARNING)  # keep stdout for the JSON line
    partitioned = mode == "partitioned"
    op = MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=export_id,
        destination=f"file://{directory}/{'{partition}' if partitioned else 'all'}/messages.csv",
        partition_by="day" if partitioned else None,
        deferrable=False,
    )
    process = psutil.Process()
    op.hook.get_client()  # connection lookup and session setup are not part of the transfer
    baseline = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    result = op.execute({})
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    done.set()
    sampler.join()
    peak = max(peak, process.memory_info().rss)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    partitions = result.get("partitions") or []
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "bytes": result["bytes"],
                "rows": result["rows"],
                "partitions": [(p["partition"], p["rows"]) for p in partitions],
                "rss_growth": peak - baseline,
            }
        )
    )


def bench(size_text: str, vendor: str, repeat: int, directory: str | None) -> None:
    proc, base_url, conn = start_emulator(size_text, vendor)
    try:
        windowed, bare = ready_export(base_url, vendor)
        modes = {"unpartitioned": windowed, "partitioned": windowed}
        if vendor == "qlara":
            modes["bare"] = bare
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for _ in range(repeat):
            for mode, export_id in modes.items():
                out = Path(tempfile.mkdtemp(prefix="msghistory-bench-", dir=directory))
                try:
                    runs[mode].append(run_worker(conn, mode, export_id, out))
                finally:
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rows = {mode: {r["rows"] for r in results} for mode, results in runs.items()}
    assert rows["partitioned"] == rows["unpartitioned"], f"the modes stored different rows: {rows}"
    print(
        f"{vendor}: export of {size_text} over {WINDOW[0]:%Y-%m-%d}..{WINDOW[1]:%Y-%m-%d} (3 days); "
        f"{os.cpu_count()} CPUs; emulator in its own process; medians of {repeat}"
    )
    cpu_per_gb = {}
    for mode, results in runs.items():
        gigabytes = results[0]["bytes"] / 1e9
        cpu_per_gb[mode] = statistics.median(r["cpu"] for r in results) / gigabytes
        seconds = statistics.median(r["seconds"] for r in results)
        rss = max(r["rss_growth"] for r in results) / 1e6
        extra = f", partitions {results[0]['partitions']}" if results[0]["partitions"] else ""
        speed = results[0]["bytes"] / 1e6 / seconds
        print(
            f"  {mode:>13}: {cpu_per_gb[mode]:6.2f} CPU s/GB, {speed:7.1f} MB/s, "
            f"peak RSS growth {rss:6.1f} MB, {results[0]['rows']:,} rows{extra}"
        )
    ratio = cpu_per_gb["partitioned"] / cpu_per_gb["unpartitioned"]
    verdict = "met" if ratio <= 1.25 else "NOT met"
    print(f"  partitioned / unpartitioned CPU: {ratio:.2f}x (target <= 1.25x: {verdict})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--vendor", choices=("8x8", "qlara"), default="8x8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    parse_size(args.size)  # validates
    bench(args.size, args.vendor, args.repeat, args.dir)


if __name__ == "__main__":
    main()
