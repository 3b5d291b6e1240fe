"""Message-list paging at the rate limit: sustained request rate, 429s, and memory against record count.

Everything runs against the emulator with its rate limit on (a sliding window per API key, as documented),
in its own process, so neither side shares the other's GIL or memory:

- ``rate``: one load of enough pages to span three of the limit's minute windows, at the real ceiling
  (1,000/min, burst 50/s) and at a lowered one (``--lowered``, default 120/min, burst 10/s: the same test
  with a tenth of the requests, so a short run still crosses whole windows). Printed: the sustained rate
  (a ceiling's worth of requests divided by the time they took, measured after the first window's
  allowance, which any client may spend at burst speed) against the ceiling (target >= 90%), and the 429s
  the server sent (target: fewer than 1% of responses, none unrecovered: the load must succeed and hold
  every record).
- ``memory``: the operator's peak RSS loading 100k and then 1M records (JSONL and CSV) with the largest
  page, each in a fresh process; the growth over the process's baseline must be flat (target: the 1M
  growth within 25 MB of the 100k one).

Each load's file is checked (record count and no duplicate ids) and deleted afterwards; every step has a
timeout. Run: ``.venv-3.3.2/bin/python benchmarks/messages_paging.py [--quick]`` (``--quick``: lowered
ceiling only, memory at 100k and 300k).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

API_KEY = "bench-key"
STEP_TIMEOUT = 1200.0
START, END = "2025-01-01T00:00:00+00:00", "2025-02-01T00:00:00+00:00"  # the emulator's 31 days


# --- child: the emulator ------------------------------------------------------------------------------
def serve(messages: int, per_minute: int, burst: int) -> None:
    """Run an emulator until stdin closes; on a ``stats`` line print the history requests' log."""
    from airflow_provider_msghistory.emulator import create_emulator

    with create_emulator(
        api_key=API_KEY, messages=messages, rate_limit=(per_minute, burst), request_log_limit=2_000_000
    ) as emulator:
        print(json.dumps({"base_url": emulator.base_url}), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                log = [
                    (r.time, r.status) for r in emulator.request_log if r.path.endswith("/messages/history")
                ]
                print(json.dumps(log), flush=True)


# --- child: one load ----------------------------------------------------------------------------------
def load(base_url: str, destination: str, fmt: str, page_size: int, per_minute: int, burst: int) -> None:
    """Run the operator once in this process; print its XCom, peak RSS and the RSS before loading."""
    os.environ["AIRFLOW_CONN_MSGHISTORY_DEFAULT"] = json.dumps(
        {
            "conn_type": "msghistory",
            "host": base_url,
            "password": API_KEY,
            "extra": {"requests_per_minute": per_minute, "requests_per_second": burst},
        }
    )
    from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

    op = MsgHistoryMessagesToStorageOperator(
        task_id="load", destination=destination, start_datetime=START, end_datetime=END, format=fmt,
        page_size=page_size, progress_interval=30,
    )  # fmt: skip
    baseline = _rss_mb()
    started = time.monotonic()
    result = op.execute({})
    result["seconds"] = time.monotonic() - started
    result["baseline_mb"] = baseline
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- parent -------------------------------------------------------------------------------------------
class EmulatorProcess:
    def __init__(self, messages: int, per_minute: int, burst: int) -> None:
        cmd = [sys.executable, __file__, "serve", str(messages), str(per_minute), str(burst)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator exited before printing its URL")
        self.base_url = json.loads(line)["base_url"]

    def history_log(self) -> list[tuple[float, int]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return [tuple(entry) for entry in json.loads(self.proc.stdout.readline())]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def run_load(
    emulator: EmulatorProcess, fmt: str, page_size: int, per_minute: int, burst: int, expected_records: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="msghistory-bench-") as tmp:
        dest = Path(tmp) / f"messages.{fmt}"
        cmd = [sys.executable, __file__, "load", emulator.base_url, str(dest), fmt, str(page_size),
               str(per_minute), str(burst)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"the load failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        result = json.loads(lines[-1][len("RESULT ") :])
        ids: set[str] = set()
        with dest.open() as data:
            if fmt == "csv":
                next(data)
            for line in data:
                ids.add(json.loads(line)["messageId"] if fmt == "jsonl" else line.split(",", 1)[0])
        if result["records"] != expected_records or len(ids) != expected_records:
            raise RuntimeError(
                f"expected {expected_records} records, got {result['records']} ({len(ids)} ids)"
            )
    return result


def rate_case(name: str, per_minute: int, burst: int, windows: int) -> dict[str, Any]:
    """A load of ``windows`` minute-windows' worth of pages under the limit; its sustained rate and 429s."""
    page_size = 100
    requests = windows * per_minute + 1
    messages = requests * page_size  # ~3 channels of pages, each ending in one short page
    emulator = EmulatorProcess(messages, per_minute, burst)
    try:
        result = run_load(emulator, "jsonl", page_size, per_minute, burst, messages)
        log = emulator.history_log()
    finally:
        emulator.close()
    ok = sorted(t for t, status in log if status == 200)
    refused = sum(1 for _, status in log if status == 429)
    # After the first window's allowance (spendable at burst speed), the time a ceiling's worth takes.
    periods = [ok[i + per_minute] - ok[i] for i in range(per_minute, len(ok) - per_minute)]
    sustained = per_minute / (sum(periods) / len(periods)) if periods else float("nan")
    ceiling = per_minute / 60
    return {
        "case": name, "ceiling": f"{per_minute}/min, burst {burst}/s", "requests": len(log),
        "pages": result["requests"], "records": result["records"], "seconds": round(result["seconds"], 1),
        "sustained_per_s": round(sustained, 2), "ceiling_per_s": round(ceiling, 2),
        "sustained_share": round(sustained / ceiling, 3), "responses_429": refused,
        "share_429": round(refused / max(len(log), 1), 4),
    }  # fmt: skip


def memory_cases(records: int) -> dict[str, dict[str, Any]]:
    """Loads of ``records`` records with the largest page at the real ceiling, per format."""
    emulator = EmulatorProcess(records, 1000, 50)
    rows = {}
    try:
        for fmt in ("jsonl", "csv"):
            result = run_load(emulator, fmt, 1000, 1000, 50, records)
            rows[fmt] = {
                "records": records, "format": fmt, "pages": result["requests"],
                "seconds": round(result["seconds"], 1), "baseline_mb": round(result["baseline_mb"], 1),
                "peak_mb": round(result["peak_mb"], 1),
                "growth_mb": round(result["peak_mb"] - result["baseline_mb"], 1),
            }  # fmt: skip
            print("memory " + json.dumps(rows[fmt]), flush=True)
    finally:
        emulator.close()
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lowered", default="120/10", help="lowered ceiling PER_MIN/BURST (default 120/10)")
    parser.add_argument("--quick", action="store_true", help="lowered ceiling only; memory at 100k and 300k")
    args = parser.parse_args()
    per_minute, burst = (int(x) for x in args.lowered.split("/"))
    failures = []

    cases = [("lowered", per_minute, burst, 3)] + ([] if args.quick else [("real", 1000, 50, 2)])
    for name, pm, b, windows in cases:
        row = rate_case(name, pm, b, windows)
        print("rate   " + json.dumps(row), flush=True)
        if row["sustained_share"] < 0.9 or row["share_429"] >= 0.01:
            failures.append(f"rate {name}")

    sizes = (100_000, 300_000) if args.quick else (100_000, 1_000_000)
    measured = [memory_cases(n) for n in sizes]
    for fmt in ("jsonl", "csv"):
        small, large = measured[0][fmt], measured[1][fmt]
        flat = large["growth_mb"] - small["growth_mb"]
        print(
            f"memory {fmt}: growth {small['growth_mb']} MB at {sizes[0]:,} records, "
            f"{large['growth_mb']} MB at {sizes[1]:,} (difference {flat:+.1f} MB; target within 25 MB)",
            flush=True,
        )
        if flat > 25:
            failures.append(f"memory {fmt}")
    print("FAILED: " + ", ".join(failures) if failures else "all targets met")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
