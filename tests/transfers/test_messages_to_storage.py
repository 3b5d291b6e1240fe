"""MsgHistoryMessagesToStorageOperator: the emulator's message list over loopback HTTP into local files and
moto S3, exact windows, pacing under the rate limit, nothing partial on failure."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from triggers.helpers import conn_json

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator

from .conftest import AWS_CONN_ID, S3Server

DAY2, DAY3, DAY4 = (f"2025-01-0{d}T00:00:00+00:00" for d in (2, 3, 4))
HISTORY = "/messages/history"


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = msghistory_emulator_factory(messages=3000)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    return emulator


def load(
    destination: str, start: str = DAY2, end: str = DAY3, **kwargs: Any
) -> MsgHistoryMessagesToStorageOperator:
    return MsgHistoryMessagesToStorageOperator(
        task_id="load", destination=destination, start_datetime=start, end_datetime=end, **kwargs
    )


def expected(
    emu: Any,
    start: str,
    end: str,
    channels: tuple[str, ...] = ("SMS", "RCS", "WHATSAPP"),
    status: str | None = None,
) -> list[dict[str, Any]]:
    """What the window holds, in the operator's order (channel by channel, oldest first)."""
    first = int(datetime.fromisoformat(start).timestamp() * 1000)
    stop = int(datetime.fromisoformat(end).timestamp() * 1000)
    return [
        m.to_json()
        for channel in channels
        for m in emu.dataset.channel_range(channel, first, stop - 1)
        if status is None or m.status == status
    ]


def jsonl(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode().splitlines()]


def history_calls(emu: Any) -> list[Any]:
    return [r for r in emu.request_log if r.server == "api" and r.path.endswith(HISTORY)]


