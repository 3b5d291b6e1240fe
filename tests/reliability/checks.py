"""The four invariants of a fault schedule, one set for every download vendor (``vendors.py`` says how a
vendor's request log reads):

1. The destination holds exactly the export's CSV (the emulator's bytes, or for a job of several files the
   window's rows merged, header once), or the task failed with an error naming the cause, in the task the
   cause belongs to, and the destination holds nothing (no part file either).
2. One export per task try: a retried submission, a restarted trigger and a regeneration reuse its id;
   every later request names that job.
3. The API key goes only to the API's own origin and never reaches the logs, the XComs, the events or an
   exception.
4. Retries stop within the configured budgets (attempts per call, download attempts per file, link
   fetches, regenerations, cancels, the poll cadence with back-off, the trigger's absolute deadline).
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_msghistory.client.errors import MsgHistoryError

from .pipeline import Outcome
from .schedules import CLIENT_MAX_ATTEMPTS, DOWNLOAD_ATTEMPTS, MAX_REGENERATIONS, POLL_INTERVAL, Schedule
from .vendors import CANCEL, DOWNLOAD, LINK, POLL, REGENERATION, SUBMISSION, Wire, job_id

AUTH_HEADERS = {"x-api-key", "authorization"}


def check_outcome(wire: Wire, schedule: Schedule, outcome: Outcome, emu: Any, dest: Path) -> list[str]:
    """Invariant 1: the exact bytes, or a failure naming its cause and nothing at the destination."""
    problems: list[str] = []
    present = sorted(p.name for p in dest.parent.iterdir()) if dest.parent.exists() else []
    error = outcome.error
    if error is None:
        assert outcome.result is not None
        expected = wire.expected_sha256(emu, schedule, outcome.result["export_id"])
        got = hashlib.sha256(dest.read_bytes()).hexdigest() if dest.exists() else None
        if got != expected or outcome.result["sha256"] != expected:
            problems.append(f"destination sha256 {got}, XCom {outcome.result['sha256']}, expected {expected}")
        parts = getattr(schedule, "parts", 1)
        if outcome.result["parts"] != parts:
            problems.append(f"{outcome.result['parts']} parts merged, the job had {parts}")
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
        if not re.search(wire.fatal_causes[schedule.fatal], str(error)):
            problems.append(f"error does not name the cause ({schedule.fatal}): {message}")
        if outcome.phase != wire.fatal_phase[schedule.fatal]:
            problems.append(f"{schedule.fatal} surfaced in the {outcome.phase} task: {message}")
    if present:
        problems.append(f"the task failed but the destination directory holds {present}")
    return problems


def check_one_export(wire: Wire, outcome: Outcome, log: list[Any], new_jobs: list[str]) -> list[str]:
    """Invariant 2: one export per task try, and every later step works on that same job."""
    problems: list[str] = []
    accepted = [e for e in log if wire.kind(e) == SUBMISSION and e.status == 202]
    if len(new_jobs) > 1 or len(accepted) > 1:
        problems.append(f"{len(accepted)} submissions accepted, jobs created: {new_jobs}")
    if outcome.export_xcom is None:
        return problems
    export_id = outcome.export_xcom["export_id"]
    job = job_id(export_id)
    if new_jobs != [job]:
        problems.append(f"XCom job {job!r}, jobs created {new_jobs}")
    waited = {job_id(t.export_id) for t in outcome.triggers}
    if waited - {job}:
        problems.append(f"triggers (restarted ones included) waited for {sorted(waited)}")
    touched = {wire.job_of(e) for e in log} - {None}
    if touched - {job}:
        problems.append(f"status, link, regeneration or cancel requests named {sorted(touched)}, not {job!r}")
    if outcome.result is not None and outcome.result["export_id"] != export_id:
        problems.append(f"the transfer downloaded {outcome.result['export_id']!r}, not {export_id!r}")
    return problems


def check_secrets(outcome: Outcome, log: list[Any], emu: Any, logs_text: str) -> list[str]:
    """Invariant 3: the API key stays between the client and the API's origin."""
    problems: list[str] = []
    key = emu.api_key
    if outcome.export_xcom and job_id(outcome.export_xcom["export_id"]) not in logs_text:
        problems.append("the captured logs never mention the export (the log check would prove nothing)")
    api_port = int(emu.base_url.split("/")[2].rsplit(":", 1)[1])
    elsewhere = [e for e in log if e.port != api_port]
    leaked = [
        e
        for e in elsewhere
        if e.had_auth or AUTH_HEADERS & {h.lower() for h in e.headers} or key in repr(e.query)
    ]
    if leaked:
        problems.append(f"{len(leaked)} request(s) to another host than the API's carried credentials")
    if not all(e.had_auth for e in log if e.port == api_port):
        problems.append("an API request went without credentials (the checks here would prove nothing)")
    error_text = "".join(traceback.format_exception(outcome.error)) if outcome.error else ""
    blobs = {
        "logs": logs_text,
        "XComs": repr([outcome.export_xcom, outcome.result]),
        "trigger events": repr(outcome.events),
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


def check_bounds(
    wire: Wire, schedule: Schedule, outcome: Outcome, log: list[Any], elapsed: float
) -> list[str]:
    """Invariant 4: every retry loop stopped within its budget."""
    problems: list[str] = []
    kinds = Counter(wire.kind(e) for e in log if wire.kind(e) != REGENERATION or e.status == 202)
    runs = len(outcome.triggers) + 2  # trigger runs plus the transfer's own waits
    bounds = {
        SUBMISSION: CLIENT_MAX_ATTEMPTS,
        DOWNLOAD: getattr(schedule, "parts", 1) * DOWNLOAD_ATTEMPTS * CLIENT_MAX_ATTEMPTS,
        LINK: 2 * CLIENT_MAX_ATTEMPTS * (DOWNLOAD_ATTEMPTS + 1),
        REGENERATION: MAX_REGENERATIONS * (len(outcome.triggers) + 1),
        CANCEL: len(outcome.triggers) * CLIENT_MAX_ATTEMPTS,
        # A poll starts at least one poll interval after the previous one and makes at most one request
        # per attempt: anything beyond that is a loop hammering the API.
        POLL: 2 * CLIENT_MAX_ATTEMPTS * (elapsed / POLL_INTERVAL + 2 * runs + 4),
    }
    for name, bound in bounds.items():
        if kinds[name] > bound:
            problems.append(f"{kinds[name]} {name} requests, more than the bound {bound:.0f}")
    if schedule.fatal == "submit_dead" and kinds[SUBMISSION] != CLIENT_MAX_ATTEMPTS:
        problems.append(
            f"a dead submit endpoint got {kinds[SUBMISSION]} attempts, configured {CLIENT_MAX_ATTEMPTS}"
        )
    if outcome.overruns:
        problems.append(f"{outcome.overruns} trigger(s) still running long after their deadline")
    if schedule.fatal == "wait_dead":
        # Every poll fails: the poll must back off exponentially, not just at the client's pace.
        bound = CLIENT_MAX_ATTEMPTS * sum(map(max_failing_polls, outcome.run_seconds))
        if kinds[POLL] > bound:
            runs_text = ", ".join(f"{seconds:.2f}s" for seconds in outcome.run_seconds)
            problems.append(
                f"{kinds[POLL]} poll requests against a dead API in trigger runs of {runs_text}: more "
                f"than {bound} (no back-off?)"
            )
    for killed, rebuilt in outcome.rebuilds:
        if trigger_state(rebuilt) != trigger_state(killed):
            problems.append(f"a rebuilt trigger differs: {trigger_state(rebuilt)} vs {trigger_state(killed)}")
    return problems


def injected(wire: Wire, log: list[Any], outcome: Outcome, expired_between: int) -> Counter[str]:
    """Faults that took effect, by the summary's kinds (from the emulator's request log)."""
    counts: Counter[str] = Counter()
    for entry in log:
        if entry.fault == "fail":
            counts["export_failed"] += 1
        elif entry.fault == "expire":
            if wire.kind(entry) == DOWNLOAD:
                counts["expire_during"] += 1
            elif entry.status == 200:  # a link fetch that answered 400 (already expired) used it for nothing
                counts["expire_before"] += 1
        elif entry.fault is not None:
            counts[entry.fault] += 1
    counts["expire_before"] += expired_between
    counts["restart"] += len(outcome.rebuilds)
    return counts
