"""Seeded fault schedules on the message-list path: the list load under 5xx, 429, resets and slow answers.

Per seed, the emulator's history endpoint gets bursts of transient faults that fit the client's retry
budget (recoverable), or goes dead after them (fatal by design). Invariants:

1. Recoverable: the file holds exactly the window's records, each once, and the XCom's SHA-256 is the
   file's. Fatal: the task fails naming the HTTP status, and the destination directory is empty.
2. Retries stop within the budget: a dead endpoint gets ``CLIENT_MAX_ATTEMPTS`` attempts per page, no more.
3. The API key is never in the XCom, the exception, or a log line.

Replay a failing seed: ``pytest tests/reliability/test_message_list_schedules.py --reliability-seed N``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_msghistory.emulator import Emulator
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

from .conftest import connection_json
from .schedules import _TRANSIENT, CLIENT_MAX_ATTEMPTS, DEFAULT_SEEDS, _api_script, selected_seeds

PAGE_SIZE = 50  # ~5 pages per channel-day of the module's emulator (20,000 messages over 31 days)
P_DEAD = 0.25
CI_SEEDS = 60  # of the fixed CI list: the list path has fewer moving parts than the export pipeline


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "list_seed" in metafunc.fixturenames:
        seeds = selected_seeds(metafunc.config.getoption("reliability_seed", default=None))
        if seeds == list(DEFAULT_SEEDS):
            seeds = seeds[:CI_SEEDS]
        metafunc.parametrize("list_seed", seeds, ids=[f"seed{seed}" for seed in seeds])


def draw(seed: int) -> tuple[list[str], str | None, int]:
    """The history endpoint's script, the status it serves once dead (``None``: it recovers), the day."""
    rng = random.Random(f"message-list:{seed}")
    script = _api_script(rng, max_bursts=6)
    dead = rng.choice(("500", "503")) if rng.random() < P_DEAD else None
    return script, dead, rng.randint(1, 29)


def test_message_list_schedule(
    list_seed: int,
    reliability_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu, seed = reliability_emulator, list_seed
    script, dead, day = draw(seed)
    start, end = f"2025-01-{day:02d}T00:00:00+00:00", f"2025-01-{day + 1:02d}T00:00:00+00:00"
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", connection_json(emu))
    emu.faults.clear()
    emu.clear_request_log()
    emu.faults.script("history", script)
    if dead is not None:
        emu.faults.random(seed, endpoints=["history"], **{f"p_{dead}": 1.0})
    dest = tmp_path / "out" / "messages.jsonl"
    op = MsgHistoryMessagesToStorageOperator(
        task_id="load", destination=str(dest), start_datetime=start, end_datetime=end, page_size=PAGE_SIZE
    )
    caplog.set_level(logging.DEBUG)
    result: dict[str, Any] | None = None
    error: Exception | None = None
    try:
        result = op.execute({})
    except Exception as exc:
        error = exc
    finally:
        emu.faults.clear()
    calls = [r for r in emu.request_log if r.server == "api" and r.path.endswith("/messages/history")]
    problems: list[str] = []

    present = sorted(p.name for p in dest.parent.iterdir()) if dest.parent.exists() else []
    if dead is None:
        if error is not None:
            problems.append(f"recoverable schedule failed: {type(error).__name__}: {error}")
        else:
            records = [json.loads(line) for line in dest.read_text().splitlines()]
            if records != emu.expected_messages(start, end):
                problems.append(
                    f"{len(records)} records stored, expected {len(emu.expected_messages(start, end))}"
                )
            if result["sha256"] != hashlib.sha256(dest.read_bytes()).hexdigest():
                problems.append("the XCom's sha256 is not the file's")
            if present != [dest.name]:
                problems.append(f"the directory holds {present}")
    else:
        if error is None or (f"HTTP {dead}" not in str(error) and dead not in str(error)):
            problems.append(f"a dead endpoint ({dead}) gave {error!r}")
        if present:
            problems.append(f"the task failed but the directory holds {present}")
        tail = 0  # attempts at the page the task died on
        for call in reversed(calls):
            if call.query != calls[-1].query:
                break
            tail += 1
        if tail != CLIENT_MAX_ATTEMPTS:
            problems.append(
                f"the dead endpoint got {tail} attempts for its last page, not {CLIENT_MAX_ATTEMPTS}"
            )
    key = emu.api_key
    texts = [json.dumps(result), str(error), caplog.text]
    if any(key in text for text in texts):
        problems.append("the API key leaked into the XCom, the error or the logs")
    assert not problems, f"seed={seed} script={script} dead={dead} day={day}: " + "; ".join(problems)
    assert set(_TRANSIENT) >= {a for a in script if a != "ok" and not a.startswith("slow")}
