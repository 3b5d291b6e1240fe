"""The transfer's download cost next to ``curl -o`` of the same bytes, on unquoted and quoted CSV.

For each CSV kind the benchmark writes a file of the given size (``unquoted``: plain cells, like the
emulator's synthetic export; ``quoted``: a quoted message body on every row, with commas, ``""`` escapes
and newlines, as real exports with message bodies are) and serves it from a small storage server in its
own process (``sendfile``, ``Range`` honoured). Then, alternating, ``--repeat`` times each:

- ``curl -o`` fetches it: seconds and CPU seconds (user + system);
- the transfer fetches it in a fresh child process (the sync client's ``open_download``, the resumable
  download loop, the part file moved into place: what ``MsgHistoryExportToStorageOperator`` runs once it
  holds a link): seconds, CPU seconds and peak RSS growth over its pre-download baseline;
- the bare work the transfer must do beyond curl, SHA-256 and record counting, is timed on the same bytes
  (read from curl's file; the read is not counted).

Printed per kind (medians): CPU s/GB of curl, of the bare hash + count and of the transfer, the target
``(curl + bare) * 1.25`` and whether it is met, MB/s of both and the transfer's wall-clock ratio to curl,
and the peak RSS growth (target < 100 MB). All files must hash alike. Files live in a temp dir (tmpfs when
there is one) and are deleted after the run; every step has a timeout.

Run: ``.venv-3.3.2/bin/python benchmarks/download.py [--size 1GiB] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STEP_TIMEOUT = 900.0
UNITS = {"gib": 1 << 30, "mib": 1 << 20, "gb": 10**9, "mb": 10**6}
ROWS = {
    "unquoted": b"%010d,SMS,+393331234567,ACME,DELIVERED,Message delivered to handset,"
    b"2025-01-01T00:00:00.000+00:00,2025-01-01T00:00:01.250+00:00,cust-000001,\n",
    "quoted": b'%010d,SMS,+393331234567,ACME,DELIVERED,"Hi Anna, your code is ""4711"".\nValid 10 min, '
    b'do not share it",2025-01-01T00:00:00.000+00:00,2025-01-01T00:00:01.250+00:00,cust-000001,\n',
}
HEADER = b"messageId,channel,recipient,sender,status,body,sentAt,deliveredAt,customerId,\n"


def parse_size(text: str) -> int:
    lowered = text.strip().lower()
    for unit, factor in UNITS.items():
        if lowered.endswith(unit):
            return int(float(lowered[: -len(unit)]) * factor)
    return int(lowered)


def write_csv(path: Path, kind: str, size: int) -> None:
    """``size`` bytes of CSV of ``kind`` (the last row cut short: the byte count is what matters)."""
    block = b"".join(ROWS[kind] % i for i in range(10_000))
    with path.open("wb") as out:
        out.write(HEADER)
        left = size - len(HEADER)
        while left > 0:
            out.write(block[:left])
            left -= min(left, len(block))


# --- the storage server (its own process) ------------------------------------------------------------
class FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    directory = "."

    def do_GET(self) -> None:
        path = Path(self.directory) / self.path.lstrip("/").split("?", 1)[0]
        size = path.stat().st_size
        start = 0
        wanted = self.headers.get("Range")
        if wanted:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        with path.open("rb") as f:
            self.connection.sendfile(f, start)

    def log_message(self, *args: object) -> None:
        pass


def serve(directory: str) -> None:
    FileHandler.directory = directory
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# --- the measured clients ------------------------------------------------------------------------------
def cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def run_curl(url: str, dest: Path) -> tuple[float, float]:
    """Seconds of ``curl -o`` and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(dest), url], check=True, timeout=STEP_TIMEOUT)
    seconds = time.monotonic() - started
    return seconds, cpu_seconds(resource.getrusage(resource.RUSAGE_CHILDREN)) - cpu_seconds(before)


def run_child(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def transfer_worker(url: str, dest: str) -> None:
    """Child process: the transfer once; seconds, CPU, digest, RSS (baseline and peak)."""
    import logging

    import psutil

    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.config import ClientConfig
    from airflow_provider_msghistory.transfers.destination import parse_destination
    from airflow_provider_msghistory.transfers.download import Link, ResumableDownload
    from airflow_provider_msghistory.transfers.streaming import PartFile

    logging.disable(logging.INFO)  # keep stdout for the JSON line

    class OneLink:
        def fresh(self) -> Link:
            return Link(url)

    destination = parse_destination(f"file://{dest}")
    fs = destination.filesystem()
    client = ExportClient(ClientConfig(base_url="http://127.0.0.1:1/api", api_key="bench-key"))
    process = psutil.Process()
    baseline = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_before = cpu_seconds(resource.getrusage(resource.RUSAGE_SELF))
    started = time.monotonic()
    part = PartFile(destination, fs, None)
    part.open()
    stats = ResumableDownload(client, OneLink(), part, label="bench").run()
    part.finish()
    part.commit(replace=True)
    seconds = time.monotonic() - started
    cpu = cpu_seconds(resource.getrusage(resource.RUSAGE_SELF)) - cpu_before
    done.set()
    sampler.join()
    peak = max(peak, process.memory_info().rss)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "bytes": stats.digest.size,
                "rows": stats.digest.rows,
                "sha256": stats.digest.sha256,
                "rss_growth": peak - baseline,
            }
        )
    )


