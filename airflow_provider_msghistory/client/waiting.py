"""The one place that decides what an export's status means while waiting for it.

The deferrable trigger, the synchronous operator loop and the sensor all poll the export list and hand what
they saw to :func:`decide`; they differ only in how they sleep and fetch. Pure: no I/O, no Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_msghistory.client.models import ExportJob, ExportStatus

Action = Literal["done", "wait", "regenerate", "fail"]

# Export-list page size used to find an export. The list is newest first, so newer exports push a waited-for
# export to later pages: a hinted poll costs one request, plus one each time the export crosses a page
# boundary (and the first look scans from page 0). A large page keeps those extra requests to about one or
# two even with a thousand exports created during the wait. Spring-style APIs (Qlara's error bodies are
# Spring Boot's) accept up to 2000 per page by default; a server that caps it lower is caught by the
# fallback below.
LIST_PAGE_SIZE = 500
# Page size to rescan with when the export is missing from a large-page scan (the server may cap ``limit``
# and serve short pages, which a scan reads as the end of the list).
FALLBACK_PAGE_SIZE = 50
#: The longest server-requested wait (``Retry-After``) honoured while polling: one ``Retry-After: 3600`` must
#: not put a wait (or a shared poll) to sleep for an hour.
MAX_RETRY_AFTER = 300.0


@dataclass(frozen=True)
class WaitDecision:
    """What to do after one look at an export.

    :param action: ``"done"`` (downloadable), ``"wait"`` (poll again), ``"regenerate"`` (the link expired:
        ask for a new one, then poll again) or ``"fail"`` (terminal; ``reason`` says why).
    :param reason: one line for the log or the error message.
    """

    action: Action
    reason: str


def decide(job: ExportJob | None, regenerations: int, max_regenerations: int) -> WaitDecision:
    """Decide what an observed export state means.

    :param job: the export as the list shows it, or ``None`` when the list does not hold the id.
    :param regenerations: how many times its download link was already regenerated while waiting.
    :param max_regenerations: how many regenerations are allowed before giving up.
    """
    if job is None:
        return WaitDecision("fail", "export not found in the account's export list (unknown id?)")
    status = job.status
    if status is ExportStatus.COMPLETED:
        if job.available:
            return WaitDecision("done", "completed and available for download")
        # The vendor flags readiness separately; COMPLETED alone is not enough (tolerance contract).
        return WaitDecision("wait", "completed but not yet available for download")
    if status is ExportStatus.PENDING:
        return WaitDecision("wait", f"still being generated (status {job.raw_status!r})")
    if status is ExportStatus.EXPIRED:
        if regenerations < max_regenerations:
            return WaitDecision(
                "regenerate", f"download link expired; regenerating ({regenerations + 1}/{max_regenerations})"
            )
        return WaitDecision(
            "fail", f"download link expired again after {regenerations} regeneration(s) (max_regenerations)"
        )
    if status is ExportStatus.FAILED:
        return WaitDecision("fail", f"export failed on the server (status {job.raw_status!r})")
    # An unrecognised status is logged and treated as still working until the timeout (tolerance contract).
    return WaitDecision("wait", f"unrecognised status {job.raw_status!r}; treated as still working")


def is_transient(error: BaseException) -> bool:
    """True for failures worth waiting out while polling: 5xx, 429 and network errors.

    The client already retried these within its own budget; a waiter keeps going until its deadline.
    """
    return isinstance(error, (ServerError, RateLimitedError, ApiConnectionError))


def transient_delay(failures: int, poll_interval: float, error: BaseException | None = None) -> float:
    """Seconds to wait after ``failures`` consecutive transient failures (exponential, capped).

    Honours a server-sent ``retry_after`` up to :data:`MAX_RETRY_AFTER`; otherwise doubles the poll
    interval per failure, up to 8x it (and at least one poll interval), so a flapping API is not hammered
    and the deadline is still checked.

    :param failures: consecutive transient failures so far (1 for the first).
    :param poll_interval: the waiter's normal poll interval in seconds.
    :param error: the failure, to read a rate-limit ``retry_after`` from.
    """
    backoff = poll_interval * 2 ** min(max(failures - 1, 0), 3)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)) and retry_after > 0:
        return max(min(float(retry_after), MAX_RETRY_AFTER), poll_interval)
    return backoff


@dataclass
class ExportWaiter:
    """Bookkeeping of one wait: page hint, regenerations, consecutive transient failures, deadline.

    Drivers (trigger, sync operator, sensor) fetch, then report what they saw; the waiter answers with a
    :class:`WaitDecision` and how long to sleep. Time is passed in, so this stays pure and testable.

    :param export_id: the export being waited for.
    :param poll_interval: seconds between polls while the export is still working.
    :param deadline: absolute epoch seconds after which the wait times out.
    :param max_regenerations: regenerations of an expired link allowed during the wait.
    :param page_hint: export-list page the export was last seen on (the list is newest first).
    :param regenerations: regenerations already done.
    :param page_size: export-list page size to look with.
    """

    export_id: str
    poll_interval: float
    deadline: float
    max_regenerations: int
    page_hint: int = 0
    regenerations: int = 0
    page_size: int = LIST_PAGE_SIZE
    failures: int = 0

    @property
    def start_page(self) -> int:
        """``start_page`` for ``find_export``, which reads from ``start_page - 1``: begin at the hint itself.

        Exports only move to later pages (newest first), so starting one page early would cost a request
        per poll; a client scan falls back to earlier pages by itself when the export is not found forward.
        """
        return self.page_hint + 1

    def observe(self, job: ExportJob | None, page: int) -> WaitDecision:
        """Record a successful look at the export list and decide; call :meth:`regenerated` after acting."""
        self.failures = 0
        if job is not None:
            self.page_hint = page
        elif self.page_size > FALLBACK_PAGE_SIZE:
            # A server capping the page size serves short pages, which end a scan early: look once more
            # with small pages before calling the export unknown.
            self.page_size, self.page_hint = FALLBACK_PAGE_SIZE, 0
            return WaitDecision("wait", "not found with large list pages; rescanning with small ones")
        return decide(job, self.regenerations, self.max_regenerations)

    def regenerated(self) -> None:
        """Count a regeneration of the download link."""
        self.regenerations += 1

    def on_error(self, error: BaseException) -> float | None:
        """Seconds to back off after a transient ``error``; ``None`` when it is not transient (give up)."""
        if not is_transient(error):
            return None
        self.failures += 1
        return transient_delay(self.failures, self.poll_interval, error)

    def remaining(self, now: float) -> float:
        """Seconds left before the deadline (<= 0 once it passed)."""
        return self.deadline - now

    def sleep_for(self, delay: float, now: float, since: float | None = None) -> float:
        """Seconds to sleep so the next look starts ``delay`` after ``since`` (default: now), not later
        than the deadline. Counting from the start of the previous look keeps a steady cadence whatever
        the API's latency, so a completion is seen within one poll interval (plus one round trip).
        """
        start = now if since is None else since
        return max(0.0, min(start + delay - now, self.remaining(now)))

    def timeout_reason(self) -> str:
        """Message for a wait that ran out of time."""
        return (
            f"export {self.export_id} was not ready before the deadline; raise the timeout or check the "
            f"export on the vendor side"
        )
