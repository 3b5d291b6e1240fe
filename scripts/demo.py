"""`make demo` (`make demo VENDOR=8x8`, `VENDOR=messangi`): the whole pipeline on a laptop, in one command.

Starts the vendor's emulator with a seeded dataset, prepares a throwaway Airflow home (SQLite) whose DAGs
folder holds only the vendor's daily example DAG (so no other vendor's DAG is parsed), runs it with
``airflow dags test`` for a fixed date, then prints where the file landed, its row or record count, its
SHA-256 (checked against the file on disk and against what the emulator says a correct provider stores)
and its first lines. Exits non-zero on any failure, showing the end of the Airflow log. The file and the
full Airflow log stay in ``<tmp>/msghistory-demo/`` after the throwaway home is deleted.

Qlara: ``example_msghistory_daily_report`` (submit -> wait -> store, one pre-signed file). 8x8:
``example_msghistory_8x8_sms_logs`` (export -> store; the job yields three files, one gzip, merged into
one CSV cut to the day). Messangi: ``example_msghistory_messangi_daily_message_log`` (the JSON message log
paged channel by channel into one gzipped JSON Lines file, records cut to the day).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
LOGICAL_DATE = "2025-01-02"  # runs the data interval [2025-01-01, 2025-01-02)
DAY_START, DAY_END = "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"


@dataclass(frozen=True)
class Demo:
    """What differs per vendor: its emulator, its example DAG and how to know the right output."""

    dag_id: str
    dag_file: str
    conn_id: str  # the DAG's own connection id, so the demo sets what a user would set
    submit_task: str
    store_task: str
    emulator_options: dict[str, Any]
    blurb: str

    def check(self, emulator: Any, stored: dict[str, Any], path: Path) -> str:
        """Compare the output with what the emulator says is right; return how, or raise DemoError."""
        if emulator.vendor == "messangi":
            expected = [r["id"] for r in emulator.expected_records(DAY_START, DAY_END)]
            with open_output(path) as f:
                got = [json.loads(line)["id"] for line in f]
            if sorted(got) != sorted(expected) or len(set(got)) != len(got):
                raise DemoError(f"{path} holds {len(got)} records, not the day's {len(expected)} (each once)")
            return "the emulator's records of the day, each once"
        if emulator.vendor == "8x8":
            want = hashlib.sha256(emulator.expected_csv(DAY_START, DAY_END)).hexdigest()
        else:
            want = str(emulator.export_sha256(stored["export_id"]))
        if stored["sha256"] != want:
            raise DemoError(f"{path} differs from what the emulator says is right (sha256 {want})")
        return "the emulator's expected CSV"


DEMOS = {
    "qlara": Demo(
        "example_msghistory_daily_report",
        "example_msghistory_daily_report.py",
        "msghistory_default",
        "submit",
        "store",
        {"seed": 1, "messages": 50_000, "export_delay": 2.0},
        "downloads served from another port, without the API key",
    ),
    "8x8": Demo(
        "example_msghistory_8x8_sms_logs",
        "example_msghistory_8x8_sms_logs.py",
        "msghistory_8x8",
        "export",
        "store",
        {"seed": 1, "messages": 50_000, "export_delay": 2.0, "parts": 3, "gzip_parts": [1]},
        "each job yields 3 files (one gzip) on the API's own host",
    ),
    "messangi": Demo(
        "example_msghistory_messangi_daily_message_log",
        "example_msghistory_messangi_daily_message_log.py",
        "msghistory_messangi",
        "load",
        "load",
        {"seed": 1, "messages": 20_000},
        "the JSON message log, one channel per request (S E P W R), 92 days per read at most",
    ),
}
AIRFLOW = str(Path(sys.executable).parent / "airflow")
PREVIEW_LINES = 6
# Outlives the throwaway Airflow home, so the printed paths still hold the CSV and the Airflow log after
# the demo.
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "msghistory-demo"
LOG = OUTPUT_ROOT / "airflow-demo.log"


class DemoError(Exception):
    """A step failed; the message says which and why."""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def airflow(args: list[str], env: dict[str, str], log: Path, timeout: float) -> None:
    """Run the airflow CLI, its output appended to ``log``; raise DemoError with the log's end on failure."""
    with log.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                [AIRFLOW, *args], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=REPO
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"airflow {args[0]} {args[1]} took more than {timeout:.0f}s") from None
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise DemoError(f"airflow {' '.join(args)} exited with {proc.returncode}; end of {log}:\n{tail}")


def read_xcom(home: Path, dag_id: str, task_id: str) -> Any:
    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute(
            'SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND "key" = ? '
            "ORDER BY timestamp DESC LIMIT 1",
            (dag_id, task_id, "return_value"),
        ).fetchone()
    if row is None:
        raise DemoError(f"task {task_id!r} left no result (XCom)")
    value = row[0]
    value = json.loads(value.decode() if isinstance(value, bytes) else value)
    return json.loads(value) if isinstance(value, str) else value