def bare_worker(path: str) -> None:
    """Child process: SHA-256 and record count of ``path`` in 1 MiB chunks; CPU of those two alone."""
    from airflow_provider_msghistory.transfers.streaming import CsvDigest

    digest = CsvDigest()
    spent = 0.0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            before = time.process_time()
            digest.update(chunk)
            spent += time.process_time() - before
    print(json.dumps({"cpu": spent, "sha256": digest.sha256, "rows": digest.rows}))


def bench(kind: str, size: int, directory: str, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="msghistory-bench-", dir=directory) as tmp:
        served = Path(tmp) / "served"
        served.mkdir()
        write_csv(served / "export.csv", kind, size)
        small = size <= 1 << 28
        expected = hashlib.sha256((served / "export.csv").read_bytes()).hexdigest() if small else None
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(served)], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/export.csv"
        curl_runs, transfer_runs, bare_runs = [], [], []
        try:
            for _ in range(repeat):
                curl_file, transfer_file = Path(tmp) / "curl.csv", Path(tmp) / "transfer.csv"
                curl_runs.append(run_curl(url, curl_file))
                transfer = run_child("--transfer", url, str(transfer_file))
                transfer_runs.append(transfer)
                bare = run_child("--bare", str(curl_file))
                bare_runs.append(bare)
                sha = expected or bare["sha256"]
                if (transfer["sha256"], transfer["rows"], transfer["bytes"]) != (sha, bare["rows"], size):
                    raise RuntimeError("the transfer's digest differs from curl's file")
                if bare["sha256"] != sha:
                    raise RuntimeError("curl's file differs from the served one")
                curl_file.unlink()
                transfer_file.unlink()
        finally:
            server.terminate()
            server.wait(timeout=30)
    gb = size / 1e9
    return {
        "curl_cpu": statistics.median(cpu / gb for _, cpu in curl_runs),
        "bare_cpu": statistics.median(run["cpu"] / gb for run in bare_runs),
        "transfer_cpu": statistics.median(run["cpu"] / gb for run in transfer_runs),
        "curl_mbs": statistics.median(size / seconds / 1e6 for seconds, _ in curl_runs),
        "transfer_mbs": statistics.median(size / run["seconds"] / 1e6 for run in transfer_runs),
        "rss_growth_mb": max(run["rss_growth"] for run in transfer_runs) / 1e6,
    }


def main_for_vendor() -> int:
    """``--vendor 8x8`` runs the 8x8 benchmark (parts merged, rows cut to the window); else the above."""
    if "--vendor" in sys.argv and sys.argv[sys.argv.index("--vendor") + 1 :][:1] == ["8x8"]:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import download_8x8

        return download_8x8.main()
    return main()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="CSV size per kind, e.g. 1GiB")
    parser.add_argument("--kinds", default="unquoted,quoted")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (medians are printed)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--transfer", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.transfer:
        transfer_worker(*args.transfer)
        return 0
    if args.bare:
        bare_worker(args.bare)
        return 0
    size = parse_size(args.size)
    print(
        f"{os.cpu_count()} CPUs; storage server in its own process on the same host; {args.size} per kind "
        f"in {args.dir}; medians of {args.repeat} alternating runs; CPU = user + system s/GB"
    )
    print(
        f"{'kind':>9} {'curl':>6} {'bare':>6} {'transfer':>9} {'target':>7} {'met':>4} "
        f"{'curl MB/s':>10} {'transfer MB/s':>14} {'vs curl':>8} {'RSS growth':>11}"
    )
    ok = True
    for kind in args.kinds.split(","):
        row = bench(kind, size, args.dir, args.repeat)
        target = (row["curl_cpu"] + row["bare_cpu"]) * 1.25
        met = row["transfer_cpu"] <= target and row["rss_growth_mb"] < 100
        ok &= met
        cpu = f"{row['curl_cpu']:>6.2f} {row['bare_cpu']:>6.2f} {row['transfer_cpu']:>9.2f} {target:>7.2f}"
        share = row["transfer_mbs"] / row["curl_mbs"]
        speed = f"{row['curl_mbs']:>10.0f} {row['transfer_mbs']:>14.0f} {share:>8.0%}"
        rss = f"{row['rss_growth_mb']:>8.1f} MB"
        print(f"{kind:>9} {cpu} {'yes' if met else 'NO':>4} {speed} {rss}", flush=True)
    print(
        "target: transfer CPU <= (curl + bare hash and count) * 1.25 and RSS growth < 100 MB on every kind:",
        "met" if ok else "NOT met",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main_for_vendor())
