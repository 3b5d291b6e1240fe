"""The fault schedules against 8x8 log export jobs (real HTTP to the 8x8 emulator), the same invariants:

1. The destination holds exactly the CSV of ``[start, end)`` (the emulator's ``expected_csv``: parts merged,
   header once, rows cut to the window), or the task failed with an error naming the cause and the
   destination holds nothing.
2. One job per task try: a retried submission and a restarted trigger reuse its id; every status, download
   and cancel request names that job.
3. The API key never appears in the logs, the XComs, the events or an exception, and goes only to the API's
   own origin (every request the emulator saw came with it, on the API's port).
4. Retries stop within the configured budgets (attempts per call, download attempts per file, poll cadence
   with back-off, the trigger's absolute deadline).

Replay a failing seed: ``pytest tests/reliability/test_fault_schedules_8x8.py --reliability-seed N``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_msghistory.client.errors import MsgHistoryError
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.emulator import Emulator, create_emulator

from .conftest import connection_json
from .pipeline import Outcome, run_pipeline
from .schedules import CLIENT_MAX_ATTEMPTS, DOWNLOAD_ATTEMPTS, POLL_INTERVAL
from .schedules_8x8 import FATAL_CAUSES, FATAL_PHASE, Schedule8x8, draw
from .summary import TALLY
from .test_fault_schedules import max_failing_polls, trigger_state

_JOB_PATH = re.compile(r"/messages/exports/([^/]+)$")


@pytest.fixture(scope="module")
def emulator_8x8() -> Iterator[Emulator]:
    """One 8x8 emulator for the module's schedules (faults, request log and job shape reset per schedule)."""
    with create_emulator(
        vendor="8x8",
        api_key=f"rel-key-{secrets.token_hex(12)}",
        messages=20_000,
        export_delay=0.1,
        rate_limit=None,
    ) as emulator:
        yield emulator


def window(schedule: Schedule8x8) -> tuple[str, str]:
    return f"2025-01-{schedule.day:02d}T00:00:00Z", f"2025-01-{schedule.day + 1:02d}T00:00:00Z"


def job_of(entry: Any) -> str | None:
    match = _JOB_PATH.search(entry.path)
    return match.group(1) if match else None


def check_outcome(schedule: Schedule8x8, outcome: Outcome, emu: Any, dest: Path) -> list[str]:
    problems: list[str] = []
    present = sorted(p.name for p in dest.parent.iterdir()) if dest.parent.exists() else []
    error = outcome.error
    if error is None:
        assert outcome.result is not None
        expected = hashlib.sha256(emu.expected_csv(*window(schedule))).hexdigest()
        got = hashlib.sha256(dest.read_bytes()).hexdigest() if dest.exists() else None
        if got != expected or outcome.result["sha256"] != expected:
            problems.append(f"destination sha256 {got}, XCom {outcome.result['sha256']}, expected {expected}")
        if outcome.result["parts"] != schedule.parts:
            problems.append(f"{outcome.result['parts']} parts merged, the job had {schedule.parts}")
        if present != [dest.name]:
            problems.append(f"destination directory holds {present}, expected only {dest.name}")
        if schedule.fatal is not None:
            problems.append(f"designed to fail ({schedule.fatal}) but the pipeline succeeded")
        return problems
    message = f"{type(error).__name__}: {error}"
    if not isinstance(error, (AirflowException, MsgHistoryError, ValueError)):
        problems.append(f"unexpected exception type in {outcome.phase}: {message}")
    if schedule.fatal is None:
        problems.append(f"recoverable schedule failed in {outcome.phase}: {message}")
    else:
        if not re.search(FATAL_CAUSES[schedule.fatal], str(error)):
            problems.append(f"error does not name the cause ({schedule.fatal}): {message}")
        if outcome.phase != FATAL_PHASE[schedule.fatal]:
            problems.append(f"{schedule.fatal} surfaced in the {outcome.phase} task: {message}")
    if present:
        problems.append(f"the task failed but the destination directory holds {present}")
    return problems


def check_one_job(outcome: Outcome, log: list[Any], new_jobs: list[str]) -> list[str]:
    problems: list[str] = []
    accepted = [e for e in log if e.method == "POST" and e.status == 202]
    if len(new_jobs) > 1 or len(accepted) > 1:
        problems.append(f"{len(accepted)} submissions accepted, jobs created: {new_jobs}")
    if outcome.export_xcom is None:
        return problems
    job_id = ExportRef.parse(outcome.export_xcom["export_id"]).job_id
    if new_jobs != [job_id]:
        problems.append(f"XCom job {job_id!r}, jobs created {new_jobs}")
    if {ExportRef.parse(t.export_id).job_id for t in outcome.triggers} - {job_id}:
        problems.append("a trigger (restarted ones included) waited for another job")
    touched = {job_of(e) for e in log if job_of(e) is not None}
    if touched - {job_id}:
        problems.append(f"status or cancel requests named {sorted(touched)}, not {job_id!r}")
    if outcome.result is not None and outcome.result["export_id"] != outcome.export_xcom["export_id"]:
        problems.append("the transfer downloaded another export than the export task made")
    return problems


