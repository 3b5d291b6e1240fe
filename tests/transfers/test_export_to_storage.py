"""MsgHistoryExportToStorageOperator against the emulator (real HTTP on loopback) and local disk / moto S3."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from triggers.helpers import conn_json, run_trigger
from vendor_groups import DOWNLOADED

from airflow_provider_msghistory.client.dialects import DIALECTS
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.transfers.download import DownloadError
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

from .conftest import AWS_CONN_ID, S3Server


@pytest.fixture
def emu(msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    emulator = msghistory_emulator_factory(messages=3000, export_delay=0.2)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    return emulator


def store(export_id: str, destination: str, **kwargs: Any) -> MsgHistoryExportToStorageOperator:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 20)
    kwargs.setdefault("deferrable", False)
    return MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=destination, **kwargs
    )


def run(op: MsgHistoryExportToStorageOperator) -> dict[str, Any]:
    """execute(); when it defers, run the trigger and resume the way the triggerer would."""
    try:
        return op.execute({})
    except TaskDeferred as deferred:
        event, _ = run_trigger(deferred.trigger)
        return getattr(op, deferred.method_name)({}, event)


def storage_requests(emulator: Any) -> list[Any]:
    return [r for r in emulator.request_log if r.server == "storage"]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def expected_csv(emu: Any, export_id: str) -> bytes:
    """What a correct transfer stores: the vendor's own file when its bounds are exact, else the rows of
    the window the export id carries (the emulator's oracle, written from the vendor's docs)."""
    ref = ExportRef.parse(export_id)
    if ref.window is None:
        return bytes(emu.export_csv(ref.job_id))
    return bytes(emu.expected_csv(ref.window.start, ref.window.end))


@pytest.mark.parametrize("vendor", DOWNLOADED)
def test_every_vendor_stores_the_exact_csv_with_its_digest_and_credentials_only_where_due(
    vendor: str,
    msghistory_emulator_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emu = msghistory_emulator_factory(vendor, messages=3000)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emu))
    export_id = MsgHistoryExportOperator(
        task_id="export", export_type="message_history", start_datetime="2025-01-02T00:00:00Z",
        end_datetime="2025-01-03T00:00:00Z", poll_interval=0.05, timeout=20, deferrable=False,
    ).execute({})["export_id"]  # fmt: skip
    dest = tmp_path / "day" / "messages.csv"

    result = run(store(export_id, dest.as_uri()))

    expected = expected_csv(emu, export_id)
    assert dest.read_bytes() == expected
    assert result["sha256"] == hashlib.sha256(expected).hexdigest()
    assert result["bytes"] == result["stored_bytes"] == len(expected)
    records = list(csv.reader(io.StringIO(expected.decode("utf-8"), newline="")))
    assert result["rows"] == len(records) - 1 > 50  # a quoted newline is not a record end
    assert (result["path"], result["export_id"], result["compression"]) == (dest.as_uri(), export_id, None)
    assert leftovers(dest.parent) == ["messages.csv"]  # the part file was moved, not copied
    api_port = int(emu.base_url.split("/")[2].rsplit(":", 1)[1])
    assert all(r.had_auth for r in emu.request_log if r.port == api_port)
    elsewhere = [r for r in emu.request_log if r.port != api_port]
    if DIALECTS[vendor].caps.link_auth:  # links on the API's own origin, fetched with its credentials
        assert not elsewhere
    else:  # pre-signed links on a storage host: no credential goes there
        assert elsewhere and not any(r.had_auth for r in elsewhere)
        assert all("x-api-key" not in {h.lower() for h in r.headers} for r in elsewhere)


def test_gzip_output_decompresses_to_the_exact_csv(emu: Any, tmp_path: Path) -> None:
    export_id = emu.create_export()
    dest = tmp_path / "messages.csv.gz"

    result = run(store(export_id, str(dest), compression="gzip"))

    csv_bytes = emu.export_csv(export_id)
    stored = dest.read_bytes()
    assert gzip.decompress(stored) == csv_bytes
    assert result["sha256"] == emu.export_sha256(export_id)  # of the CSV, before compression
    assert (result["bytes"], result["stored_bytes"]) == (len(csv_bytes), len(stored))
    assert result["compression"] == "gzip"


def test_truncated_body_resumes_with_range(emu: Any, tmp_path: Path) -> None:
    export_id = emu.create_export()
    emu.faults.script("download", ["truncate:10000"])
    dest = tmp_path / "messages.csv"

    result = run(store(export_id, str(dest)))

    assert dest.read_bytes() == emu.export_csv(export_id)
    assert result["sha256"] == emu.export_sha256(export_id)
    statuses = [(r.status, r.headers.get("Range")) for r in storage_requests(emu)]
    assert statuses == [(200, None), (206, "bytes=10000-")]


def test_link_expired_before_download_is_regenerated_and_waited_for(emu: Any, tmp_path: Path) -> None:
    export_id = emu.create_export()
    emu.expire_link(export_id)
    dest = tmp_path / "messages.csv"

    result = run(store(export_id, str(dest)))

    assert dest.read_bytes() == emu.export_csv(export_id)
    assert result["sha256"] == emu.export_sha256(export_id)
    assert emu.export(export_id).regenerations == 1
    assert [r.status for r in storage_requests(emu)] == [200]


def test_expired_export_defers_to_the_trigger_then_downloads(emu: Any, tmp_path: Path) -> None:
    export_id = emu.create_export()
    emu.expire_link(export_id)
    op = store(export_id, str(tmp_path / "messages.csv"), deferrable=True)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    assert deferred.value.trigger.export_id == export_id
    assert storage_requests(emu) == []  # nothing downloaded before the wait
    event, _ = run_trigger(deferred.value.trigger)
    result = op.execute_complete({}, event)

    assert (tmp_path / "messages.csv").read_bytes() == emu.export_csv(export_id)
    assert result["sha256"] == emu.export_sha256(export_id)
    assert emu.export(export_id).regenerations == 1


class ExpireAfterFirstChunk:
    """Expires the export's link once the first bytes have arrived (the clock passing expiry mid-download)."""

    def __init__(self, emulator: Any, export_id: str) -> None:
        self.emulator, self.export_id, self.fired = emulator, export_id, False

    def __call__(self, chunk: bytes) -> None:
        if not self.fired:
            self.fired = True
            self.emulator.expire_link(self.export_id)


