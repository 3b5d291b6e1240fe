"""8x8 log export jobs end to end over HTTP against the 8x8 emulator: operator (sync and deferred),
sensor, trigger and transfer; statuses, parts, windows, empty, cancel, retries."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred
from triggers.helpers import make_trigger, run_trigger

from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.transfers.merge import MergeError

from .conftest import DAY1, DAY2


def export(**kwargs: Any) -> MsgHistoryExportOperator:
    kwargs.setdefault("task_id", "export")
    kwargs.setdefault("export_type", "message_history")
    kwargs.setdefault("start_datetime", DAY1)
    kwargs.setdefault("end_datetime", DAY2)
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 20)
    kwargs.setdefault("deferrable", False)
    return MsgHistoryExportOperator(**kwargs)


def store(export_id: str, destination: Path, **kwargs: Any) -> MsgHistoryExportToStorageOperator:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 20)
    kwargs.setdefault("deferrable", False)
    return MsgHistoryExportToStorageOperator(
        task_id="store", export_id=export_id, destination=f"file://{destination}", **kwargs
    )


def run(op: Any) -> Any:
    """execute(); when it defers, run the trigger in an event loop and resume as the triggerer would."""
    try:
        return op.execute({})
    except TaskDeferred as deferred:
        event, _ = run_trigger(deferred.trigger)
        return getattr(op, deferred.method_name)({}, event)


def job_id(export_id: str) -> str:
    return ExportRef.parse(export_id).job_id


async def polled(emu: Any, jid: str, timeout: float = 10.0) -> None:
    """Return once the emulator answered a status request for job ``jid`` (the wait is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.method == "GET" and e.path.endswith(jid) for e in emu.request_log):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no status request for job {jid} within {timeout}s")


# --- connection and parse-time checks ---------------------------------------------------------------
def test_a_bad_sub_account_id_fails_at_task_start_naming_it(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MSGHISTORY_DEFAULT", emu.airflow_conn_json(sub_account_id="no spaces allowed")
    )
    op = export(vendor="8x8")
    with pytest.raises(ValueError, match="sub_account_id: 'no spaces allowed' is not an 8x8 sub-account id"):
        op.execute({})
    assert not emu.request_log  # nothing was sent


def test_an_export_type_8x8_lacks_fails_at_parse(emu: Any) -> None:
    for kind in ("contacts", "delivery_reports"):
        with pytest.raises(ValueError, match=rf"^export_type: 8x8 has no '{kind}' export"):
            export(export_type=kind, vendor="8x8")
        # the connection in an AIRFLOW_CONN_ variable is read at parse too (no network)
        with pytest.raises(ValueError, match=rf"^export_type: 8x8 has no '{kind}' export"):
            export(export_type=kind)


def test_filters_reach_the_wire_and_bad_ones_fail_at_parse(emu: Any) -> None:
    with pytest.raises(ValueError, match=r"^filters.countries: 'Singapore' is not an ISO 3166"):
        export(filters={"countries": ["Singapore"]})
    with pytest.raises(ValueError, match=r"^filters: unknown 8x8 filter 'phone'"):
        export(filters={"phone": "+6591234567"})
    with pytest.raises(ValueError, match=r"^recipient: not accepted by 8x8"):
        export(recipient="+6591234567")
    result = export(filters={"countries": ["sg", "US"], "limit": 3, "phoneNumber": "+6591234567"}).execute({})
    params = emu.job(job_id(result["export_id"])).params
    assert (
        params["countries"] == ["SG", "US"]
        and params["limit"] == 3
        and params["phoneNumber"] == "+6591234567"
    )
    # a covering window in whole seconds: the transfer cuts it back to [start, end)
    assert (params["from"], params["to"]) == ("2025-01-02T00:00:00Z", "2025-01-03T00:00:01Z")


