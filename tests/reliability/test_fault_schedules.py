"""Seeded fault schedules through the whole pipeline (real HTTP to the emulator), four invariants each.

1. The destination holds exactly the export's CSV (SHA-256 equal to the emulator's), or the task failed
   with an error naming the cause and the destination holds nothing (no part file either).
2. One export per task try: a retried submission, a restarted trigger and a regeneration reuse its id.
3. The API key never reaches the storage host, the logs, the XComs, the events or an exception.
4. Retries stop within the configured budgets (attempts per call, download attempts, regenerations, poll
   cadence, the trigger's absolute deadline).

Replay a failing seed: ``pytest tests/reliability --reliability-seed N``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_msghistory.client.errors import MsgHistoryError
from airflow_provider_msghistory.emulator import Emulator

from .conftest import connection_json
from .pipeline import Outcome, run_pipeline
from .schedules import (
    CLIENT_MAX_ATTEMPTS,
    DOWNLOAD_ATTEMPTS,
    FATAL_CAUSES,
    MAX_REGENERATIONS,
    POLL_INTERVAL,
    READ_TIMEOUT,
    Schedule,
    draw,
)
from .summary import TALLY

SUBMIT_PATHS = ("/messages/history/export", "/exports/contacts", "/exports/delivery-reports")
_EXPORT_PATH = re.compile(r"/api/partner-gateway/v1/exports/([^/]+)$")
AUTH_HEADERS = {"x-api-key", "authorization"}
# Where each designed failure must surface.
FATAL_PHASE = {
    "export_failed": "export", "submit_500": "export", "submit_reset": "export", "submit_timeout": "export",
    "submit_dead": "export", "wait_dead": "export",
    "link_dead": "transfer", "storage_dead": "transfer", "expired_too_often": "transfer",
}  # fmt: skip


def is_submit(entry: Any) -> bool:
    return entry.server == "api" and entry.method == "POST" and entry.path.endswith(SUBMIT_PATHS)


def per_export(entries: list[Any], method: str) -> list[Any]:
    """F (GET) or G (POST) requests: ``/exports/{id}``."""
    return [e for e in entries if e.server == "api" and e.method == method and _EXPORT_PATH.search(e.path)]


def injected(log: list[Any], outcome: Outcome, expired_between: int) -> Counter[str]:
    """Faults that took effect, by the summary's kinds (from the emulator's request log)."""
    counts: Counter[str] = Counter()
    for entry in log:
        if entry.fault is None:
            continue
        if entry.fault == "fail":
            counts["export_failed"] += 1
        elif entry.fault == "expire":
            if entry.server == "storage":
                counts["expire_during"] += 1
            elif entry.status == 200:  # an F that answered 400 (already expired) consumed it for nothing
                counts["expire_before"] += 1
        else:
            counts[entry.fault] += 1
    counts["expire_before"] += expired_between
    counts["restart"] += len(outcome.rebuilds)
    return counts


def check_outcome(schedule: Schedule, outcome: Outcome, emu: Emulator, dest: Path) -> list[str]:
    """Invariant 1: the exact bytes, or a failure naming its cause and nothing at the destination."""
    problems: list[str] = []
    present = sorted(p.name for p in dest.parent.iterdir()) if dest.parent.exists() else []
    error = outcome.error
    if error is None:
        assert outcome.result is not None
        export_id = outcome.result["export_id"]
        expected = emu.export_sha256(export_id)
        got = hashlib.sha256(dest.read_bytes()).hexdigest() if dest.exists() else None
        if got != expected or outcome.result["sha256"] != expected:
            problems.append(f"destination sha256 {got}, XCom {outcome.result['sha256']}, emulator {expected}")
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


def check_one_export(outcome: Outcome, log: list[Any], new_ids: list[str]) -> list[str]:
    """Invariant 2: one export per task try, and every later step works on that same id."""
    problems: list[str] = []
    accepted = [e for e in log if is_submit(e) and e.status == 202]
    if len(new_ids) > 1 or len(accepted) > 1:
        problems.append(f"{len(accepted)} submissions accepted, exports created: {new_ids}")
    if outcome.export_xcom is None:
        return problems
    export_id = outcome.export_xcom["export_id"]
    if new_ids != [export_id]:
        problems.append(f"XCom export id {export_id!r}, exports created {new_ids}")
    trigger_ids = {t.export_id for t in outcome.triggers}
    if trigger_ids - {export_id}:
        problems.append(f"triggers (restarted ones included) waited for {sorted(trigger_ids)}")
    touched = {_EXPORT_PATH.search(e.path).group(1) for e in per_export(log, "GET") + per_export(log, "POST")}
    if touched - {export_id}:
        problems.append(f"download links or regenerations asked for {sorted(touched)}, not {export_id!r}")
    if outcome.result is not None and outcome.result["export_id"] != export_id:
        problems.append(f"the transfer downloaded {outcome.result['export_id']!r}, not {export_id!r}")
    return problems


def check_secrets(outcome: Outcome, log: list[Any], key: str, logs_text: str) -> list[str]:
    """Invariant 3: the API key stays between the client and the API host."""
    problems: list[str] = []
    if outcome.export_xcom and outcome.export_xcom["export_id"] not in logs_text:
        problems.append("the captured logs never mention the export (the log check would prove nothing)")
    storage = [e for e in log if e.server == "storage"]
    leaked = [
        e
        for e in storage
        if e.had_auth or AUTH_HEADERS & {h.lower() for h in e.headers} or key in json.dumps(e.query)
    ]
    if leaked:
        problems.append(f"{len(leaked)} storage request(s) carried credentials")
    if not all(e.had_auth for e in log if e.server == "api"):
        problems.append("an API request went without credentials (the check above would prove nothing)")
    error_text = "".join(traceback.format_exception(outcome.error)) if outcome.error else ""
    blobs = {
        "logs": logs_text,
        "XComs": json.dumps([outcome.export_xcom, outcome.result]),
        "trigger events": json.dumps(outcome.events),
        "the exception": error_text + repr(outcome.error),
    }
    problems += [f"the API key appears in {name}" for name, blob in blobs.items() if key in blob]
    return problems


def trigger_state(trigger: Any) -> tuple[Any, ...]:
    """What a restart must preserve (compared directly: ``serialize()`` is what is under test)."""
    return (
        trigger.export_id,
        trigger.end_time,
        trigger.max_regenerations,
        trigger.regenerations,
        trigger.poll_interval,
        trigger.msghistory_conn_id,
    )


def max_failing_polls(seconds: float) -> int:
    """Most polls one trigger run can start in ``seconds`` when every poll fails, counting the first look
    at 0 s: the documented back-off doubles the poll interval per failure, up to 8x, and never outlasts
    the deadline: a cut back-off adds the last look just before it."""
    polls, spent = 1, 0.0
    while True:
        spent += POLL_INTERVAL * 2 ** min(polls - 1, 3)
        if spent > seconds:
            return polls + 1
        polls += 1


def check_bounds(schedule: Schedule, outcome: Outcome, log: list[Any], elapsed: float) -> list[str]:
    """Invariant 4: every retry loop stopped within its budget."""
    problems: list[str] = []
    runs = len(outcome.triggers) + 2  # trigger runs plus the transfer's own waits
    bounds = {
        "submission": (sum(map(is_submit, log)), CLIENT_MAX_ATTEMPTS),
        "download": (sum(e.server == "storage" for e in log), DOWNLOAD_ATTEMPTS * CLIENT_MAX_ATTEMPTS),
        "download-link": (len(per_export(log, "GET")), 2 * CLIENT_MAX_ATTEMPTS * (DOWNLOAD_ATTEMPTS + 1)),
        "regeneration": (
            sum(e.status == 202 for e in per_export(log, "POST")),
            MAX_REGENERATIONS * (len(outcome.triggers) + 1),
        ),
        # A poll starts at least one poll interval after the previous one and makes at most one request
        # per attempt: anything beyond that is a loop hammering the API.
        "export-list": (
            sum(e.server == "api" and e.method == "GET" and e.path.endswith("/exports") for e in log),
            2 * CLIENT_MAX_ATTEMPTS * (elapsed / POLL_INTERVAL + 2 * runs + 4),
        ),
    }
    for name, (count, bound) in bounds.items():
        if count > bound:
            problems.append(f"{count} {name} requests, more than the bound {bound:.0f}")
    if schedule.fatal == "submit_dead" and bounds["submission"][0] != CLIENT_MAX_ATTEMPTS:
        problems.append(
            f"a dead submit endpoint got {bounds['submission'][0]} attempts, configured {CLIENT_MAX_ATTEMPTS}"
        )
    if outcome.overruns:
        problems.append(f"{outcome.overruns} trigger(s) still running long after their deadline")
    if schedule.fatal == "wait_dead":
        # Every poll fails: the poll must back off exponentially, not just at the client's pace.
        bound = CLIENT_MAX_ATTEMPTS * sum(map(max_failing_polls, outcome.run_seconds))
        count = bounds["export-list"][0]
        if count > bound:
            runs = ", ".join(f"{seconds:.2f}s" for seconds in outcome.run_seconds)
            problems.append(
                f"{count} list requests against a dead API in trigger runs of {runs}: more than "
                f"{bound} (no back-off?)"
            )
    for killed, rebuilt in outcome.rebuilds:
        if trigger_state(rebuilt) != trigger_state(killed):
            problems.append(f"a rebuilt trigger differs: {trigger_state(rebuilt)} vs {trigger_state(killed)}")
    return problems


def test_fault_schedule(
    seed: int,
    reliability_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = reliability_emulator
    schedule = draw(seed)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", connection_json(emu))
    emu.faults.clear()
    emu.clear_request_log()
    before = set(emu.exports)
    for endpoint, actions in schedule.script.items():
        emu.faults.script(endpoint, actions)
    if schedule.dead is not None:  # every request once the script is used up: a dead endpoint
        endpoint, action = schedule.dead
        emu.faults.random(seed, endpoints=[endpoint], **{f"p_{action}": 1.0})
    expired_between: list[str] = []

    def between_tasks(export_id: str) -> None:
        if schedule.expire_before_transfer:
            emu.expire_link(export_id)
            expired_between.append(export_id)

    dest = tmp_path / "lake" / "messages.csv"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    outcome = run_pipeline(schedule, dest, between_tasks)
    elapsed = time.monotonic() - started
    emu.faults.clear()
    if schedule.longest_slow > READ_TIMEOUT:
        # The emulator logs a request when it answers; one the client gave up on lands late.
        time.sleep(schedule.longest_slow - READ_TIMEOUT + 0.3)
    log = emu.request_log
    new_ids = [export_id for export_id in emu.exports if export_id not in before]
    captured = capsys.readouterr()
    logs_text = caplog.text + captured.out + captured.err

    problems = (
        check_outcome(schedule, outcome, emu, dest)
        + check_one_export(outcome, log, new_ids)
        + check_secrets(outcome, log, emu.api_key, logs_text)
        + check_bounds(schedule, outcome, log, elapsed)
    )
    TALLY.schedules += 1
    TALLY.faults.update(injected(log, outcome, len(expired_between)))
    TALLY.outcomes["delivered" if outcome.error is None else "failed_as_designed"] += 1
    if problems:
        TALLY.failing_seeds.append(seed)
        phases = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in outcome.elapsed.items())
        requests = [(e.server, e.method, e.path.rsplit("/", 1)[-1], e.status, e.fault) for e in log]
        pytest.fail(
            f"invariant violations for {schedule.describe()}\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n  phases: {phases}; error: {outcome.error!r}\n  requests: {requests}"
            + f"\n  replay: pytest tests/reliability --reliability-seed {seed}",
            pytrace=False,
        )
