"""MsgHistoryExportOperator.execute() against the emulator: sync wait, deferral, resume, failures."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred
from state_store import DictStateStore
from triggers.helpers import run_trigger
from vendor_groups import WAITED

from airflow_provider_msghistory.client.dialects import DIALECTS
from airflow_provider_msghistory.client.models import ExportStatus
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.waiting import ExportWaiter
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger
from airflow_provider_msghistory.utils.waits import wait_in_worker

DAY1 = "2025-01-01T00:00:00+00:00"
DAY2 = "2025-01-02T00:00:00+00:00"


def airflow_has_task_state_store() -> bool:
    from airflow.providers.common.compat.sdk import ResumableJobMixin

    return ResumableJobMixin.__module__.startswith("airflow.sdk")


@pytest.fixture
def emu(msghistory_emulator: Any, use_emulator: Callable[..., None]) -> Any:
    use_emulator(msghistory_emulator)
    return msghistory_emulator


def submit_requests(emulator: Any) -> list[Any]:
    tails = ("/history/export", "/exports/contacts", "/exports/delivery-reports")
    return [r for r in emulator.request_log if r.method == "POST" and r.path.endswith(tails)]


def operator(**kwargs: Any) -> MsgHistoryExportOperator:
    kwargs.setdefault("task_id", "export")
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("timeout", 20)
    kwargs.setdefault("deferrable", False)
    return MsgHistoryExportOperator(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "body", "window"),
    [
        (
            {
                "export_type": "message_history",
                "start_datetime": DAY1,
                "end_datetime": DAY2,
                "sender": "ACME",
            },
            {
                "startDateTime": "2025-01-01T00:00:00.000+00:00",
                "endDateTime": "2025-01-01T23:59:59.999+00:00",
            },
            {"start": "2025-01-01T00:00:00.000+00:00", "end": "2025-01-01T23:59:59.999+00:00"},
        ),
        (
            {"export_type": "delivery_reports", "start_datetime": DAY1, "end_datetime": DAY2},
            {
                "startDateTime": "2025-01-01T00:00:00.000+00:00",
                "endDateTime": "2025-01-01T23:59:59.999+00:00",
            },
            {"start": "2025-01-01T00:00:00.000+00:00", "end": "2025-01-01T23:59:59.999+00:00"},
        ),
        ({"export_type": "delivery_reports", "campaign_id": "12345"}, {"campaignId": "12345"}, None),
        ({"export_type": "contacts", "list_ids": [1, 2]}, {"listIds": [1, 2]}, None),
        ({"export_type": "contacts"}, {}, None),
    ],
)
def test_sync_mode_submits_waits_and_returns_a_small_xcom(
    emu: Any, kwargs: dict[str, Any], body: dict[str, Any], window: dict[str, str] | None
) -> None:
    result = operator(**kwargs).execute({})
    assert set(result) == {"export_id", "export_type", "window", "status", "msghistory_conn_id", "vendor"}
    assert (result["msghistory_conn_id"], result["vendor"]) == ("msghistory_default", "qlara")
    assert result["export_type"] == kwargs["export_type"]
    assert result["window"] == window
    assert result["status"] == "COMPLETED"
    assert emu.exports[result["export_id"]].status == "COMPLETED"
    (submitted,) = submit_requests(emu)
    sent = submitted.json or {}
    assert {key: sent.get(key) for key in body} == body
    if window is None:
        assert "startDateTime" not in sent
    assert emu.api_key not in json.dumps(result)


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
@pytest.mark.parametrize("vendor", WAITED)
def test_every_vendor_submits_waits_or_defers_and_resumes(
    vendor: str,
    deferrable: bool,
    msghistory_emulator_factory: Callable[..., Any],
    use_emulator: Callable[..., None],
) -> None:
    emu = msghistory_emulator_factory(vendor)
    use_emulator(emu)
    op = operator(
        export_type="message_history", start_datetime=DAY1, end_datetime=DAY2, deferrable=deferrable
    )
    if deferrable:
        with pytest.raises(TaskDeferred) as deferred:
            op.execute({})
        trigger = deferred.value.trigger
        assert isinstance(trigger, MsgHistoryExportTrigger)
        assert deferred.value.method_name == "execute_complete"
        assert trigger.poll_interval == 0.05
        assert len(list(emu.request_log)) == 1  # only the submission: the wait is the trigger's
        event, _ = run_trigger(trigger)
        result = op.execute_complete({}, event)
        assert result["export_id"] == trigger.export_id
    else:
        result = op.execute({})
    assert result == {
        "export_id": result["export_id"],
        "export_type": "message_history",
        "window": {"start": "2025-01-01T00:00:00.000+00:00", "end": "2025-01-01T23:59:59.999+00:00"},
        "status": "COMPLETED",
        "msghistory_conn_id": "msghistory_default",
        "vendor": vendor,
    }
    # A vendor whose bounds are not exact carries the window in the id, for the transfer to cut rows by.
    ref = ExportRef.parse(result["export_id"])
    if DIALECTS[vendor].caps.exact_bounds:
        assert ref.window is None
    else:
        assert ref.window is not None and ref.window.start.isoformat() == "2025-01-01T00:00:00+00:00"
    assert MsgHistoryHook().get_client().get_export(result["export_id"]).status == ExportStatus.COMPLETED
    looks = [e for e in emu.request_log if e.method == "GET"]
    assert looks and all(e.status == 200 for e in looks)
    assert all(e.had_auth for e in emu.request_log)
    assert emu.api_key not in json.dumps(result)


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (
            {"status": "error", "export_id": "e1", "message": "export e1: export failed on the server"},
            "failed",
        ),
        ({"status": "timeout", "export_id": "e1", "message": "not ready before the deadline"}, "timed out"),
        (None, "without an event"),
    ],
)
def test_execute_complete_fails_with_the_cause(event: dict[str, Any] | None, match: str) -> None:
    op = operator(export_type="contacts")
    with pytest.raises(AirflowException, match=match) as caught:
        op.execute_complete({}, event)  # type: ignore[arg-type]
    if event:
        assert event["message"] in str(caught.value)


def test_wait_for_completion_false_returns_after_the_submission(emu: Any) -> None:
    result = operator(export_type="contacts", wait_for_completion=False).execute({})
    assert result["status"] == "SUBMITTED"
    assert [r.method for r in emu.request_log] == ["POST"]


def test_templated_values_are_validated_before_any_request(emu: Any) -> None:
    op = operator(export_type="message_history", start_datetime="{{ a }}", end_datetime="{{ b }}")
    op.start_datetime, op.end_datetime = DAY2, DAY2  # as rendered by CronTriggerTimetable("@daily")
    with pytest.raises(AirflowFailException, match="CronDataIntervalTimetable"):  # no retry: same again
        op.execute({})
    assert list(emu.request_log) == []


def test_a_downstream_destination_is_checked_before_the_export_is_submitted(emu: Any, tmp_path: Any) -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator

    (tmp_path / "2025-01-01").mkdir()
    (tmp_path / "2025-01-01" / "messages.csv").write_bytes(b"yesterday's run\n")
    with DAG("precheck", schedule=None):
        export = operator(export_type="message_history", start_datetime=DAY1, end_datetime=DAY2)
        export >> MsgHistoryExportToStorageOperator(
            task_id="store",
            export_id="{{ ti.xcom_pull(task_ids='export')['export_id'] }}",
            destination=f"{tmp_path}/{{{{ ds }}}}/messages.csv",  # rendered from the export's context
        )

    with pytest.raises(AirflowException) as caught:
        export.execute({"ds": "2025-01-01"})
    assert str(caught.value) == (
        "export not submitted: downstream task 'store' would fail after it: destination: "
        f"'file://{tmp_path}/2025-01-01/messages.csv' already exists and if_exists='fail'; pass "
        "if_exists='replace' to overwrite it or 'skip' to keep it"
    )
    assert submit_requests(emu) == []  # no export's wait spent on a file that cannot be written
    # another day's file is free: the export goes ahead
    assert export.execute({"ds": "2025-01-02"})["status"] == "COMPLETED"


def test_sync_wait_fails_on_a_failed_export(emu: Any) -> None:
    emu.faults.script("submit", ["fail"])
    with pytest.raises(AirflowException, match="failed on the server"):
        operator(export_type="contacts").execute({})


def test_sync_wait_times_out(msghistory_emulator_factory: Callable[..., Any], use_emulator) -> None:
    with msghistory_emulator_factory(export_delay=120) as emulator:
        use_emulator(emulator)
        with pytest.raises(AirflowException, match="deadline"):
            operator(export_type="contacts", timeout=0.5, poll_interval=0.1).execute({})


def test_sync_wait_rides_out_transient_errors(emu: Any, use_emulator: Callable[..., None]) -> None:
    use_emulator(emu, max_attempts=1)
    emu.faults.script("list", [503, "reset", 429, 500])
    result = operator(export_type="contacts", poll_interval=0.02).execute({})
    assert result["status"] == "COMPLETED"
    assert [r.status for r in emu.request_log if r.method == "GET"][:4] == [503, 0, 429, 500]


def test_sync_wait_regenerates_an_expired_link(emu: Any) -> None:
    hook = MsgHistoryHook()
    export_id = hook.get_client().submit_contacts_export()
    emu.complete_export(export_id)
    emu.expire_link(export_id)
    waiter = ExportWaiter(export_id, poll_interval=0.02, deadline=time.time() + 10, max_regenerations=1)
    job = wait_in_worker(hook.get_client(), waiter, logging.getLogger(__name__))
    assert job.ready
    assert waiter.regenerations == 1
    assert emu.exports[export_id].regenerations == 1


def test_a_retry_reconnects_to_the_live_export_instead_of_resubmitting(
    msghistory_emulator_factory: Callable[..., Any], use_emulator: Callable[..., None]
) -> None:
    with msghistory_emulator_factory(export_delay=120) as emulator:
        use_emulator(emulator)
        store = DictStateStore()
        first_try = operator(export_type="contacts", timeout=0.3, poll_interval=0.1)
        with pytest.raises(AirflowException, match="deadline"):
            first_try.execute({"task_state_store": store})
        assert len(submit_requests(emulator)) == 1
        if not airflow_has_task_state_store():
            assert store.values == {}  # Airflow < 3.3: the stand-in keeps nothing, a retry resubmits
            return
        export_id = store.values["msghistory_export_id"]
        emulator.complete_export(export_id)
        second_try = operator(export_type="contacts", timeout=5)
        result = second_try.execute({"task_state_store": store})
    assert result["export_id"] == export_id
    assert len(submit_requests(emulator)) == 1  # no duplicate export


def test_a_retry_after_a_failed_export_submits_a_fresh_one(emu: Any) -> None:
    if not airflow_has_task_state_store():
        pytest.skip("no task_state_store before Airflow 3.3")
    store = DictStateStore()
    emu.faults.script("submit", ["fail"])
    with pytest.raises(AirflowException, match="failed"):
        operator(export_type="contacts").execute({"task_state_store": store})
    failed_id = store.values["msghistory_export_id"]
    result = operator(export_type="contacts").execute({"task_state_store": store})
    assert result["export_id"] != failed_id
    assert store.values["msghistory_export_id"] == result["export_id"]


def test_a_deferred_retry_reconnects_too(emu: Any) -> None:
    if not airflow_has_task_state_store():
        pytest.skip("no task_state_store before Airflow 3.3")
    store = DictStateStore()
    op = operator(export_type="contacts", deferrable=True)
    with pytest.raises(TaskDeferred) as first:
        op.execute({"task_state_store": store})
    with pytest.raises(TaskDeferred) as second:  # e.g. the trigger was lost and the task retried
        operator(export_type="contacts", deferrable=True).execute({"task_state_store": store})
    assert second.value.trigger.export_id == first.value.trigger.export_id
    assert len(submit_requests(emu)) == 1
