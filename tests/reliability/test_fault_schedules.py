"""Seeded fault schedules through the whole pipeline (real HTTP to the emulator) on each download vendor's
wire (Qlara: export list, one regenerable link on a storage host; 8x8: jobs, several gzip/zip files, cancel),
the four invariants of ``checks.py`` each.

Replay a failing seed: ``pytest tests/reliability/test_fault_schedules.py -k <vendor> --reliability-seed N``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_msghistory.emulator import Emulator, create_emulator

from .checks import check_bounds, check_one_export, check_outcome, check_secrets, injected
from .conftest import connection_json
from .pipeline import run_pipeline
from .summary import TALLY
from .vendors import WIRES, Wire

# Qlara's links live 10 minutes here: only the schedules expire them.
EMULATOR_OPTIONS: dict[str, dict[str, Any]] = {"qlara": {"link_ttl": 600}}


@pytest.fixture(scope="module", params=list(WIRES))
def vendor_emulator(request: pytest.FixtureRequest) -> Iterator[tuple[Wire, Emulator]]:
    """One emulator per vendor for its schedules (faults, request log and job shape reset per schedule).

    A distinctive API key, so a leak cannot hide behind a common word; ~85 KB per one-day export.
    """
    wire = WIRES[request.param]
    with create_emulator(
        vendor=wire.vendor,
        api_key=f"rel-key-{secrets.token_hex(12)}",
        messages=20_000,
        export_delay=0.1,
        rate_limit=None,
        **EMULATOR_OPTIONS.get(wire.vendor, {}),
    ) as emulator:
        yield wire, emulator


def test_fault_schedule(
    seed: int,
    vendor_emulator: tuple[Wire, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wire, emu = vendor_emulator
    schedule = wire.draw(seed)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", connection_json(emu))
    emu.faults.clear()
    emu.clear_request_log()
    wire.prepare(emu, schedule)
    before = set(wire.jobs(emu))
    for endpoint, actions in schedule.script.items():
        emu.faults.script(endpoint, actions)
    if schedule.dead is not None:  # every request once the script is used up: a dead endpoint
        endpoint, action = schedule.dead
        emu.faults.random(seed, endpoints=[endpoint], **{f"p_{action}": 1.0})
    expired_between: list[str] = []

    def between_tasks(export_id: str) -> None:
        if schedule.expire_before_transfer:
            wire.expire(emu, export_id)
            expired_between.append(export_id)

    dest = tmp_path / "lake" / "messages.csv"
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    outcome = run_pipeline(schedule, dest, between_tasks)
    elapsed = time.monotonic() - started
    emu.faults.clear()
    # The emulator logs a request when it answers: let a late one land in this schedule's log.
    time.sleep(wire.settle_seconds(schedule))
    log = emu.request_log
    new_jobs = [job for job in wire.jobs(emu) if job not in before]
    captured = capsys.readouterr()
    logs_text = caplog.text + captured.out + captured.err

    problems = (
        check_outcome(wire, schedule, outcome, emu, dest)
        + check_one_export(wire, outcome, log, new_jobs)
        + check_secrets(outcome, log, emu, logs_text)
        + check_bounds(wire, schedule, outcome, log, elapsed)
    )
    TALLY.schedules += 1
    TALLY.faults.update(injected(wire, log, outcome, len(expired_between)))
    TALLY.outcomes[f"{wire.vendor}_{'delivered' if outcome.error is None else 'failed_as_designed'}"] += 1
    if problems:
        TALLY.failing_seeds.append(seed)
        phases = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in outcome.elapsed.items())
        requests = [(e.server, e.method, e.path.rsplit("/", 1)[-1][:12], e.status, e.fault) for e in log]
        pytest.fail(
            f"invariant violations for {schedule.describe()}\n"
            + "\n".join(f"  - {p}" for p in problems)
            + f"\n  phases: {phases}; error: {outcome.error!r}\n  requests: {requests}"
            + f"\n  replay: pytest tests/reliability/test_fault_schedules.py -k {wire.vendor!r} "
            f"--reliability-seed {seed}",
            pytrace=False,
        )
