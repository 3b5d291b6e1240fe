"""Part files: a killed attempt's part file is cleaned by the next attempt; ``if_exists='fail'`` never
replaces a file that landed during the download."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from triggers.helpers import conn_json

from airflow_provider_msghistory.transfers.destination import parse_destination
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.transfers.streaming import PartFile

# A writer that opens a part file, writes into it and hangs: killed mid-download.
WRITER = """
import sys, time
from airflow_provider_msghistory.transfers.destination import parse_destination
from airflow_provider_msghistory.transfers.streaming import PartFile
dest = parse_destination(sys.argv[1])
part = PartFile(dest, dest.filesystem(), None)
part.open()
part.write(b"id,body\\n" * 5000)
part._raw.flush()
print(part.path, flush=True)
time.sleep(600)
"""


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = msghistory_emulator_factory(messages=2000, export_delay=0.1)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    return emulator


def store(export_id: str, dest: Path, **kwargs: Any) -> MsgHistoryExportToStorageOperator:
    return MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=dest.as_uri(), poll_interval=0.05, timeout=20,
        deferrable=False, **kwargs,
    )  # fmt: skip


def test_the_next_attempt_removes_the_part_file_of_a_killed_one_and_no_live_writers(
    emu: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest = tmp_path / "day" / "messages.csv"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, dest.as_uri()], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    killed_part = Path(writer.stdout.readline().strip())
    assert killed_part.exists() and killed_part.stat().st_size > 0
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)

    # Parts that must survive: one of a live writer on this host, one of another host written just now.
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host_token = killed_part.name.rsplit("-p", 1)[0].split(".part-", 1)[1]
        live_part = dest.with_name(f".messages.csv.part-{host_token}-p{live.pid}-0123abcd")
        live_part.write_bytes(b"in flight")
        elsewhere = dest.with_name(".messages.csv.part-otherhost-p1-0123abcd")
        elsewhere.write_bytes(b"in flight")

        result = store(emu.create_export(), dest).execute({})

        assert dest.read_bytes() and result["bytes"] == dest.stat().st_size
        assert not killed_part.exists()
        assert live_part.exists() and elsewhere.exists()
        assert any(
            "did not finish" in r.getMessage() and killed_part.name in r.getMessage() for r in caplog.records
        )
    finally:
        live.kill()
        live.wait()


def test_a_part_file_untouched_for_a_day_is_removed_whoever_wrote_it(emu: Any, tmp_path: Path) -> None:
    dest = tmp_path / "messages.csv"
    old = tmp_path / ".messages.csv.part-otherhost-p1-0123abcd"
    old.write_bytes(b"abandoned")
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))

    store(emu.create_export(), dest).execute({})

    assert not old.exists() and dest.exists()


def test_if_exists_fail_never_replaces_a_file_that_landed_after_the_check(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two transfers racing to one destination: the check of the second saw nothing (the first had not
    landed yet), and the first landed just before the second moves its file."""
    dest_path = tmp_path / "messages.csv"
    dest = parse_destination(dest_path.as_uri())
    fs = dest.filesystem()
    part = PartFile(dest, fs, None)
    part.open()
    part.write(b"id\n2\n")
    part.finish()
    dest_path.write_bytes(b"id\n1\n")  # the other transfer's file lands
    monkeypatch.setattr(type(fs), "exists", lambda self, path, **kw: False)  # checked before it landed

    with pytest.raises(FileExistsError, match="if_exists='fail'"):
        part.commit(replace=False)
    monkeypatch.undo()
    part.abort()  # as the operator does on any failure

    assert dest_path.read_bytes() == b"id\n1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messages.csv"]