def test_link_expiring_during_download_restarts_from_a_regenerated_export(
    emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msghistory.transfers import streaming

    export_id = emu.create_export()
    emu.faults.script("download", ["truncate:20000"])  # the first stream breaks...
    expire = ExpireAfterFirstChunk(emu, export_id)  # ...after the link expired under it
    original_write = streaming.PartFile.write

    def write(self: streaming.PartFile, chunk: bytes) -> None:
        expire(chunk)
        original_write(self, chunk)

    monkeypatch.setattr(streaming.PartFile, "write", write)
    dest = tmp_path / "messages.csv"

    result = run(store(export_id, str(dest)))

    assert dest.read_bytes() == emu.export_csv(export_id)
    assert result["sha256"] == emu.export_sha256(export_id)
    # truncated 200, then the resume is refused (403), then the regenerated file from byte 0
    assert [r.status for r in storage_requests(emu)] == [200, 403, 200]
    assert emu.export(export_id).regenerations == 1
    assert leftovers(tmp_path) == ["messages.csv"]


def test_persistent_failure_leaves_nothing_at_destination(emu: Any, tmp_path: Path) -> None:
    export_id = emu.create_export()
    emu.faults.script("download", ["truncate:5000"] * 3)
    dest = tmp_path / "out" / "messages.csv"

    with pytest.raises(DownloadError, match="gave up after 3 failed attempt"):
        run(store(export_id, str(dest), max_attempts=3))

    assert leftovers(dest.parent) == []
    assert len(storage_requests(emu)) == 3


@pytest.mark.parametrize("if_exists", ["fail", "replace", "skip"])
def test_if_exists(emu: Any, tmp_path: Path, if_exists: str) -> None:
    export_id = emu.create_export()
    dest = tmp_path / "messages.csv"
    dest.write_bytes(b"old,file\n")
    op = store(export_id, str(dest), if_exists=if_exists)

    if if_exists == "fail":
        with pytest.raises(ValueError, match=r"destination: .* already exists and if_exists='fail'"):
            run(op)
    else:
        result = run(op)
        assert result["skipped"] is (if_exists == "skip")

    expected = emu.export_csv(export_id) if if_exists == "replace" else b"old,file\n"
    assert dest.read_bytes() == expected
    assert len(storage_requests(emu)) == (1 if if_exists == "replace" else 0)
    assert leftovers(tmp_path) == ["messages.csv"]


def test_templated_values_are_checked_before_any_request(emu: Any, tmp_path: Path) -> None:
    op = store("{{ ti.xcom_pull(task_ids='export')['export_id'] }}", "{{ var.value.dest }}")
    op.export_id, op.destination = "exp_1", "gopher://host/x.csv"  # what rendering produced

    with pytest.raises(ValueError, match="destination: unknown scheme 'gopher'"):
        run(op)
    assert emu.request_log == []


# -- S3 (moto on loopback) ------------------------------------------------------------------------------


def test_s3_destination_gets_the_exact_csv_and_no_temp_key(emu: Any, s3: S3Server) -> None:
    export_id = emu.create_export()
    bucket = s3.new_bucket()

    result = run(store(export_id, f"s3://{bucket}/msghistory/day/messages.csv", storage_conn_id=AWS_CONN_ID))

    assert s3.read(bucket, "msghistory/day/messages.csv") == emu.export_csv(export_id)
    assert result["sha256"] == emu.export_sha256(export_id)
    assert result["path"] == f"s3://{bucket}/msghistory/day/messages.csv"
    assert s3.keys(bucket) == ["msghistory/day/messages.csv"]


def test_s3_missing_bucket_fails_before_download(emu: Any, s3: S3Server) -> None:
    export_id = emu.create_export()
    emu.clear_request_log()

    with pytest.raises(ValueError, match="destination: bucket 'no-such-bucket' does not exist"):
        run(store(export_id, "s3://no-such-bucket/a/messages.csv", storage_conn_id=AWS_CONN_ID))
    assert emu.request_log == []


def test_s3_without_credentials_says_so(
    emu: Any, s3: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    export_id = emu.create_export()
    emu.clear_request_log()
    # an aws connection with no keys, on a worker with none either (no env, no profile, no instance role)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_NOKEYS",
        json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": s3.endpoint_url, "region_name": "us-east-1"}}
        ),
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = f"s3://{bucket}/a/messages.csv"

    with pytest.raises(PermissionError) as info:
        run(store(export_id, url, storage_conn_id="aws_nokeys"))
    assert str(info.value) == (
        f"destination: no credentials to reach {url!r} (storage_conn_id='aws_nokeys'; the filesystem fell "
        "back to anonymous access, which cannot write); set storage_conn_id to a connection with "
        "credentials, or give the worker some (environment, profile, role)"
    )
    assert "does not exist" not in str(info.value)
    assert emu.request_log == []


def test_a_permission_error_names_the_destination(emu: Any) -> None:
    export_id = emu.create_export()
    url = "file:///sys/msghistory-test/messages.csv"  # sysfs refuses new directories, even to root

    with pytest.raises(PermissionError) as info:
        run(store(export_id, url))
    message = str(info.value)
    assert message.startswith(f"destination: permission denied on {url!r} with storage_conn_id=None (")
    assert "pass a destination it may write" in message


def test_s3_aborted_multipart_upload_leaves_no_object(
    msghistory_emulator_factory: Callable[..., Any],
    s3: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Bigger than s3fs's 50 MiB block, so parts are uploaded before the stream breaks.
    emulator = msghistory_emulator_factory(export_delay=0.1)
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json(emulator))
    export_id = emulator.create_export(size_bytes=56 << 20)
    emulator.faults.script("download", [f"truncate:{53 << 20}"])
    bucket = s3.new_bucket()

    with caplog.at_level(logging.DEBUG, logger="s3fs"), pytest.raises(DownloadError):
        run(store(export_id, f"s3://{bucket}/big/messages.csv", storage_conn_id=AWS_CONN_ID, max_attempts=1))

    assert any("Initiate upload" in r.getMessage() for r in caplog.records)  # parts were in flight
    assert s3.keys(bucket) == []
    assert s3.pending_uploads(bucket) == []


def test_progress_is_logged_and_no_secret_reaches_logs_or_xcom(
    emu: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_msghistory.transfers import streaming

    clock = iter(float(i) for i in range(10_000))  # every reading of the clock is a second later
    monkeypatch.setattr(streaming.time, "monotonic", lambda: next(clock))
    export_id = emu.create_export(size_bytes=8 << 20)

    with caplog.at_level(logging.INFO):
        result = run(store(export_id, str(tmp_path / "messages.csv")))

    # Airflow 2 logs through the logging module, Airflow 3 through structlog to stdout: read both.
    text = caplog.text + capsys.readouterr().out + repr(result)
    progress = [line for line in text.splitlines() if f"Downloading export {export_id}:" in line]
    assert any("%), " in line and "MB/s" in line for line in progress), text
    assert any(f"of {8 << 20:,} bytes" in line for line in progress)
    assert emu.api_key not in text
    assert "signature=" not in text  # the pre-signed URL is a credential too


def _redact(text: str) -> str:
    """Airflow's task-log secret masker, as it applies to every log line of a task."""
    try:
        from airflow.sdk._shared.secrets_masker import redact  # Airflow 3
    except ImportError:
        from airflow.utils.log.secrets_masker import redact  # type: ignore[no-redef]  # Airflow 2
    return str(redact(text))


def test_download_link_signature_is_masked_in_task_logs(emu: Any, tmp_path: Path) -> None:
    # HTTP libraries log request lines (query string included) at DEBUG; the signature grants the download.
    from urllib.parse import urlencode

    export_id = emu.create_export(size_bytes=64 << 10)
    run(store(export_id, str(tmp_path / "messages.csv")))

    downloads = storage_requests(emu)
    assert downloads
    for request in downloads:
        query = urlencode(request.query)
        masked = _redact(f'"GET {request.path}?{query} HTTP/1.1" 200')
        for value in request.query.values():
            assert value not in masked
