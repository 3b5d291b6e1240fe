"""An 8x8 API that lies: job statuses that change under the transfer, file entries the client cannot read,
parts that are cut, bombs or garbage. Real transfer over HTTP against a scripted server (``tests/hostile``);
the rule checked is "never success over missing rows": every case stores everything or fails by name.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from hostile.server import HostileServer, reply

from airflow_provider_msghistory.client.errors import ApiValidationError, MsgHistoryError
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.transfers import merge
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.transfers.merge import MergeError, part_streams

KEY = "hostile-8x8-key"
SUB = "acme-sms_01"
JOBS = f"/api/v1/subaccounts/{SUB}/messages/exports"
JOB = "job-1"
HEADER = b"umid,createdat,body\r\n"
DAY = Window(datetime(2025, 1, 2, tzinfo=timezone.utc), datetime(2025, 1, 3, tzinfo=timezone.utc))
EXPORT_ID = str(ExportRef(JOB, DAY))


def rows(first: int, count: int, stamp: str = "2025-01-02T{h:02d}:00:00.000Z") -> bytes:
    return b"".join(
        b'%d,%s,"row %d, body"\r\n' % (i, stamp.format(h=i % 24).encode(), i)
        for i in range(first, first + count)
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    with HostileServer() as hostile:
        extra = {"vendor": "8x8", "sub_account_id": SUB, "max_attempts": 1, "read_timeout": 5}
        conn = {"conn_type": "msghistory", "host": hostile.base, "password": KEY, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", json.dumps(conn))
        yield hostile


def status(state: str, files: list[Any] | None = None, expires: str = "2099-01-01T00:00:00Z") -> Any:
    body: dict[str, Any] = {"status": state, "expires": expires}
    if files is not None:
        body["data"] = files
    return reply(200, body)


def serve_parts(server: HostileServer, *parts: bytes) -> list[str]:
    urls = []
    for number, data in enumerate(parts, 1):
        path = f"/download/{JOB}/part-{number}"
        server.route(path, reply(200, data, {"Content-Type": "text/csv"}))
        urls.append(server.url(path))
    return urls


def store(target: Path, export_id: str = EXPORT_ID, **kwargs: Any) -> MsgHistoryExportToStorageOperator:
    return MsgHistoryExportToStorageOperator(
        task_id="store",
        export_id=export_id,
        destination=f"file://{target}",
        poll_interval=0.05,
        timeout=5,
        **{"max_attempts": 1, **kwargs},
    )


SUCCESS_EVENT = {"status": "success", "export_id": EXPORT_ID, "export_status": "COMPLETED"}


# --- 1. a resumed transfer re-reads the job through the wait's decision ------------------------------
@pytest.mark.parametrize(
    ("now", "reason"),
    [
        pytest.param(lambda urls: status("cancelled"), "failed on the server", id="cancelled"),
        pytest.param(lambda urls: status("queued"), "still being generated", id="queued"),
        pytest.param(lambda urls: status("succeeded", []), "not yet available", id="succeeded-no-files"),
        pytest.param(lambda urls: status("succeeded"), "not yet available", id="succeeded-no-data"),
        pytest.param(
            lambda urls: status("succeeded", urls, expires="2020-01-01T00:00:00Z"), "new export", id="expired"
        ),
    ],
)
def test_a_resumed_transfer_never_stores_a_finished_job_as_empty(
    server: HostileServer, tmp_path: Path, now: Any, reason: str
) -> None:
    urls = serve_parts(server, HEADER + rows(0, 3))
    server.route(f"{JOBS}/{JOB}", now(urls))
    target = tmp_path / "day.csv"
    with pytest.raises(AirflowException, match=reason):
        store(target).execute_complete({}, SUCCESS_EVENT)
    assert list(tmp_path.iterdir()) == []


def test_a_resumed_transfer_of_a_job_still_ready_stores_every_row(
    server: HostileServer, tmp_path: Path
) -> None:
    urls = serve_parts(server, HEADER + rows(0, 3), HEADER + rows(3, 3))
    server.route(f"{JOBS}/{JOB}", status("succeeded", urls))
    target = tmp_path / "day.csv"
    result = store(target).execute_complete({}, SUCCESS_EVENT)
    assert target.read_bytes() == HEADER + rows(0, 6)
    assert (result["rows"], result["parts"], result["empty"]) == (6, 2, False)


def test_a_job_cancelled_mid_transfer_fails_instead_of_using_its_stale_links(
    server: HostileServer, tmp_path: Path
) -> None:
    urls = serve_parts(server, HEADER + rows(0, 3))
    server.route("/download/job-1/part-1", reply(410, {"code": 1300, "message": "gone"}))
    server.route(f"{JOBS}/{JOB}", status("succeeded", urls), status("cancelled", urls))
    with pytest.raises(MsgHistoryError, match=r"changed mid-transfer.*failed on the server"):
        store(tmp_path / "day.csv", max_attempts=2).execute_complete({}, SUCCESS_EVENT)
    assert list(tmp_path.iterdir()) == []


# --- 2, 20. the row filter reads every spelling of a time, and says when it dropped every row ---------
def ready(server: HostileServer, *parts: bytes) -> None:
    server.route(f"{JOBS}/{JOB}", status("succeeded", serve_parts(server, *parts)))


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param("2025-01-02 {h:02d}:00:00.000Z", id="space-for-T"),
        pytest.param("2025-01-02t{h:02d}:00:00.000Z", id="lower-case-t"),
        pytest.param("2025-01-02T{h:02d}:00:00.74Z", id="two-digit-fraction"),
        pytest.param("2025-01-02T{h:02d}:00:00.000z", id="lower-case-z"),
        pytest.param("2025-01-02T{h:02d}:00:00.000+00:00", id="offset"),
    ],
)
@pytest.mark.parametrize("window", ["day", "hours"])
def test_rows_in_any_time_spelling_are_cut_by_their_time(
    server: HostileServer, tmp_path: Path, stamp: str, window: str
) -> None:
    # 24 rows, one per hour of the day; the day keeps all, [06:00, 12:00) keeps six.
    ready(server, HEADER + rows(0, 24, stamp))
    cut = DAY if window == "day" else Window(DAY.start.replace(hour=6), DAY.start.replace(hour=12))
    target = tmp_path / "day.csv"
    result = store(target, str(ExportRef(JOB, cut))).execute({})
    expected = rows(0, 24, stamp) if window == "day" else rows(6, 6, stamp)
    assert target.read_bytes() == HEADER + expected
    assert result["rows"] == len(expected.splitlines())
    assert result["dropped_rows"] == 24 - result["rows"]


def test_a_run_that_drops_every_row_says_so(
    server: HostileServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready(server, HEADER + rows(0, 5, "2025-01-05T{h:02d}:00:00.000Z"))
    with caplog.at_level("WARNING"):
        result = store(tmp_path / "day.csv").execute({})
    assert (result["rows"], result["dropped_rows"]) == (0, 5)
    text = caplog.text + capsys.readouterr().out
    assert "all 5 rows read lie outside the window" in text


# --- 3. every listed file is downloaded or the task fails naming it ------------------------------------
@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("/download/job-1/part-3", id="relative"),
        pytest.param({"url": "http://127.0.0.1:1/part-3"}, id="object"),
        pytest.param("ftp://127.0.0.1/part-3", id="other-scheme"),
        pytest.param(None, id="null"),
    ],
)
def test_a_file_entry_the_client_cannot_read_fails_naming_it(
    server: HostileServer, tmp_path: Path, entry: Any
) -> None:
    urls = serve_parts(server, HEADER + rows(0, 3), HEADER + rows(3, 3))
    server.route(f"{JOBS}/{JOB}", status("succeeded", [*urls, entry]))
    with pytest.raises(MsgHistoryError, match="file 3 of 3 is not an absolute http"):
        store(tmp_path / "day.csv").execute({})
    assert list(tmp_path.iterdir()) == []


def test_odd_but_readable_file_entries_are_all_downloaded_and_a_repeated_one_once(
    server: HostileServer, tmp_path: Path
) -> None:
    first, second, third = serve_parts(server, HEADER + rows(0, 3), HEADER + rows(3, 3), HEADER + rows(6, 3))
    listed = [first, " " + second, third.replace("http://", "HTTP://"), first]
    server.route(f"{JOBS}/{JOB}", status("succeeded", listed))
    target = tmp_path / "day.csv"
    result = store(target).execute({})
    assert target.read_bytes() == HEADER + rows(0, 9)
    assert (result["parts"], result["rows"]) == (3, 9)
    assert sum(seen.path == "/download/job-1/part-1" for seen in server.seen) == 1


# --- 4, 10, 16. parts that are cut, bombs or garbage fail by name, with the library's own error --------
CSV3000 = HEADER + rows(0, 3000)


def zipped(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("logs.csv", data)
    return buffer.getvalue()


def bad_crc_zip() -> bytes:
    raw = bytearray(zipped(CSV3000, zipfile.ZIP_STORED))
    at = raw.index(b"row 1500")
    raw[at : at + 8] = b"row 9999"  # same size, other bytes: only the CRC can tell
    return bytes(raw)


def flagged_zip(flag_bits: int = 0, method: int | None = None) -> bytes:
    raw = bytearray(zipped(CSV3000, zipfile.ZIP_STORED))
    central = raw.index(b"PK\x01\x02")
    for header, offset in ((0, 6), (central, 8)):  # local and central headers: flags, then method
        raw[header + offset] |= flag_bits
        if method is not None:
            raw[header + offset + 2 : header + offset + 4] = method.to_bytes(2, "little")
    return bytes(raw)


@pytest.mark.parametrize(
    ("part", "message"),
    [
        pytest.param(gzip.compress(CSV3000)[:-8], "before its trailer", id="gzip-without-trailer"),
        pytest.param(gzip.compress(CSV3000)[:8_000], "before its trailer", id="gzip-cut-mid-stream"),
        pytest.param(
            gzip.compress(CSV3000)[:-8] + b"\0\0\0\0" + len(CSV3000).to_bytes(4, "little"),
            "broken gzip data",
            id="gzip-bad-crc",
        ),
        pytest.param(gzip.compress(CSV3000) + b"garbage!", "broken gzip data", id="gzip-trailing-garbage"),
        pytest.param(b"\x1f\x8b" + b"not gzip at all", "broken gzip data", id="gzip-garbage"),
        pytest.param(bad_crc_zip(), "unreadable zip member.*CRC", id="zip-bad-crc"),
        pytest.param(zipped(CSV3000)[:-30], "not a readable zip archive", id="zip-cut"),
        pytest.param(flagged_zip(flag_bits=0x1), "unreadable zip member", id="zip-encrypted"),
        pytest.param(flagged_zip(method=99), "unreadable zip member", id="zip-unknown-method"),
        pytest.param(b"PK\x03\x04" + b"\xff" * 200, "not a readable zip archive", id="zip-garbage"),
    ],
)
def test_a_cut_or_hostile_part_fails_by_name_and_stores_nothing(
    server: HostileServer, tmp_path: Path, part: bytes, message: str
) -> None:
    ready(server, HEADER + rows(0, 3), part)
    with pytest.raises(MergeError, match=f"part 2 of 2.*{message}"):
        store(tmp_path / "day.csv").execute({})
    assert list(tmp_path.iterdir()) == []


def test_a_compression_bomb_fails_at_max_part_bytes(server: HostileServer, tmp_path: Path) -> None:
    ready(server, gzip.compress(HEADER + b"0" * (64 << 20)))  # 64 MiB from a ~64 KiB part
    with pytest.raises(MergeError, match=r"more than 1,048,576 bytes \(max_part_bytes\)"):
        store(tmp_path / "day.csv", max_part_bytes=1 << 20).execute({})
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_part_is_inflated_a_bounded_step_at_a_time() -> None:
    """A 1000x part comes out in steps of at most CHUNK bytes: memory does not follow the ratio."""
    bomb = gzip.compress(b"0" * (256 << 20))
    sizes = [len(chunk) for _, stream in part_streams(io.BytesIO(bomb), "bomb") for chunk in stream]
    assert sum(sizes) == 256 << 20 and max(sizes) <= merge.CHUNK


def test_a_deeply_nested_error_body_is_an_api_error_not_a_recursion_error(server: HostileServer) -> None:
    client = MsgHistoryHook().get_client()
    for depth in (990, 100_000):
        server.route(f"{JOBS}/{JOB}", reply(400, b'{"message": ' * depth + b"[]" + b"}" * depth))
        with pytest.raises(ApiValidationError, match="HTTP 400"):
            client.get_export(EXPORT_ID)
    # A body the JSON parser still read (how deep it gets depends on the stack it is called from): the
    # message is looked for in a bounded loop, not by recursion.
    body: Any = {"message": []}
    for _ in range(5000):
        body = {"message": body}
    assert client.dialect.error_message(body, "the text") == "the text"
