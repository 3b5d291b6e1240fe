"""`make demo`: the whole pipeline on a laptop, in one command.

Starts the Qlara emulator with a seeded dataset, prepares a throwaway Airflow home (SQLite), runs the daily
report DAG with ``airflow dags test`` for a fixed date, then prints where the CSV landed, its row count,
its SHA-256 (checked against the file on disk and the emulator's own) and its first lines. Exits non-zero
on any failure, showing the end of the Airflow log. The CSV and the full Airflow log stay in
``<tmp>/msghistory-demo/`` after the throwaway home is deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "example_msghistory_daily_report"
LOGICAL_DATE = "2025-01-02"
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
            proc = subprocess.run([AIRFLOW, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            raise DemoError(f"airflow {args[0]} {args[1]} took more than {timeout:.0f}s") from None
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise DemoError(f"airflow {' '.join(args)} exited with {proc.returncode}; end of {log}:\n{tail}")


def read_xcom(home: Path, task_id: str) -> Any:
    with sqlite3.connect(home / "airflow.db") as db:
        row = db.execute(
            'SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND "key" = ? '
            "ORDER BY timestamp DESC LIMIT 1",
            (DAG_ID, task_id, "return_value"),
        ).fetchone()
    if row is None:
        raise DemoError(f"task {task_id!r} left no result (XCom)")
    value = row[0]
    value = json.loads(value.decode() if isinstance(value, bytes) else value)
    return json.loads(value) if isinstance(value, str) else value


def file_digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def run(home: Path) -> None:
    from airflow_provider_msghistory.emulator import Emulator

    log = LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")  # this demo's log only
    step("Starting the Qlara emulator (seeded dataset)")
    with Emulator(seed=1, messages=50_000, export_delay=2.0) as emulator:
        print(f"    API at {emulator.base_url}; downloads served from another port, without the API key")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_MSGHISTORY_DEFAULT": emulator.airflow_conn_json(),
            "MSGHISTORY_DESTINATION_ROOT": OUTPUT_ROOT.as_uri(),
            "MSGHISTORY_EXAMPLE_POLL_INTERVAL": "1",
        })
        step(f"Preparing a throwaway Airflow home in {home} (SQLite, airflow db migrate)")
        started = time.monotonic()
        airflow(["db", "migrate"], env, log, timeout=300)
        print(f"    done in {time.monotonic() - started:.0f}s")
        step(f"Running: airflow dags test {DAG_ID} {LOGICAL_DATE}   (submit -> wait -> store)")
        started = time.monotonic()
        airflow(["dags", "test", DAG_ID, LOGICAL_DATE], env, log, timeout=300)
        print(f"    done in {time.monotonic() - started:.0f}s (full Airflow log: {log})")
        submitted = read_xcom(home, "submit")
        stored = read_xcom(home, "store")
        expected_sha = emulator.export_sha256(stored["export_id"])
    step("Emulator stopped")

    path = Path(urlsplit(stored["path"]).path)
    if not path.is_file():
        raise DemoError(f"the DAG reported {stored['path']} but there is no such file")
    sha, size = file_digest(path)
    if sha != stored["sha256"] or size != stored["bytes"]:
        raise DemoError(f"{path} does not match what the task reported ({size} bytes, sha256 {sha})")
    if sha != expected_sha:
        raise DemoError(f"{path} differs from the export the emulator served (sha256 {expected_sha})")
    window = submitted.get("window") or {}
    print()
    span = f"{window.get('start')} .. {window.get('end')}"
    print(f"  export      {stored['export_id']} (message history {span})")
    print(f"  output      {path}")
    print(f"  rows        {stored['rows']:,} (plus the header line)")
    print(f"  bytes       {stored['bytes']:,}")
    print(f"  sha256      {sha}  (matches the file on disk and the emulator's export)")
    print(f"  first lines of {path.name}:")
    with path.open(encoding="utf-8", errors="replace") as f:
        for _, line in zip(range(PREVIEW_LINES), f, strict=False):
            print(f"    {line.rstrip()}")


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="msghistory-demo-"))
    keep = os.environ.get("MSGHISTORY_DEMO_KEEP", "").lower() in ("1", "true", "yes")
    started = time.monotonic()
    try:
        run(home)
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
