"""Seeded fault schedules against Messangi's e-mailed reports and its message log (real HTTP to the
Messangi emulator). For the message log: retried loads store exactly the window's records or nothing.

Per seed: a window of 1-300 days, a few channels or none, an API key or a login, faults scripted on the
login and report endpoints (500, 503, 429, a reset, a slow answer), login keys expired between tries;
the export task is retried (as Airflow would) until it succeeds, sharing one ``task_state_store``.
Invariants:

1. The accepted report requests tile the window per channel: contiguous, non-overlapping, each at most 92
   days, the first starting at ``start`` and the last ending 1 ms before ``end``.
2. With a state store (Airflow >= 3.3) no piece is mailed twice, however many tries it took; the XCom
   names exactly the accepted transaction ids.
3. Every failed try says which piece failed; the tries stay within the bound the faults allow.
4. Neither the API key, nor a login key, nor the password appears in a log line or an exception.

Replay a failing seed: ``pytest tests/reliability/test_fault_schedules_messangi.py --reliability-seed N``.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from state_store import DictStateStore

from airflow_provider_msghistory.client.errors import MsgHistoryError
from airflow_provider_msghistory.client.login import forget_login_keys
from airflow_provider_msghistory.emulator import Emulator, create_emulator
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

from .conftest import connection_json

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)
CAP = timedelta(days=92)
FAULTS = (500, 503, 429, "reset", "slow:0.05")
MAX_TRIES = 12


def has_task_state_store() -> bool:
    from airflow.providers.common.compat.sdk import ResumableJobMixin

    return ResumableJobMixin.__module__.startswith("airflow.sdk")


@pytest.fixture(scope="module")
def messangi() -> Iterator[Emulator]:
    with create_emulator(
        vendor="messangi",
        api_key=f"rel-key-{secrets.token_hex(12)}",
        password=f"rel-pw-{secrets.token_hex(12)}",
        messages=4000,
        rate_limit=None,
    ) as emulator:
        yield emulator


def zulu(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def expected_pieces(start: datetime, end: datetime, channels: list[str]) -> list[tuple[str, str, str]]:
    """(from, to, channel) of each request a correct provider sends, in order."""
    pieces = []
    piece_start = start
    while piece_start < end:
        piece_end = min(piece_start + CAP, end)
        for channel in channels or [""]:
            pieces.append((zulu(piece_start), zulu(piece_end - MS), channel))
        piece_start = piece_end
    return pieces


def test_messangi_fault_schedule(
    seed: int,
    messangi: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(seed)
    forget_login_keys()
    messangi.faults.clear()
    messangi.clear_request_log()
    already = len(messangi.report_requests)

    start = START + timedelta(hours=rng.randrange(0, 24 * 30), milliseconds=rng.randrange(0, 1000))
    end = start + timedelta(days=rng.randrange(1, 300), milliseconds=rng.randrange(1, 1000))
    channels = rng.sample(["S", "E", "P", "W", "R"], rng.choice([0, 0, 1, 2, 3]))
    login = rng.random() < 0.5
    conn = connection_json(
        messangi,
        max_attempts=rng.choice([1, 2, 4]),
        report_emails=["ops@acme.example"],
        report_sender="reports@acme.example",
    )
    if login:  # the same extras, with login + password instead of the key
        fields = json.loads(conn)
        fields.pop("password")
        fields.update(login=messangi.username, password=messangi.password)
        conn = json.dumps(fields)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn)
    scripted = 0
    for endpoint in ("export", "login") if login else ("export",):
        actions = [rng.choice(FAULTS) if rng.random() < 0.35 else "ok" for _ in range(rng.randrange(0, 10))]
        scripted += sum(action != "ok" for action in actions)
        messangi.faults.script(endpoint, actions)
    caplog.set_level(logging.DEBUG)

    store = DictStateStore()
    result: dict[str, Any] | None = None
    failures: list[str] = []
    for _ in range(MAX_TRIES):
        if login and rng.random() < 0.3:
            messangi.expire_keys()  # the 24 h ran out between two tries
        task = MsgHistoryExportOperator(
            task_id="email_report",
            export_type="message_history",
            start_datetime=start.isoformat(),
            end_datetime=end.isoformat(),
            filters={"channel": channels} if channels else None,
        )
        try:
            result = task.execute({"task_state_store": store})
            break
        except AirflowException as error:
            failures.append(str(error))
    assert result is not None, f"seed {seed}: no success in {MAX_TRIES} tries: {failures[-3:]}"

    # 3. every failure names its piece; no more failed tries than faults scripted
    assert all(text.startswith("report ") and " of " in text for text in failures), failures
    assert len(failures) <= scripted

    # 1. the accepted requests tile the window per channel
    accepted = messangi.report_requests[already:]
    sent = [(r.query["from"], r.query["to"], r.query.get("channel", "")) for r in accepted]
    wanted = expected_pieces(start, end, channels)
    assert set(sent) == set(wanted)
    # 2. with a state store: each piece exactly once, and the XCom names exactly those transactions
    if has_task_state_store():
        assert sorted(Counter(sent).values()) == [1] * len(wanted), f"seed {seed}: mailed twice"
        assert [r["transaction_id"] for r in result["requests"]] == [r.transaction_id for r in accepted]
    assert [r.get("filters", {}).get("channel", "") for r in result["requests"]] == [c for _, _, c in wanted]

    # 4. no credential in a log line or an error
    keys = messangi.login_keys()
    shown = caplog.text + capsys.readouterr().out + "\n".join(failures)
    for secret in (messangi.api_key, messangi.password, *keys):
        assert secret and secret not in shown


def test_messangi_message_log_fault_schedule(
    seed: int,
    messangi: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The message log under the same kind of faults: retried loads write exactly the window's records
    (every channel, cut by ``createdAt``), or nothing; no credential is shown."""
    rng = random.Random(seed)
    forget_login_keys()
    messangi.faults.clear()
    messangi.clear_request_log()
    start = START + timedelta(
        days=rng.randrange(0, 150), milliseconds=rng.choice([0, 0, rng.randrange(1000)])
    )
    end = start + timedelta(hours=rng.randrange(1, 24 * 120))
    channels = rng.sample(["S", "E", "P", "W", "R", "SMS", "WHATSAPP"], rng.randrange(1, 4))
    login = rng.random() < 0.5
    fields = json.loads(connection_json(messangi, max_attempts=rng.choice([1, 2, 4])))
    if login:
        fields.pop("password")
        fields.update(login=messangi.username, password=messangi.password)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(fields))
    scripted = 0
    for endpoint in ("mlog", "login") if login else ("mlog",):
        actions = [rng.choice(FAULTS) if rng.random() < 0.3 else "ok" for _ in range(rng.randrange(0, 12))]
        scripted += sum(action != "ok" for action in actions)
        messangi.faults.script(endpoint, actions)
    caplog.set_level(logging.DEBUG)
    destination = tmp_path / "mlog.jsonl"

    failures: list[str] = []
    for _ in range(MAX_TRIES):
        if login and rng.random() < 0.3:
            messangi.expire_keys()
        task = MsgHistoryMessagesToStorageOperator(
            task_id="load",
            destination=f"file://{destination}",
            start_datetime=start.isoformat(),
            end_datetime=end.isoformat(),
            channels=channels,
            page_size=rng.choice([50, 200, 1000]),
            if_exists="replace",
        )
        try:
            task.execute({})
            break
        except (AirflowException, MsgHistoryError) as error:  # a failed try: Airflow retries it
            failures.append(str(error))
            assert not destination.exists()  # nothing partial
    else:
        pytest.fail(f"seed {seed}: no success in {MAX_TRIES} tries: {failures[-3:]}")
    assert len(failures) <= scripted

    codes = list(dict.fromkeys({"SMS": "S", "WHATSAPP": "W"}.get(c, c) for c in channels))
    want = [r for channel in codes for r in messangi.expected_records(start, end, channel)]
    got = [json.loads(line) for line in destination.read_text().splitlines()]
    assert got == want, f"seed {seed}"

    keys = messangi.login_keys()
    shown = caplog.text + "\n".join(failures)
    for secret in (messangi.api_key, messangi.password, *keys):
        assert secret not in shown