def thread_may_run_operators() -> None:
    """Airflow 2 guards ``execute`` with a thread-local set up in the main thread only."""
    try:
        from airflow.models.baseoperator import ExecutorSafeguard
    except ImportError:
        return
    sentinel = getattr(ExecutorSafeguard, "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- exact windows ---------------------------------------------------------------------------------------
def test_consecutive_windows_give_every_message_once_boundaries_included(emu: Any, tmp_path: Path) -> None:
    first = load((tmp_path / "d2.jsonl").as_uri(), DAY2, DAY3).execute({})
    second = load((tmp_path / "d3.jsonl").as_uri(), DAY3, DAY4).execute({})

    day2, day3 = jsonl(tmp_path / "d2.jsonl"), jsonl(tmp_path / "d3.jsonl")
    assert day2 == expected(emu, DAY2, DAY3) and day3 == expected(emu, DAY3, DAY4)
    ids = [m["messageId"] for m in day2 + day3]
    assert len(ids) == len(set(ids)) == len(expected(emu, DAY2, DAY4))
    # The dataset sends one message per channel at 00:00:00.000 and at 23:59:59.999 of every day.
    assert {m["sendDate"] for m in day2} >= {"2025-01-02T00:00:00.000Z", "2025-01-02T23:59:59.999Z"}
    assert "2025-01-03T00:00:00.000Z" not in {m["sendDate"] for m in day2}
    assert {m["sendDate"] for m in day3} >= {"2025-01-03T00:00:00.000Z", "2025-01-03T23:59:59.999Z"}
    bounds = {(r.query["from"], r.query["to"]) for r in history_calls(emu)}
    assert bounds == {
        ("2025-01-02T00:00:00.000+00:00", "2025-01-02T23:59:59.999+00:00"),
        ("2025-01-03T00:00:00.000+00:00", "2025-01-03T23:59:59.999+00:00"),
    }
    data = (tmp_path / "d2.jsonl").read_bytes()
    assert first["sha256"] == hashlib.sha256(data).hexdigest() and first["bytes"] == len(data)
    assert (first["records"], second["records"]) == (len(day2), len(day3))
    assert first["path"] == (tmp_path / "d2.jsonl").as_uri()
    assert leftovers(tmp_path) == ["d2.jsonl", "d3.jsonl"]


def test_every_channel_by_default_with_the_largest_page_and_the_last_page_rule(
    emu: Any, tmp_path: Path
) -> None:
    result = load(str(tmp_path / "all.jsonl"), DAY2, DAY4, page_size=20).execute({})

    calls = history_calls(emu)
    per_channel = {
        c: [int(r.query["page"]) for r in calls if r.query["channel"] == c]
        for c in ("SMS", "RCS", "WHATSAPP")
    }
    for channel, pages in per_channel.items():
        count = len(expected(emu, DAY2, DAY4, (channel,)))
        # up to the first short page, and one more that confirms it was the end (a bare list says no total)
        assert pages == list(range(count // 20 + 1 + (count % 20 > 0)))
    assert result["requests"] == len(calls) and result["channels"] == ["SMS", "RCS", "WHATSAPP"]
    assert {m["channel"] for m in jsonl(tmp_path / "all.jsonl")} == {"SMS", "RCS", "WHATSAPP"}

    emu.clear_request_log()
    load(str(tmp_path / "big.jsonl"), DAY2, DAY4).execute({})
    assert {r.query["limit"] for r in history_calls(emu)} == {str(QlaraDialect.message_list.max_page_size)}


def test_status_filter_and_a_channel_subset(emu: Any, tmp_path: Path) -> None:
    result = load(
        str(tmp_path / "err.jsonl"), DAY2, DAY4, channels=["whatsapp", "SMS"], status="error"
    ).execute({})

    got = jsonl(tmp_path / "err.jsonl")
    assert got == expected(emu, DAY2, DAY4, ("WHATSAPP", "SMS"), status="ERROR") and got
    assert {r.query["status"] for r in history_calls(emu)} == {"ERROR"}
    assert (result["status"], result["channels"]) == ("ERROR", ["WHATSAPP", "SMS"])


@pytest.mark.parametrize("wrap", [None, "content", "items", "data", "messages"])
def test_bare_and_wrapped_lists_give_the_same_file(emu: Any, tmp_path: Path, wrap: str | None) -> None:
    emu.set_shape(history_wrap=wrap)
    result = load(str(tmp_path / "m.jsonl"), page_size=50).execute({})
    assert jsonl(tmp_path / "m.jsonl") == expected(emu, DAY2, DAY3)
    assert result["sha256"] == hashlib.sha256((tmp_path / "m.jsonl").read_bytes()).hexdigest()


def test_a_server_clamping_the_page_size_loses_nothing(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emulator = msghistory_emulator_factory(messages=3000, history_max_limit=25)
    emulator.set_shape(history_over_limit="clamp")  # serves 25 per page whatever the limit asked
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    result = load(str(tmp_path / "m.jsonl"), DAY2, DAY4).execute({})
    assert jsonl(tmp_path / "m.jsonl") == emulator.expected_messages(DAY2, DAY4)
    # 3 channels of 25 + 25 + a short page + an empty one confirming the end
    assert result["requests"] == len(history_calls(emulator)) == 12


def test_records_with_only_the_documented_fields(emu: Any, tmp_path: Path) -> None:
    emu.set_shape(history_record="documented")  # customerMessageId, deliveryStatus(+Description), no channel
    result = load(str(tmp_path / "m.csv"), format="csv").execute({})
    rows = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text())))
    assert list(rows[0]) == list(QlaraDialect.message_list.fields)  # stable columns, empty where absent
    want = [m for channel in ("SMS", "RCS", "WHATSAPP") for m in emu.expected_messages(DAY2, DAY3, channel)]
    assert [(r["customerMessageId"] or None, r["deliveryStatus"], r["channel"]) for r in rows] == [
        (m["customerMessageId"], m["deliveryStatus"], c)
        for c in ("SMS", "RCS", "WHATSAPP")
        for m in emu.expected_messages(DAY2, DAY3, c)
    ]
    assert result["records"] == len(want) > 0


def test_channel_is_added_only_where_a_record_lacks_it(emu: Any, tmp_path: Path) -> None:
    from airflow_provider_msghistory.client.history import HistoryWalk

    walk = HistoryWalk(
        QlaraDialect(ClientConfig(api_key="k")),
        "RCS",
        datetime(2025, 1, 2, tzinfo=timezone.utc),
        datetime(2025, 1, 3, tzinfo=timezone.utc),
        None,
        10,
    )
    page = walk.absorb(
        [
            {"messageId": "a", "sendDate": "2025-01-02T10:00:00.000Z"},
            {"messageId": "b", "channel": "SMS"},
            {"messageId": "c", "channel": None},
            {"messageId": "late", "sendDate": "2025-01-03T00:00:00.000Z"},
        ]
    )
    assert [(m["messageId"], m["channel"]) for m in page.messages] == [
        ("a", "RCS"),
        ("b", "SMS"),
        ("c", "RCS"),
    ]
    # The late one was served but is outside the window; a short first page is confirmed by the next one.
    assert (page.served, page.last) == (4, False)
    assert walk.absorb([]).last and walk.page == 2


def test_a_server_that_clamps_the_page_size_is_paged_by_its_own_size() -> None:
    from airflow_provider_msghistory.client.history import HistoryWalk

    day = datetime(2025, 1, 2, tzinfo=timezone.utc)
    walk = HistoryWalk(QlaraDialect(ClientConfig(api_key="k")), "SMS", day, day.replace(day=3), None, 1000)
    pages = [[{"messageId": f"{p}-{i}"} for i in range(n)] for p, n in enumerate((100, 100, 100, 7, 0))]
    seen = [walk.absorb(page) for page in pages]
    assert [p.last for p in seen] == [False, False, False, False, True]  # the empty page confirms
    assert walk.request().params["limit"] == 1000  # still asked for; the server decides


# --- formats and storage ---------------------------------------------------------------------------------
def test_csv_has_the_known_columns_first_then_the_others_in_first_seen_order(
    emu: Any, tmp_path: Path
) -> None:
    result = load(str(tmp_path / "m.csv"), format="csv", page_size=100).execute({})

    text = (tmp_path / "m.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    known = list(QlaraDialect.message_list.fields)
    assert header[: len(known)] == known and header[len(known) :] == ["origin", "campaignId"]
    want = expected(emu, DAY2, DAY3)
    assert len(body) == len(want) == result["records"]
    for row, message in zip(body, want, strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells == {k: "" if message[k] is None else str(message[k]) for k in header}
    assert result["sha256"] == hashlib.sha256(text.encode()).hexdigest() and result["format"] == "csv"
    assert leftovers(tmp_path) == ["m.csv"]


def test_csv_columns_stay_stable_when_fields_come_and_go() -> None:
    from airflow_provider_msghistory.transfers.records import CsvRecordWriter

    out: list[bytes] = []
    writer = CsvRecordWriter(out.append, ["id", "channel"])
    for record in ({"id": 1, "x": {"a": [1]}}, {"channel": "SMS", "id": 2, "y": True}, {"id": 3, "x": None}):
        writer.add(record)
    writer.finish()
    assert b"".join(out).decode() == 'id,channel,x,y\n1,,"{""a"":[1]}",\n2,SMS,,true\n3,,,\n'
    assert writer.records == 3 and writer.bytes == len(b"".join(out))


def test_gzip_jsonl_to_s3_through_moto(emu: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    result = load(
        f"s3://{bucket}/messages/day.jsonl.gz", storage_conn_id=AWS_CONN_ID, compression="gzip"
    ).execute({})

    stored = s3.read(bucket, "messages/day.jsonl.gz")
    plain = gzip.decompress(stored)
    assert [json.loads(line) for line in plain.decode().splitlines()] == expected(emu, DAY2, DAY3)
    assert result["sha256"] == hashlib.sha256(plain).hexdigest()
    assert (result["bytes"], result["stored_bytes"]) == (len(plain), len(stored))
    assert s3.keys(bucket) == ["messages/day.jsonl.gz"] and s3.pending_uploads(bucket) == []


def test_a_failure_mid_paging_leaves_nothing_on_s3(emu: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    emu.faults.script("history", ["ok"] * 3 + [400])
    with pytest.raises(Exception, match="400"):
        load(f"s3://{bucket}/day.csv", storage_conn_id=AWS_CONN_ID, format="csv", page_size=20).execute({})
    assert s3.keys(bucket) == [] and s3.pending_uploads(bucket) == []


def test_static_destination_is_an_asset_and_skip_reads_nothing(emu: Any, tmp_path: Path) -> None:
    dest = tmp_path / "m.jsonl"
    dest.write_text("old\n")
    op = load(str(dest), if_exists="skip")
    assert [o.uri for o in op.outlets] == [dest.as_uri()]
    assert op.execute({})["skipped"] is True and dest.read_text() == "old\n"
    assert history_calls(emu) == []
    templated = load(str(tmp_path / "{{ ds }}.jsonl"))
    assert templated.outlets == []


# --- faults ----------------------------------------------------------------------------------------------
def test_5xx_and_resets_mid_paging_are_retried_without_duplicates(emu: Any, tmp_path: Path) -> None:
    emu.faults.script("history", ["ok", "ok", 500, "reset", 503, "ok", 502])
    result = load(str(tmp_path / "m.jsonl"), page_size=20).execute({})
    assert jsonl(tmp_path / "m.jsonl") == expected(emu, DAY2, DAY3)
    statuses = [r.status for r in history_calls(emu)]
    assert statuses[:7] == [200, 200, 500, 0, 503, 200, 502]
    assert result["requests"] == statuses.count(200)


def test_a_429_storm_longer_than_the_retry_attempts_is_ridden_out(emu: Any, tmp_path: Path) -> None:
    emu.faults.retry_after = 1
    emu.faults.script("history", ["ok"] + [429] * 7)  # more 429s in a row than max_attempts (5)
    result = load(str(tmp_path / "m.jsonl"), page_size=100).execute({})
    assert jsonl(tmp_path / "m.jsonl") == expected(emu, DAY2, DAY3)
    statuses = [r.status for r in history_calls(emu)]
    assert statuses.count(429) == 7 and result["requests"] == statuses.count(200)
    times = [r.time for r in history_calls(emu)]
    gaps = [b - a for a, b in itertools.pairwise(times[1:9])]
    assert min(gaps) >= 0.9  # every retry waited the server's retryAfter


def test_the_server_rate_limit_without_matching_pacing_is_recovered(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A trial key (server: 60/min, 6/s) used with the production pacing: the server refuses, we recover.
    emulator = msghistory_emulator_factory(messages=3000, rate_limit=(60, 6))
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    load(str(tmp_path / "m.jsonl"), DAY2, DAY4, page_size=5).execute({})
    assert jsonl(tmp_path / "m.jsonl") == expected(emulator, DAY2, DAY4)
    assert 429 in [r.status for r in history_calls(emulator)]


def test_two_concurrent_loads_share_the_keys_pace_and_are_never_refused(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The key is paced one request a second under the server's burst limit: a request the client sent a
    # second after another can reach the server sooner (scheduling on a loaded machine), and at the very
    # limit that alone draws a 429. Unshared, the two loads would still send ~14/s against 8/s.
    emulator = msghistory_emulator_factory(messages=3000, rate_limit=(600, 8))
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator, requests_per_minute=600, requests_per_second=7)
    )
    results: dict[str, Any] = {}

    def run(name: str, start: str, end: str) -> None:
        thread_may_run_operators()
        try:
            results[name] = load(str(tmp_path / f"{name}.jsonl"), start, end, page_size=4).execute({})
        except Exception as error:
            results[name] = error

    threads = [
        threading.Thread(target=run, args=("a", DAY2, DAY3)),
        threading.Thread(target=run, args=("b", DAY3, DAY4)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert all(isinstance(r, dict) for r in results.values()), results
    assert jsonl(tmp_path / "a.jsonl") == expected(emulator, DAY2, DAY3)
    assert jsonl(tmp_path / "b.jsonl") == expected(emulator, DAY3, DAY4)
    calls = history_calls(emulator)
    assert [r.status for r in calls if r.status != 200] == []
    assert len(calls) == results["a"]["requests"] + results["b"]["requests"] > 40
    times = sorted(r.time for r in calls)
    busiest = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    assert busiest <= 8  # the two loads together kept under the burst limit


def test_kill_mid_load_leaves_nothing_at_the_destination(
    msghistory_emulator_factory: Callable[..., Any], tmp_path: Path
) -> None:
    emu = msghistory_emulator_factory(messages=3000, latency=0.2)
    script = textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as Airflow's task runner does
        from airflow_provider_msghistory.transfers.messages_to_storage import (
            MsgHistoryMessagesToStorageOperator,
        )
        MsgHistoryMessagesToStorageOperator(
            task_id="load", destination=sys.argv[1], start_datetime={DAY2!r}, end_datetime={DAY4!r},
            page_size=10,
        ).execute({{}})
    """)
    env = {**os.environ, "AIRFLOW_CONN_MSGHISTORY_DEFAULT": conn_json(emu)}
    for sig, name in ((signal.SIGTERM, "term"), (signal.SIGKILL, "kill")):
        dest = tmp_path / name / "m.jsonl"
        proc = subprocess.Popen([sys.executable, "-c", script, str(dest)], env=env)
        deadline = time.monotonic() + 60
        while len(history_calls(emu)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the load finished before it could be interrupted"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert not dest.exists()
        if sig == signal.SIGTERM:
            assert leftovers(dest.parent) == []  # the part file was discarded
        else:
            assert all(n.startswith(".m.jsonl.part-") for n in leftovers(dest.parent))  # hidden only
        emu.clear_request_log()


# --- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"format": "parquet"}, "format"),
        ({"start": "2025-01-02T00:00:00"}, "start_datetime"),
        ({"end": DAY2}, "start_datetime"),  # empty window
        ({"start": DAY3, "end": DAY2}, "start_datetime"),  # inverted
        ({"channels": []}, "channels"),
        ({"channels": "  "}, "channels"),
        ({"status": 5}, "status"),
        ({"page_size": 0}, "page_size"),
        ({"if_exists": "overwrite"}, "if_exists"),
        ({"compression": "zip"}, "compression"),
    ],
)
def test_bad_static_arguments_fail_at_parse(kwargs: dict[str, Any], field: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        load(str(tmp_path / "m.jsonl"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"channels": ["SMS", "TELEGRAM"]}, "channels"),
        ({"status": "READ"}, "status"),
        ({"page_size": 5000}, "page_size"),
        ({"start": "{{ 'not a date' }}"}, "start_datetime"),
    ],
)
def test_bad_arguments_for_the_vendor_fail_at_task_start_before_any_request(
    emu: Any, tmp_path: Path, kwargs: dict[str, Any], field: str
) -> None:
    op = load(str(tmp_path / "m.jsonl"), **kwargs)
    if "start" in kwargs:
        op.start_datetime = "not a date"  # as rendered
    with pytest.raises(ValueError, match=f"^{field}:") as caught:
        op.execute({})
    assert isinstance(caught.value, AirflowFailException)  # no retry: it would fail the same way
    assert emu.request_log == [] and leftovers(tmp_path) == []


def test_a_run_without_a_data_interval_says_what_to_pass(emu: Any, tmp_path: Path) -> None:
    op = MsgHistoryMessagesToStorageOperator(task_id="load", destination=str(tmp_path / "m.jsonl"))
    op.start_datetime = op.end_datetime = ""  # the default window, rendered for a run without a logical date
    with pytest.raises(AirflowFailException, match=r"^start_datetime: this run has no data interval"):
        op.execute({})
    assert emu.request_log == []


def test_a_vendor_without_a_message_list_fails_at_task_start(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QlaraDialect, "message_list", None)
    with pytest.raises(
        AirflowFailException, match=r"^msghistory_conn_id: .*'qlara' has no paged message list"
    ):
        load(str(tmp_path / "m.jsonl")).execute({})
    assert emu.request_log == []


def test_a_permission_error_names_the_destination(emu: Any) -> None:
    url = "file:///sys/msghistory-test/messages.csv"  # sysfs refuses new directories, even to root
    with pytest.raises(PermissionError) as info:
        load(url).execute({})
    message = str(info.value)
    assert message.startswith(f"destination: permission denied on {url!r} with storage_conn_id=None (")