# --- statuses ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("outcome", ["failed", "error"])
@pytest.mark.parametrize("deferrable", [False, True])
def test_failed_and_error_jobs_fail_the_task(make_emu: Any, outcome: str, deferrable: bool) -> None:
    make_emu(job_outcome=outcome)
    with pytest.raises(AirflowException, match=rf"failed on the server \(status '{outcome}'\)"):
        run(export(deferrable=deferrable))


def test_a_job_cancelled_elsewhere_fails_the_wait(make_emu: Any) -> None:
    emu = make_emu(export_delay=30)
    client = MsgHistoryHook().get_client()
    export_id = client.submit_message_history_export(DAY1, DAY2)
    client.cancel_export(export_id)
    sensor = MsgHistoryExportSensor(task_id="wait", export_id=export_id, poke_interval=0.05, timeout=5)
    with pytest.raises(AirflowException, match="status 'cancelled'"):
        sensor.poke({})
    assert emu.cancelled_jobs == [job_id(export_id)]


def test_unknown_job_fails_clearly(emu: Any) -> None:
    sensor = MsgHistoryExportSensor(task_id="wait", export_id="f" * 64, poke_interval=0.05, timeout=5)
    with pytest.raises(AirflowException, match="export not found"):
        sensor.poke({})


@pytest.mark.parametrize("deferrable", [False, True])
def test_empty_is_done_and_stores_the_documented_header(
    make_emu: Any, tmp_path: Path, deferrable: bool
) -> None:
    make_emu(job_outcome="empty")
    result = run(export(deferrable=deferrable))
    assert result["status"] == "EMPTY"
    target = tmp_path / "empty.csv"
    stored = run(store(result["export_id"], target, deferrable=deferrable))
    header = target.read_bytes()
    assert header.startswith(b"umid,subaccountid,direction,") and header.count(b"\n") == 1
    assert stored["empty"] and stored["rows"] == 0 and stored["parts"] == 0
    assert stored["sha256"] == hashlib.sha256(header).hexdigest()
    skipped = store(result["export_id"], tmp_path / "skip.csv", on_empty="skip").execute({})
    assert skipped["skipped"] and skipped["empty"] and not (tmp_path / "skip.csv").exists()
    with pytest.raises(AirflowException, match="no rows and on_empty='fail'"):
        store(result["export_id"], tmp_path / "fail.csv", on_empty="fail").execute({})


# --- transfer: parts, compression, window, headers ---------------------------------------------------
@pytest.mark.parametrize("deferrable", [False, True])
def test_parts_gzip_and_zip_merge_into_the_exact_csv_of_the_window(
    make_emu: Any, tmp_path: Path, deferrable: bool
) -> None:
    emu = make_emu(parts=4, gzip_parts=[1], zip_parts=[3])
    export_id = run(export(deferrable=deferrable))["export_id"]
    target = tmp_path / "day.csv"
    result = run(store(export_id, target, deferrable=deferrable))
    expected = emu.expected_csv(DAY1, DAY2)
    assert target.read_bytes() == expected  # header once, bodies byte for byte, only [start, end)
    assert result["parts"] == 4
    assert result["rows"] == len(emu.expected_rows(DAY1, DAY2))
    assert (
        result["sha256"]
        == hashlib.sha256(expected).hexdigest()
        == hashlib.sha256(target.read_bytes()).hexdigest()
    )
    # the covering window held rows of the next day's first second: dropped and reported
    served = len(emu.job(job_id(export_id)).rows)
    assert result["dropped_rows"] == served - result["rows"] > 0
    downloads = [e for e in emu.request_log if "/download/" in e.path]
    assert len(downloads) == 4 and all(e.had_auth for e in downloads)  # the API's own origin


def test_differing_headers_fail_and_write_nothing(make_emu: Any, tmp_path: Path) -> None:
    make_emu(parts=3, header_mismatch=2)
    export_id = export().execute({})["export_id"]
    with pytest.raises(MergeError, match=r"part 3 of 3 has a different header.*nothing was written"):
        store(export_id, tmp_path / "day.csv").execute({})
    assert list(tmp_path.iterdir()) == []