def open_output(path: Path, text: bool = True) -> IO[Any]:
    """The output as written before storage compression (``.gz`` files are gzip)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8") if text else gzip.open(path, "rb")
    return path.open("r", encoding="utf-8", errors="replace") if text else path.open("rb")


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the content before storage compression (what the task's XCom describes)."""
    sha = hashlib.sha256()
    size = 0
    with open_output(path, text=False) as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def run(home: Path, vendor: str) -> None:
    from airflow_provider_msghistory.emulator import create_emulator

    demo = DEMOS[vendor]
    log = LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")  # this demo's log only
    step(f"Starting the {vendor} emulator (seeded dataset)")
    with create_emulator(vendor, **demo.emulator_options) as emulator:
        print(f"    API at {emulator.base_url}; {demo.blurb}")
        # Only this vendor's DAG in the DAGs folder: the others' would be parsed (and logged) for nothing.
        dags = home / "dags"
        dags.mkdir()
        (dags / demo.dag_file).symlink_to(REPO / "example_dags" / demo.dag_file)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                f"AIRFLOW_CONN_{demo.conn_id.upper()}": emulator.airflow_conn_json(),
                "MSGHISTORY_DESTINATION_ROOT": OUTPUT_ROOT.as_uri(),
                "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "1",
            }
        )
        step(f"Preparing a throwaway Airflow home in {home} (SQLite, airflow db migrate)")
        started = time.monotonic()
        airflow(["db", "migrate"], env, log, timeout=300)
        print(f"    done in {time.monotonic() - started:.0f}s")
        step(f"Running: airflow dags test {demo.dag_id} {LOGICAL_DATE}")
        started = time.monotonic()
        airflow(["dags", "test", demo.dag_id, LOGICAL_DATE], env, log, timeout=300)
        print(f"    done in {time.monotonic() - started:.0f}s (full Airflow log: {log})")
        submitted = read_xcom(home, demo.dag_id, demo.submit_task)
        stored = read_xcom(home, demo.dag_id, demo.store_task)
        path = Path(urlsplit(stored["path"]).path)
        if not path.is_file():
            raise DemoError(f"the DAG reported {stored['path']} but there is no such file")
        sha, size = file_digest(path)
        if sha != stored["sha256"] or size != stored["bytes"]:
            raise DemoError(f"{path} does not match what the task reported ({size} bytes, sha256 {sha})")
        matches = demo.check(emulator, stored, path)
    step("Emulator stopped")

    window = submitted.get("window") or {}
    print()
    span = f"{window.get('start')} .. {window.get('end')}"
    if "export_id" in stored:
        print(f"  export      {stored['export_id']} (message history {span})")
    else:
        channels = ", ".join(stored["channels"])
        print(f"  message log {span}, {stored['requests']:,} pages read, channels {channels}")
    print(f"  output      {path}")
    if "rows" in stored:
        print(f"  rows        {stored['rows']:,} (plus the header line)")
    else:
        print(f"  records     {stored['records']:,} (one JSON object per line)")
    if (stored.get("parts") or 0) > 1:
        print(f"  parts       {stored['parts']} merged into one CSV")
    if stored.get("dropped_rows"):
        print(f"  left out    {stored['dropped_rows']:,} rows outside the day (coarse vendor bounds)")
    gzipped = f" ({stored['stored_bytes']:,} gzipped)" if path.suffix == ".gz" else ""
    print(f"  bytes       {stored['bytes']:,}{gzipped}")
    print(f"  sha256      {sha}  (matches the file on disk and {matches})")
    print(f"  first lines of {path.name}:")
    with open_output(path) as f:
        for _, line in zip(range(PREVIEW_LINES), f, strict=False):
            print(f"    {line.rstrip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", default="qlara", choices=sorted(DEMOS))
    vendor = parser.parse_args().vendor
    home = Path(tempfile.mkdtemp(prefix="msghistory-demo-"))
    keep = os.environ.get("MSGHISTORY_DEMO_KEEP", "").lower() in ("1", "true", "yes")
    started = time.monotonic()
    try:
        run(home, vendor)
    except DemoError as error:
        print(f"\nDEMO FAILED: {error}", file=sys.stderr)
        print(f"(files kept in {home})", file=sys.stderr)
        return 1
    print(f"\nDemo finished in {time.monotonic() - started:.0f}s.", end=" ")
    if keep:
        print(f"Files kept in {home}.")
    else:
        shutil.rmtree(home, ignore_errors=True)
        print(f"Throwaway Airflow home deleted (set MSGHISTORY_DEMO_KEEP=1 to keep it); log kept at {LOG}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