def check_secrets(outcome: Outcome, log: list[Any], emu: Any, logs_text: str) -> list[str]:
    problems: list[str] = []
    if outcome.export_xcom and ExportRef.parse(outcome.export_xcom["export_id"]).job_id not in logs_text:
        problems.append("the captured logs never mention the job (the log check would prove nothing)")
    api_port = int(emu.base_url.rsplit(":", 1)[1])
    if any(e.port != api_port for e in log):
        problems.append("a request reached another port than the API's")
    if not all(e.had_auth for e in log):
        problems.append("a request went without the Bearer key (the checks here would prove nothing)")
    error_text = "".join(traceback.format_exception(outcome.error)) if outcome.error else ""
    blobs = {
        "logs": logs_text,
        "XComs": repr([outcome.export_xcom, outcome.result]),
        "trigger events": repr(outcome.events),
        "the exception": error_text + repr(outcome.error),
    }
    problems += [f"the API key appears in {name}" for name, blob in blobs.items() if emu.api_key in blob]
    return problems


def check_bounds(schedule: Schedule8x8, outcome: Outcome, log: list[Any], elapsed: float) -> list[str]:
    problems: list[str] = []
    runs = len(outcome.triggers) + 2  # trigger runs plus the transfer's own looks
    statuses = [e for e in log if e.method == "GET" and job_of(e) is not None]
    bounds = {
        "submission": (sum(e.method == "POST" for e in log), CLIENT_MAX_ATTEMPTS),
        "download": (
            sum("/download/" in e.path for e in log),
            schedule.parts * DOWNLOAD_ATTEMPTS * CLIENT_MAX_ATTEMPTS,
        ),
        # One status request per poll interval per wait (the job is polled by id), retries included.
        "status": (len(statuses), 2 * CLIENT_MAX_ATTEMPTS * (elapsed / POLL_INTERVAL + 2 * runs + 4)),
        "cancel": (sum(e.method == "DELETE" for e in log), len(outcome.triggers) * CLIENT_MAX_ATTEMPTS),
    }
    for name, (count, bound) in bounds.items():
        if count > bound:
            problems.append(f"{count} {name} requests, more than the bound {bound:.0f}")
    if schedule.fatal == "submit_dead" and bounds["submission"][0] != CLIENT_MAX_ATTEMPTS:
        problems.append(f"a dead submit endpoint got {bounds['submission'][0]} attempts")
    if outcome.overruns:
        problems.append(f"{outcome.overruns} trigger(s) still running long after their deadline")
    if schedule.fatal == "wait_dead":
        bound = CLIENT_MAX_ATTEMPTS * sum(map(max_failing_polls, outcome.run_seconds))
        if len(statuses) > bound:
            problems.append(
                f"{len(statuses)} status requests against a dead API: more than {bound} (no back-off?)"
            )
    for killed, rebuilt in outcome.rebuilds:
        if trigger_state(rebuilt) != trigger_state(killed):
            problems.append(f"a rebuilt trigger differs: {trigger_state(rebuilt)} vs {trigger_state(killed)}")
    return problems


def injected(log: list[Any], outcome: Outcome, expired_between: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in log:
        if entry.fault == "fail":
            counts["export_failed"] += 1
        elif entry.fault == "expire":
            counts["expire_during"] += 1
        elif entry.fault is not None:
            counts[entry.fault] += 1
    counts["expire_before"] += expired_between
    counts["restart"] += len(outcome.rebuilds)
    return counts


def test_fault_schedule_8x8(
    seed: int,
    emulator_8x8: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator_8x8
    schedule = draw(seed)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", connection_json(emu))
    emu.faults.clear()
    emu.clear_request_log()
    options = emu.options
    options.parts, options.gzip_parts, options.zip_parts = (
        schedule.parts,
        schedule.gzip_parts,
        schedule.zip_parts,
    )
    options.header_mismatch = schedule.header_mismatch
    before = set(emu.jobs)
    for endpoint, actions in schedule.script.items():
        emu.faults.script(endpoint, actions)
    if schedule.dead is not None:
        endpoint, action = schedule.dead
        emu.faults.random(seed, endpoints=[endpoint], **{f"p_{action}": 1.0})
    expired_between: list[str] = []

    def between_tasks(export_id: str) -> None:
        if schedule.expire_before_transfer:
            emu.expire_links(ExportRef.parse(export_id).job_id)
            expired_between.append(export_id)

    dest = tmp_path / "lake" / "sms_logs.csv"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    outcome = run_pipeline(schedule, dest, between_tasks)
    elapsed = time.monotonic() - started
    emu.faults.clear()
    if schedule.longest_slow:
        # A slow request whose waiter was cancelled (a triggerer restart) or gave up is logged when the
        # emulator answers: let it land in this schedule's log, not the next one's.
        time.sleep(schedule.longest_slow + 0.3)
    log = emu.request_log
    new_jobs = [job_id for job_id in emu.jobs if job_id not in before]
    captured = capsys.readouterr()
    logs_text = caplog.text + captured.out + captured.err

    problems = (
        check_outcome(schedule, outcome, emu, dest)
        + check_one_job(outcome, log, new_jobs)
        + check_secrets(outcome, log, emu, logs_text)
        + check_bounds(schedule, outcome, log, elapsed)
    )
    TALLY.schedules += 1
    TALLY.faults.update(injected(log, outcome, len(expired_between)))
    TALLY.outcomes["8x8_delivered" if outcome.error is None else "8x8_failed_as_designed"] += 1
    if problems:
        TALLY.failing_seeds.append(seed)
        requests = [(e.method, e.path.rsplit("/", 1)[-1][:12], e.status, e.fault) for e in log]
        pytest.fail(
            f"invariant violations for {schedule.describe()}\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n  error: {outcome.error!r}\n  requests: {requests}"
            + f"\n  replay: pytest tests/reliability/test_fault_schedules_8x8.py --reliability-seed {seed}",
            pytrace=False,
        )
