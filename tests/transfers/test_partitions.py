"""Date partitions and restatement (issue 19): export and message list over HTTP into files and moto S3."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from triggers.helpers import conn_json

from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator
from airflow_provider_msghistory.transfers.partitions import CsvPartitioner, Staged, partitioning

from .conftest import AWS_CONN_ID, S3Server

UTC = timezone.utc


def temporary(label: str) -> Staged:
    """Stages a partition in an anonymous temporary file."""
    return Staged(label, None)


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = msghistory_emulator_factory(messages=1500, days=10, export_delay=0.05)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    return emulator


def export(start: datetime, end: datetime, restate_days: int = 2, **kwargs: Any) -> str:
    op = MsgHistoryExportOperator(
        task_id="export", export_type="message_history", start_datetime=start.isoformat(),
        end_datetime=end.isoformat(), restate_days=restate_days, poll_interval=0.05, timeout=20,
        deferrable=False, **kwargs,
    )  # fmt: skip
    return str(op.execute({})["export_id"])


def transfer(export_id: str, destination: str, **kwargs: Any) -> dict[str, Any]:
    op = MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=destination, partition_by="day",
        poll_interval=0.05, timeout=20, deferrable=False, **kwargs,
    )  # fmt: skip
    return op.execute({})


def rows_of(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def day(n: int) -> datetime:
    return datetime(2025, 1, n, tzinfo=UTC)


def test_restated_export_writes_every_day_of_the_widened_window_with_manifests(
    emu: Any, tmp_path: Path
) -> None:
    export_id = export(day(5), day(6), restate_days=2)
    ref = ExportRef.parse(export_id)
    assert ref.window == Window(day(3), day(6)) and ref.asked is not None

    template = f"{tmp_path.as_uri()}/date={{partition}}/messages.csv"
    result = transfer(export_id, template)

    whole = rows_of(emu.export_csv(ref.job_id))
    assert [p["partition"] for p in result["partitions"]] == ["2025-01-03", "2025-01-04", "2025-01-05"]
    seen: set[str] = set()
    for entry in result["partitions"]:
        path = tmp_path / f"date={entry['partition']}" / "messages.csv"
        data = path.read_bytes()
        rows = rows_of(data)
        assert data.startswith(b"messageId,") and data.count(b"messageId,") == 1  # the header once
        assert rows and all(r["sendDate"].startswith(entry["partition"]) for r in rows)
        assert not seen & {r["messageId"] for r in rows}
        seen |= {r["messageId"] for r in rows}
        manifest = json.loads(Path(str(path) + ".manifest.json").read_text())
        assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert manifest["rows"] == len(rows) == entry["rows"] and manifest["bytes"] == len(data)
        assert manifest["vendor"] == "qlara" and manifest["export_ids"] == [export_id]
        assert manifest["window"] == {
            "start": "2025-01-03T00:00:00.000000Z",
            "end": "2025-01-06T00:00:00.000000Z",
        }
        assert manifest["snapshot"] == entry["snapshot"] and entry["replaced"]
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[r["deliveryStatus"]] = statuses.get(r["deliveryStatus"], 0) + 1
        assert manifest["statuses"] == entry["statuses"] == dict(sorted(statuses.items()))
    assert seen == {r["messageId"] for r in whole}  # none missing, none twice
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".") and "part" in p.name) == []


def test_unpartitioned_run_is_unchanged_by_default(emu: Any) -> None:
    export_id = export(day(5), day(6), restate_days=0)
    assert ";" not in export_id  # Qlara's bare id, as before


def test_an_empty_day_gets_a_header_only_file(emu: Any, tmp_path: Path) -> None:
    # The dataset covers 10 days; the 12th is past its end: no messages, still a file.
    export_id = export(day(11), day(13), restate_days=1)
    result = transfer(export_id, f"{tmp_path.as_uri()}/{{partition}}.csv")
    by_day = {p["partition"]: p for p in result["partitions"]}
    assert list(by_day) == ["2025-01-10", "2025-01-11", "2025-01-12"]
    assert by_day["2025-01-10"]["rows"] > 0
    assert by_day["2025-01-12"]["rows"] == 0
    header = (tmp_path / "2025-01-12.csv").read_bytes()
    assert header.startswith(b"messageId,") and header.count(b"\n") == 1


def test_an_older_snapshot_finishing_last_leaves_the_newer_partition_local(
    emu: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    older = export(day(5), day(6), restate_days=1)
    newer = export(day(6), day(7), restate_days=1)  # restates the 5th too, asked later
    template = f"{tmp_path.as_uri()}/{{partition}}/m.csv"
    transfer(newer, template)
    newer_bytes = (tmp_path / "2025-01-05" / "m.csv").read_bytes()
    newer_manifest = (tmp_path / "2025-01-05" / "m.csv.manifest.json").read_bytes()

    result = transfer(older, template)

    kept = {p["partition"]: p for p in result["partitions"]}
    assert kept["2025-01-05"]["replaced"] is False
    assert kept["2025-01-04"]["replaced"] is True  # only the older run has it
    assert (tmp_path / "2025-01-05" / "m.csv").read_bytes() == newer_bytes
    assert (tmp_path / "2025-01-05" / "m.csv.manifest.json").read_bytes() == newer_manifest
    assert "Partition 2025-01-05: kept" in caplog.text + capsys.readouterr().out


def test_an_older_snapshot_finishing_last_leaves_the_newer_partition_on_s3(
    emu: Any, s3: S3Server, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.new_bucket()
    older = export(day(5), day(6), restate_days=1)
    newer = export(day(6), day(7), restate_days=1)
    template = f"s3://{bucket}/sms/date={{partition}}/messages.csv"
    first = transfer(newer, template, storage_conn_id=AWS_CONN_ID)
    key = "sms/date=2025-01-05/messages.csv"
    newer_bytes = s3.read(bucket, key)
    assert hashlib.sha256(newer_bytes).hexdigest() == first["partitions"][0]["sha256"]

    result = transfer(older, template, storage_conn_id=AWS_CONN_ID)

    kept = {p["partition"]: p for p in result["partitions"]}
    assert kept["2025-01-05"]["replaced"] is False and kept["2025-01-04"]["replaced"] is True
    assert s3.read(bucket, key) == newer_bytes
    manifest = json.loads(s3.read(bucket, key + ".manifest.json"))
    assert manifest["snapshot"] == first["partitions"][0]["snapshot"]
    assert sorted(s3.keys(bucket)) == sorted(
        f"sms/date=2025-01-0{d}/messages.csv{suffix}" for d in (4, 5, 6) for suffix in ("", ".manifest.json")
    )
    assert not s3.pending_uploads(bucket)
    assert "Partition 2025-01-05: kept" in caplog.text + capsys.readouterr().out


def test_message_list_partitions_in_a_non_utc_zone_across_a_dst_change(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Europe/Rome leaves DST on 2025-10-26 (a 25-hour day); days there start at 22:00 or 23:00 UTC.
    emulator = msghistory_emulator_factory(messages=1200, start="2025-10-23T00:00:00Z", days=6)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    rome = ZoneInfo("Europe/Rome")
    start, end = datetime(2025, 10, 27, tzinfo=rome), datetime(2025, 10, 28, tzinfo=rome)
    op = MsgHistoryMessagesToStorageOperator(
        task_id="list", destination=f"{tmp_path.as_uri()}/{{partition}}.jsonl",
        start_datetime=start.isoformat(), end_datetime=end.isoformat(), restate_days=2,
        partition_by="day", partition_timezone="Europe/Rome",
    )  # fmt: skip
    result = op.execute({})

    names = [p["partition"] for p in result["partitions"]]
    assert names == ["2025-10-25", "2025-10-26", "2025-10-27"]
    total = 0
    for name in names:
        lines = (tmp_path / f"{name}.jsonl").read_bytes().splitlines()
        sent_at = [datetime.fromisoformat(json.loads(x)["sendDate"].replace("Z", "+00:00")) for x in lines]
        local_days = {when.astimezone(rome).date() for when in sent_at}
        assert local_days == {datetime.fromisoformat(name).date()}
        total += len(lines)
    sent = [
        m for m in emulator.dataset.messages
        if datetime(2025, 10, 25, tzinfo=rome) <= datetime.fromtimestamp(m.send_ms / 1000, UTC) < end
    ]  # fmt: skip
    assert total == len(sent) == result["records"]
    # Restated by local calendar days: the window starts at midnight in Rome (CEST), not 24 h * 2 back.
    assert result["window"]["start"] == "2025-10-24T22:00:00+00:00"


def test_the_partition_of_an_instant_follows_the_zone_and_dst() -> None:
    scheme = partitioning("day", "Europe/Rome")
    assert scheme is not None
    assert scheme.label(datetime(2025, 3, 1, 22, 59, tzinfo=UTC)) == "2025-03-01"
    assert scheme.label(datetime(2025, 3, 1, 23, 0, tzinfo=UTC)) == "2025-03-02"  # 00:00 in Rome (CET)
    assert scheme.label(datetime(2025, 7, 1, 22, 0, tzinfo=UTC)) == "2025-07-02"  # 00:00 in Rome (CEST)
    window = Window(datetime(2025, 10, 25, 22, tzinfo=UTC), datetime(2025, 10, 26, 23, tzinfo=UTC))
    assert scheme.labels(window) == ["2025-10-26"]  # the 25-hour day, whole
    hours = partitioning("hour", "UTC")
    assert hours is not None and hours.labels(Window(day(1), day(1) + timedelta(hours=2))) == [
        "2025-01-01T00",
        "2025-01-01T01",
    ]


def test_quoted_fields_pass_byte_for_byte_and_an_unreadable_time_fails_by_name() -> None:
    scheme = partitioning("day", "UTC")
    assert scheme is not None
    header = b"id,body,sendDate,deliveryStatus\n"
    quoted = b'1,"a, ""quoted""\nbody",2025-01-01T10:00:00.000Z,DELIVERED\n'
    plain = b"2,x,2025-01-02T00:00:00.000Z,SENT\n"
    router = CsvPartitioner(scheme, Window(day(1), day(3)), "sendDate", "deliveryStatus", temporary, "test")
    data = header + quoted + plain
    router.add(iter([data[i : i + 7] for i in range(0, len(data), 7)]), "part 1")  # chunks cut anywhere
    router.add(iter([header]), "part 2")  # a later part's header is checked, not written again
    staged = router.finish()
    staged["2025-01-01"].file.seek(0)
    assert staged["2025-01-01"].file.read() == header + quoted
    assert dict(staged["2025-01-02"].statuses) == {"SENT": 1}
    router.close()

    bad = CsvPartitioner(scheme, Window(day(1), day(3)), "sendDate", None, temporary, "export x")
    with pytest.raises(Exception, match="export x: a row's 'sendDate' value b'yesterday'"):
        bad.add(iter([header + b"3,y,yesterday,SENT\n"]), "part 1")
    bad.close()
    other = CsvPartitioner(scheme, Window(day(1), day(3)), "sendDate", None, temporary, "export x")
    other.add(iter([header]), "part 1")
    with pytest.raises(Exception, match="part 2 has a different header"):
        other.add(iter([b"id,text,sendDate,deliveryStatus\n"]), "part 2")
    other.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"partition_by": "week"}, "partition_by"),
        ({"partition_by": "day", "partition_timezone": "Mars/Olympus"}, "partition_timezone"),
        ({"partition_by": "day", "destination": "file:///tmp/x.csv"}, "destination"),
        ({"destination": "file:///tmp/{partition}.csv"}, "destination"),
        ({"partition_by": "day", "if_exists": "skip"}, "if_exists"),
    ],
)
def test_bad_partition_arguments_fail_at_parse(kwargs: dict[str, Any], field: str) -> None:
    kwargs.setdefault("destination", "file:///tmp/{partition}.csv")
    with pytest.raises(ValueError, match=f"^{field}: "):
        MsgHistoryExportToStorageOperator(task_id="t", export_id="e1", **kwargs)
    with pytest.raises(ValueError, match=f"^{field}: "):
        MsgHistoryMessagesToStorageOperator(task_id="t", **kwargs)


_KILLED_TRANSFER = """
import os, signal, sys
from airflow_provider_msghistory.transfers import partition_store
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

