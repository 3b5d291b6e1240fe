"""The one status decision (client/waiting.py) shared by the trigger, the sync operator and the sensor."""

from __future__ import annotations

import pytest

from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    ApiValidationError,
    AuthenticationError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_msghistory.client.models import ExportJob, ExportStatus
from airflow_provider_msghistory.client.waiting import LAST_LOOK_LEAD, ExportWaiter, decide


def job(status: ExportStatus, available: bool = False, raw: str | None = None) -> ExportJob:
    return ExportJob("exp_1", status, available, raw or status.value)


@pytest.mark.parametrize(
    ("seen", "regenerations", "action", "reason"),
    [
        (job(ExportStatus.COMPLETED, True), 0, "done", "available"),
        (job(ExportStatus.COMPLETED, False), 0, "wait", "not yet available"),
        (job(ExportStatus.PENDING, raw="RUNNING"), 0, "wait", "'RUNNING'"),
        (job(ExportStatus.UNKNOWN, raw="ARCHIVING"), 0, "wait", "unrecognised status 'ARCHIVING'"),
        (job(ExportStatus.EXPIRED), 0, "regenerate", "1/2"),
        (job(ExportStatus.EXPIRED), 1, "regenerate", "2/2"),
        (job(ExportStatus.EXPIRED), 2, "fail", "max_regenerations"),
        (job(ExportStatus.FAILED, raw="CANCELLED"), 0, "fail", "'CANCELLED'"),
        (None, 0, "fail", "not found"),
    ],
)
def test_decide(seen: ExportJob | None, regenerations: int, action: str, reason: str) -> None:
    decision = decide(seen, regenerations, max_regenerations=2)
    assert decision.action == action
    assert reason in decision.reason


def test_waiter_starts_the_scan_at_the_hinted_page_and_keeps_the_page_it_saw() -> None:
    waiter = ExportWaiter("exp_1", poll_interval=5, deadline=100, max_regenerations=1)
    assert waiter.page_hint == 0  # client.look scans from the hint itself
    waiter.observe(job(ExportStatus.PENDING), page=3)
    assert waiter.page_hint == 3


def test_waiter_rescans_with_small_pages_once_before_calling_an_export_unknown() -> None:
    waiter = ExportWaiter(
        "exp_1", poll_interval=5, deadline=100, max_regenerations=1, page_hint=4, page_size=500,
        fallback_page_size=50,
    )  # fmt: skip
    first = waiter.observe(None, 0)
    assert first.action == "wait"
    assert (waiter.page_size, waiter.page_hint) == (50, 0)
    assert waiter.observe(None, 0).action == "fail"


def test_empty_is_done_and_a_vendor_without_regenerate_needs_a_new_export() -> None:
    assert decide(job(ExportStatus.EMPTY), 0, 3).action == "done"
    expired = decide(job(ExportStatus.EXPIRED), 0, 3, can_regenerate=False)
    assert expired.action == "fail" and "a new export is needed" in expired.reason
    # a job-tracked vendor answers "unknown" from the job itself: no small-page rescan first
    waiter = ExportWaiter("j", 5, 100, 1, tracks_list=False)
    assert waiter.observe(None, 0).action == "fail"


def test_waiter_counts_regenerations_into_the_decision() -> None:
    waiter = ExportWaiter("exp_1", poll_interval=5, deadline=100, max_regenerations=1)
    assert waiter.observe(job(ExportStatus.EXPIRED), 0).action == "regenerate"
    waiter.regenerated()
    assert waiter.observe(job(ExportStatus.EXPIRED), 0).action == "fail"


def test_transient_errors_back_off_exponentially_and_honour_retry_after() -> None:
    waiter = ExportWaiter("exp_1", poll_interval=2, deadline=100, max_regenerations=1)
    delays = [waiter.on_error(ServerError(503, "busy", "list_exports")) for _ in range(5)]
    assert delays == [2, 4, 8, 16, 16]
    assert waiter.on_error(RateLimitedError(429, "slow down", "list_exports", retry_after=12)) == 12
    assert waiter.on_error(ApiConnectionError("connection reset", "list_exports")) == 16
    waiter.observe(job(ExportStatus.PENDING), 0)  # a good answer resets the backoff
    assert waiter.on_error(ServerError(500, "oops", "list_exports")) == 2


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError(401, "bad key", "list_exports"),
        ApiValidationError(400, "bad", "list_exports"),
        RuntimeError("bug"),
    ],
)
def test_other_errors_are_not_waited_out(error: Exception) -> None:
    waiter = ExportWaiter("exp_1", poll_interval=2, deadline=100, max_regenerations=1)
    assert waiter.on_error(error) is None


def test_sleep_never_runs_past_the_deadline() -> None:
    waiter = ExportWaiter("exp_1", poll_interval=10, deadline=100, max_regenerations=1)
    assert waiter.sleep_for(10, now=50) == 10
    assert waiter.sleep_for(10, now=95) == 100 - LAST_LOOK_LEAD - 95  # a last look before the deadline
    assert waiter.sleep_for(10, now=99.5) == 0.5  # that look taken: on to the deadline
    assert waiter.sleep_for(10, now=120) == 0
    assert waiter.remaining(120) < 0


def test_sleep_keeps_a_steady_cadence_whatever_the_latency() -> None:
    waiter = ExportWaiter("exp_1", poll_interval=5, deadline=100, max_regenerations=1)
    assert waiter.sleep_for(5, now=10.2, since=10.0) == pytest.approx(4.8)  # the look took 0.2 s
    assert waiter.sleep_for(5, now=16.0, since=10.0) == 0  # a slow look: poll again at once


def test_a_waiter_for_a_client_looks_with_its_dialects_page_sizes() -> None:
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.config import ClientConfig

    with ExportClient(ClientConfig(api_key="k-0123456789")) as client:
        waiter = ExportWaiter.for_client(client, "exp_1", 5, 100, 1)
    dialect = client.dialect
    assert waiter.page_size == dialect.list_page_size
    assert waiter.fallback_page_size == dialect.list_fallback_page_size
    assert waiter.page_size > waiter.fallback_page_size  # a list-tracked vendor rescans with small pages