def test_a_bare_job_id_is_transferred_unfiltered_with_a_warning(
    emu: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    export_id = export().execute({})["export_id"]
    bare = job_id(export_id)
    with caplog.at_level(logging.WARNING):
        result = store(bare, tmp_path / "all.csv").execute({})
    text = caplog.text + capsys.readouterr().out  # Airflow 2 logs via logging, Airflow 3 via structlog
    assert "carries no window" in text and "unfiltered" in text
    assert result["dropped_rows"] == 0 and result["rows"] == len(emu.job(bare).rows)


def test_expired_links_fail_saying_a_new_export_is_needed(emu: Any, tmp_path: Path) -> None:
    export_id = export().execute({})["export_id"]
    emu.expire_links(job_id(export_id))
    with pytest.raises(AirflowException, match="a new export is needed"):
        store(export_id, tmp_path / "day.csv").execute({})
    assert list(tmp_path.iterdir()) == []


def test_links_expiring_mid_download_fail_saying_a_new_export_is_needed(
    make_emu: Any, tmp_path: Path
) -> None:
    emu = make_emu(parts=2)
    export_id = export().execute({})["export_id"]
    emu.faults.script("download", ["ok", "expire:200"])
    with pytest.raises(Exception, match="a new export is needed"):
        store(export_id, tmp_path / "day.csv").execute({})
    assert list(tmp_path.iterdir()) == []


def test_broken_downloads_are_resumed_or_restarted(make_emu: Any, tmp_path: Path) -> None:
    emu = make_emu(parts=2, gzip_parts=[1])
    export_id = export().execute({})["export_id"]
    emu.faults.script("download", ["truncate:300", "ok", "reset", 503])
    target = tmp_path / "day.csv"
    store(export_id, target).execute({})
    assert target.read_bytes() == emu.expected_csv(DAY1, DAY2)
    ranges = [e.headers.get("Range") for e in emu.request_log if "/download/" in e.path]
    assert "bytes=300-" in ranges  # the truncated part was resumed, not downloaded again


def test_plain_parts_are_merged_as_they_arrive_and_packed_ones_spooled(
    make_emu: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_msghistory.transfers import parts

    emu = make_emu(parts=2, gzip_parts=[1])
    export_id = export().execute({})["export_id"]
    spooled: list[int] = []  # bytes each part left in its temporary file
    close = parts._PartSink.close

    def recording_close(self: Any, max_part_bytes: int) -> None:
        spooled.append(self.file.seek(0, 2))
        close(self, max_part_bytes)

    monkeypatch.setattr(parts._PartSink, "close", recording_close)
    target = tmp_path / "day.csv"
    store(export_id, target).execute({})
    assert target.read_bytes() == emu.expected_csv(DAY1, DAY2)
    assert spooled[0] == 0 and spooled[1] > 0  # the plain part never touched local disk; the gzip one did


def test_a_streamed_part_that_must_start_over_begins_the_merged_file_again(
    make_emu: Any, tmp_path: Path
) -> None:
    emu = make_emu(parts=3)
    export_id = export().execute({})["export_id"]
    # Part 2 breaks after 300 bytes and its resume is answered from byte 0 (Range ignored): what parts 1 and
    # 2 already put in the merged file cannot be taken back.
    emu.faults.script("download", ["ok", "truncate:300", "norange"])
    target = tmp_path / "day.csv"
    result = store(export_id, target).execute({})
    expected = emu.expected_csv(DAY1, DAY2)
    assert target.read_bytes() == expected  # no row twice, none lost
    assert result["sha256"] == hashlib.sha256(expected).hexdigest()
    # the merged file was begun again: every part downloaded again, from byte 0
    downloads = [(e.status, e.headers.get("Range")) for e in emu.request_log if "/download/" in e.path]
    assert downloads == [(200, None), (200, None), (200, "bytes=300-"), (200, None), (200, None), (200, None)]
    assert [p.name for p in tmp_path.iterdir()] == ["day.csv"]


def test_429_with_retry_after_and_5xx_are_ridden_out(make_emu: Any, tmp_path: Path) -> None:
    emu = make_emu()
    emu.faults.script("submit", [429, 503])
    emu.faults.script("status", [429, 500, "reset", 502])
    result = export().execute({})
    assert result["status"] == "COMPLETED"
    submitted = [e for e in emu.request_log if e.method == "POST"]
    assert [e.status for e in submitted] == [429, 503, 202]  # refused, so safe to send again: one job
    assert len(emu.jobs) == 1
    store(result["export_id"], tmp_path / "day.csv").execute({})
    assert (tmp_path / "day.csv").read_bytes() == emu.expected_csv(DAY1, DAY2)


# --- cancel ------------------------------------------------------------------------------------------
def test_killing_the_sync_task_cancels_the_job(make_emu: Any) -> None:
    emu = make_emu(export_delay=60)
    op = export(timeout=30)

    def kill_once_submitted() -> None:  # what Airflow's SIGTERM handler does while execute() waits
        deadline = time.time() + 10
        while not emu.jobs and time.time() < deadline:
            time.sleep(0.02)
        op.on_kill()

    killer = threading.Thread(target=kill_once_submitted, daemon=True)
    killer.start()
    with pytest.raises(AirflowException, match="status 'cancelled'"):
        op.execute({})  # the wait sees the cancelled job and ends
    killer.join(10)
    (jid,) = emu.jobs
    assert emu.cancelled_jobs == [jid] and emu.job(jid).status == "cancelled"


def test_killing_the_deferred_task_cancels_the_job(make_emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_msghistory.triggers import export as trigger_module

    emu = make_emu(export_delay=60)
    with pytest.raises(TaskDeferred) as deferred:
        export(deferrable=True).execute({})
    trigger = deferred.value.trigger
    assert trigger.cancel_on_kill
    # The state a triggerer reads once the user marked the task failed; no real task stands behind this.
    monkeypatch.setattr(trigger_module, "_task_state", lambda ti: "failed")

    async def kill_while_waiting() -> None:
        task = asyncio.ensure_future(trigger.run().__anext__())
        await polled(emu, job_id(trigger.export_id))
        task.cancel()  # what the triggerer does when the user kills the task (below 3.3 the run cancels) ...
        with pytest.raises(asyncio.CancelledError):
            await task
        if trigger_module.ON_KILL_SUPPORTED:
            await trigger.on_kill()  # ... and then, on Airflow >= 3.3, this

    asyncio.run(kill_while_waiting())
    (jid,) = emu.jobs
    assert emu.cancelled_jobs == [jid] and emu.job(jid).status == "cancelled"


def test_a_trigger_reassigned_from_a_stalled_triggerer_keeps_the_job_for_the_live_copy(
    make_emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3 calls on_kill on a stalled triggerer's copy once its trigger runs elsewhere; the task is
    still deferred (on the copy that took over), so the job must keep running and the live copy succeed."""
    from airflow_provider_msghistory.triggers import export as trigger_module

    emu = make_emu(export_delay=1.0)
    with pytest.raises(TaskDeferred) as deferred:
        export(deferrable=True).execute({})
    stalled = deferred.value.trigger
    live = type(stalled)(**stalled.serialize()[1])  # the copy the healthy triggerer rebuilt
    states: list[Any] = []

    def deferred_state(ti: Any) -> str:
        states.append(ti)
        return "deferred"

    monkeypatch.setattr(trigger_module, "_task_state", deferred_state)

    async def reassign() -> dict[str, Any]:
        first = asyncio.ensure_future(stalled.run().__anext__())
        second = asyncio.ensure_future(live.run().__anext__())
        await polled(emu, job_id(stalled.export_id))
        first.cancel()  # the resumed triggerer cancels its copy ("by user action" on 3.3) ...
        with pytest.raises(asyncio.CancelledError):
            await first
        if trigger_module.ON_KILL_SUPPORTED:
            await stalled.on_kill()  # ... and calls on_kill
        return (await second).payload

    event = asyncio.run(reassign())
    assert states, "on_kill did not read the task's state before deciding"
    assert emu.cancelled_jobs == [] and not [e for e in emu.request_log if e.method == "DELETE"]
    assert event["status"] == "success" and event["export_status"] == "COMPLETED"


def test_an_unreadable_task_state_keeps_the_job(make_emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_msghistory.triggers import export as trigger_module

    emu = make_emu(export_delay=60)
    export_id = MsgHistoryHook().get_client().submit_message_history_export(DAY1, DAY2)

    def unreadable(ti: Any) -> str:
        raise ConnectionError("API server unreachable")

    monkeypatch.setattr(trigger_module, "_task_state", unreadable)
    asyncio.run(make_trigger(export_id, cancel_on_kill=True).on_kill())
    assert emu.cancelled_jobs == []


def test_a_timed_out_deferred_wait_cancels_its_job(make_emu: Any) -> None:
    emu = make_emu(export_delay=60)
    with pytest.raises(TaskDeferred) as deferred:
        export(deferrable=True, timeout=0.5).execute({})
    event, _ = run_trigger(deferred.value.trigger)
    assert event["status"] == "timeout"
    (jid,) = emu.jobs
    assert emu.cancelled_jobs == [jid]


# --- triggerer scale ---------------------------------------------------------------------------------
def test_job_waits_share_one_client_and_cost_one_request_per_poll(make_emu: Any) -> None:
    emu = make_emu(export_delay=0.6)
    client = MsgHistoryHook().get_client()
    ids = [client.submit_message_history_export(DAY1, DAY2) for _ in range(20)]
    emu.clear_request_log()
    seen: set[int] = set()

    from airflow_provider_msghistory.triggers import _shared_poll

    original = _shared_poll._OwnPoll.__init__

    def record(self: Any, share: Any, client: Any, subscription: Any) -> None:
        original(self, share, client, subscription)
        seen.add(id(client))

    _shared_poll._OwnPoll.__init__ = record  # type: ignore[method-assign]
    try:
        events = asyncio.run(wait_all_plain(ids))
    finally:
        _shared_poll._OwnPoll.__init__ = original  # type: ignore[method-assign]
    assert all(e["status"] == "success" for e in events)
    assert len(seen) == 1  # one client (and pool) for all twenty waits
    per_job: dict[str, int] = {}
    for entry in emu.request_log:
        per_job[entry.path.rsplit("/", 1)[-1]] = per_job.get(entry.path.rsplit("/", 1)[-1], 0) + 1
    # 0.6 s to succeed at 0.2 s polls: about four looks each, never a request more than polls needed + 2
    assert max(per_job.values()) <= 0.6 / 0.2 + 1 + 2


async def wait_all_plain(ids: list[str]) -> list[dict[str, Any]]:
    async def one(export_id: str) -> dict[str, Any]:
        async for event in make_trigger(export_id, poll_interval=0.2).run():
            return event.payload
        raise AssertionError

    return await asyncio.gather(*(one(i) for i in ids))


@pytest.mark.parametrize("job_id", [".", ".."])
def test_a_dot_job_id_never_reaches_the_api(emu: Any, job_id: str) -> None:
    emu.clear_request_log()
    client = MsgHistoryHook().get_client()
    for call in (client.get_export, client.cancel_export):
        with pytest.raises(ValueError, match="export_id"):
            call(job_id)
    assert emu.request_log == []