real_replace, moves = os.replace, []

def replace(src, dst):
    moves.append(dst)
    if len(moves) == 4:  # the second partition's data is in place, its manifest not yet: the worst moment
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)

partition_store.os.replace = replace  # the crash is the only thing faked: the rest is the real transfer
MsgHistoryExportToStorageOperator(
    task_id="store", export_id=sys.argv[1], destination=sys.argv[2], partition_by="day", deferrable=False
).execute({})
"""


def test_sigkill_mid_restatement_leaves_every_partition_whole_and_the_retry_converges(
    emu: Any, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    template = f"{tmp_path.as_uri()}/{{partition}}/m.csv"
    emu.set_clock("2025-01-06T00:05:00Z")
    older = export(day(5), day(6), restate_days=2)
    transfer(older, template)
    names = ["2025-01-03", "2025-01-04", "2025-01-05"]
    old = {n: (tmp_path / n / "m.csv").read_bytes() for n in names}
    emu.set_clock("2025-01-09T00:05:00Z")  # every status settled since: each partition changes
    newer = export(day(5), day(6), restate_days=2)

    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_TRANSFER, newer, template],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    after_kill = {n: (tmp_path / n / "m.csv").read_bytes() for n in names}
    assert after_kill["2025-01-05"] == old["2025-01-05"]  # not reached: as it was

    result = transfer(newer, template)  # the retry (same export id, same snapshot)

    new = {n: (tmp_path / n / "m.csv").read_bytes() for n in names}
    for name in names:
        assert after_kill[name] in (old[name], new[name])  # whole: the old file or the new one, never a mix
        manifest = json.loads((tmp_path / name / "m.csv.manifest.json").read_text())
        assert manifest["sha256"] == hashlib.sha256(new[name]).hexdigest()
        assert manifest["export_ids"] == [newer]
    assert all(old[n] != new[n] for n in names)
    assert after_kill["2025-01-03"] == new["2025-01-03"] and after_kill["2025-01-04"] == new["2025-01-04"]
    by_name = {p["partition"]: p for p in result["partitions"]}
    assert by_name["2025-01-03"]["replaced"] is False  # the killed try had committed it, with this snapshot
    assert by_name["2025-01-04"]["replaced"] is True  # its data was in place, its manifest was not
    leftovers = [p.name for p in tmp_path.rglob(".*") if ".part-" in p.name]
    assert leftovers == []  # the dead writer's part files are gone


def test_a_writer_landing_between_the_check_and_the_put_on_s3_wins_when_newer(
    emu: Any, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msghistory.transfers import partition_store

    bucket = s3.new_bucket()
    key = "m/2025-01-05.csv"
    template = f"s3://{bucket}/m/{{partition}}.csv"
    export_id = export(day(5), day(6), restate_days=0)  # Qlara's bare id: partitions of the rows only
    real_head, raced = partition_store._head, []

    def head_then_race(fs: Any, bucket_name: str, object_key: str) -> Any:
        seen = real_head(fs, bucket_name, object_key)
        if object_key == key and not raced:  # another run lands its newer snapshot right now
            raced.append(True)
            newer = {"msghistory-snapshot": "2999-01-01T00:00:00Z"}
            s3.client.put_object(Bucket=bucket, Key=key, Body=b"newer\n", Metadata=newer)
        return seen

    monkeypatch.setattr(partition_store, "_head", head_then_race)
    result = transfer(export_id, template, storage_conn_id=AWS_CONN_ID)

    assert raced and s3.read(bucket, key) == b"newer\n"  # the conditional PUT failed (412), the check re-ran
    (entry,) = result["partitions"]
    assert entry["replaced"] is False and entry["held_snapshot"] == "2999-01-01T00:00:00.000000Z"
    assert not s3.pending_uploads(bucket)


def test_an_export_ref_carries_window_and_snapshot_through_a_round_trip() -> None:
    ref = ExportRef("job-1", Window(day(1), day(4)), datetime(2025, 1, 4, 0, 5, tzinfo=UTC))
    assert ExportRef.parse(str(ref)) == ref
    assert ExportRef.parse("job-1;window=2025-01-01T00:00:00Z/2025-01-02T00:00:00Z").asked is None


def test_an_empty_8x8_job_writes_every_partition_header_only_or_fails_when_asked(
    msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emulator = msghistory_emulator_factory(vendor="8x8", job_outcome="empty", export_delay=0.05)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    export_id = export(day(5), day(6), restate_days=1)

    result = transfer(export_id, f"{tmp_path.as_uri()}/{{partition}}.csv")

    assert result["empty"] and [p["rows"] for p in result["partitions"]] == [0, 0]
    for name in ("2025-01-04", "2025-01-05"):
        assert (tmp_path / f"{name}.csv").read_bytes().startswith(b"umid,subaccountid,")
        assert (tmp_path / f"{name}.csv").read_bytes().count(b"\n") == 1
    with pytest.raises(Exception, match="finished with no rows and on_empty='fail'"):
        transfer(export_id, f"{tmp_path.as_uri()}/{{partition}}.csv", on_empty="fail")


def test_a_restating_qlara_export_stored_unpartitioned_is_the_whole_window(emu: Any, tmp_path: Path) -> None:
    export_id = export(day(5), day(6), restate_days=2)
    dest = tmp_path / "all.csv"
    op = MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=dest.as_uri(), deferrable=False
    )
    result = op.execute({})
    assert dest.read_bytes() == emu.export_csv(ExportRef.parse(export_id).job_id)  # cut to its window: all
    assert result["dropped_rows"] == 0 and result["rows"] > 300
