"""The wait for an export, written once: what a status means (:func:`decide`), the bookkeeping of one wait
and what to do after each look (:meth:`ExportWaiter.step`), and the synchronous drive of it
(:meth:`ExportWaiter.poke`, :func:`wait_until_ready`).

The trigger (async, fed by the shared poll), the sync operator, the sensor and the transfer all hand each
look to :meth:`ExportWaiter.step` and do what the :class:`WaitStep` says; they differ only in how they fetch
and sleep. No Airflow here: the Airflow layer turns :class:`WaitFailedError` into its own exceptions
(``utils/waits.py``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    RateLimitedError,
    ServerError,
    WaitFailedError,
    WaitTimeoutError,
)
from airflow_provider_msghistory.client.models import ExportJob, ExportStatus
from airflow_provider_msghistory.client.progress import WaitProgress

if TYPE_CHECKING:
    from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient

Action = Literal["done", "wait", "regenerate", "fail"]

# Export-list page sizes of a wait that is not built for a client (the dialects set their own).
LIST_PAGE_SIZE = 50
#: The longest server-requested wait (``Retry-After``) honoured while polling: one ``Retry-After: 3600`` must
#: not put a wait (or a shared poll) to sleep for an hour.
MAX_RETRY_AFTER = 300.0
#: Seconds before a wait's deadline at which a backed-off wait still takes a last look (one long
#: ``Retry-After`` must not turn a ready export into a timeout, and a cancelled job).
LAST_LOOK_LEAD = 1.0


@dataclass(frozen=True)
class WaitDecision:
    """What to do after one look at an export.

    :param action: ``"done"`` (downloadable), ``"wait"`` (poll again), ``"regenerate"`` (the link expired:
        ask for a new one, then poll again) or ``"fail"`` (terminal; ``reason`` says why).
    :param reason: one line for the log or the error message.
    """

    action: Action
    reason: str


@dataclass(frozen=True)
class WaitStep:
    """What a driver does after one look at an export (:meth:`ExportWaiter.step`).

    :param action: ``"done"`` (``job`` is downloadable or finished empty: stop), ``"wait"`` (look again
        ``delay`` seconds after this look started), ``"regenerate"`` (regenerate the download link, call
        :meth:`ExportWaiter.regenerated`, then look again as for ``"wait"``) or ``"fail"`` (stop, for
        :attr:`message`).
    :param export_id: the export waited for.
    :param reason: one line saying why.
    :param job: the export as seen (``None`` when the look failed or the vendor does not know it).
    :param delay: seconds from the start of this look to the next one.
    :param line: what to log now (``None``: stay quiet), at ``level``.
    :param level: the line's logging level (a transient failure is a warning).
    """

    action: Action
    export_id: str
    reason: str
    job: ExportJob | None = None
    delay: float = 0.0
    line: str | None = None
    level: int = logging.INFO

    @property
    def message(self) -> str:
        """Why the wait failed, naming the export (the words of :class:`WaitFailedError`)."""
        return f"export {self.export_id}: {self.reason}"

    def log_to(self, log: Any) -> None:
        """Log the step's line, if it has one."""
        if self.line:
            log.log(self.level, "%s", self.line)


def decide(
    job: ExportJob | None, regenerations: int, max_regenerations: int, can_regenerate: bool = True
) -> WaitDecision:
    """Decide what an observed export state means.

    :param job: the export as the vendor shows it, or ``None`` when the vendor does not know the id.
    :param regenerations: how many times its download link was already regenerated while waiting.
    :param max_regenerations: how many regenerations are allowed before giving up.
    :param can_regenerate: the vendor can re-create an expired export (``Capabilities.regenerate``).
    """
    if job is None:
        return WaitDecision("fail", "export not found on the vendor's side (unknown id?)")
    status = job.status
    if status is ExportStatus.COMPLETED:
        if job.available:
            return WaitDecision("done", "completed and available for download")
        # The vendor flags readiness separately; COMPLETED alone is not enough (tolerance contract).
        return WaitDecision("wait", "completed but not yet available for download")
    if status is ExportStatus.EMPTY:
        return WaitDecision("done", "finished with no rows (empty)")
    if status is ExportStatus.PENDING:
        return WaitDecision("wait", f"still being generated (status {job.raw_status!r})")
    if status is ExportStatus.EXPIRED:
        if not can_regenerate:
            return WaitDecision(
                "fail",
                "download links expired and this vendor cannot regenerate them: a new export is needed",
            )
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


def timeout_reason(export_id: str) -> str:
    """Message for a wait for ``export_id`` that ran out of time."""
    return (
        f"export {export_id} was not ready before the deadline; raise the timeout or check the export on "
        f"the vendor side"
    )


def until_last_look(deadline: float | None, now: float) -> float:
    """Seconds until a wait's last look, :data:`LAST_LOOK_LEAD` before its ``deadline`` (epoch seconds);
    infinity when it has no deadline or that moment has passed (the next look is then the last)."""
    if deadline is None:
        return float("inf")
    ahead = deadline - LAST_LOOK_LEAD - now
    return ahead if ahead > 0 else float("inf")


@dataclass
class ExportWaiter:
    """One wait: page hint, regenerations, consecutive transient failures, deadline, progress log.

    Drivers (trigger, sync operator, sensor, transfer) fetch, hand each look (or its failure) to
    :meth:`step` and do what it says; how they fetch and sleep is theirs. Time is passed in, so this stays
    pure and testable.

    :param export_id: the export being waited for.
    :param poll_interval: seconds between polls while the export is still working.
    :param deadline: absolute epoch seconds after which the wait times out.
    :param max_regenerations: regenerations of an expired link allowed during the wait.
    :param page_hint: export-list page the export was last seen on (the list is newest first).
    :param regenerations: regenerations already done.
    :param page_size: export-list page size to look with.
    :param fallback_page_size: the smaller page size to rescan with before calling an export unknown
        (``Dialect.list_fallback_page_size``).
    :param can_regenerate: the vendor can re-create an expired export.
    :param failures: consecutive transient failures so far.
    :param tracks_list: the vendor's exports are found in its export list (else by job id).
    :param paced: the driver sleeps the step's ``delay`` itself (a sensor is poked on Airflow's schedule).
    """

    export_id: str
    poll_interval: float
    deadline: float
    max_regenerations: int
    page_hint: int = 0
    regenerations: int = 0
    page_size: int = LIST_PAGE_SIZE
    fallback_page_size: int = LIST_PAGE_SIZE
    can_regenerate: bool = True
    failures: int = 0
    tracks_list: bool = True
    paced: bool = True
    progress: WaitProgress | None = field(default=None, repr=False, compare=False)

    def begin(self, now: float) -> WaitProgress:
        """Count the wait's elapsed time (in its log lines) from ``now``, unless it already began."""
        if self.progress is None:
            self.progress = WaitProgress(self.export_id, now)
        return self.progress

    def step(
        self,
        job: ExportJob | None = None,
        page: int = 0,
        *,
        error: BaseException | None = None,
        now: float | None = None,
    ) -> WaitStep:
        """What to do after one look: it saw ``job`` on list ``page``, or failed with ``error``.

        A transient ``error`` (5xx, 429, network) is waited out with a back-off; any other ends the wait.
        The step's ``line`` is the wait's log: each change of what it sees, a sparse heartbeat in between
        (:class:`WaitProgress`), a warning per transient failure; nothing for a failure (the driver raises
        or reports it).

        :param now: epoch seconds of the look (default: the clock).
        """
        now = time.time() if now is None else now
        progress = self.begin(now)
        if error is not None:
            backoff = self.on_error(error)
            if backoff is None:
                return WaitStep("fail", self.export_id, str(error))
            reason = f"transient failure #{self.failures} ({error})"
            retry = f"retrying in {backoff:.1f}s" if self.paced else "poking again later"
            line = f"Export {self.export_id}: {reason}; {retry}"
            return WaitStep("wait", self.export_id, reason, delay=backoff, line=line, level=logging.WARNING)
        decision = self.observe(job, page)
        if decision.action == "fail":
            return WaitStep("fail", self.export_id, decision.reason, job)
        done = decision.action == "done"
        line = progress.poll(decision.reason, now, None if done else self.poll_interval)
        return WaitStep(decision.action, self.export_id, decision.reason, job, self.poll_interval, line)

    def observe(self, job: ExportJob | None, page: int) -> WaitDecision:
        """Record a successful look at the export list and decide (the part of :meth:`step` without the
        log); call :meth:`regenerated` after acting."""
        self.failures = 0
        if job is not None:
            self.page_hint = page
        elif self.tracks_list and self.page_size > self.fallback_page_size:
            # A server capping the page size serves short pages, which end a scan early: look once more
            # with small pages before calling the export unknown.
            self.page_size, self.page_hint = self.fallback_page_size, 0
            return WaitDecision("wait", "not found with large list pages; rescanning with small ones")
        return decide(job, self.regenerations, self.max_regenerations, self.can_regenerate)

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
        the API's latency, so a completion is seen within one poll interval (plus one round trip). A long
        back-off still leaves a last look just before the deadline.
        """
        start = now if since is None else since
        return max(0.0, min(start + delay - now, until_last_look(self.deadline, now), self.remaining(now)))

    def timeout_reason(self) -> str:
        """Message for a wait that ran out of time."""
        return timeout_reason(self.export_id)

    # --- the synchronous drive (operator, sensor, transfer) --------------------------------------------
    def poke(self, client: ExportClient, log: Any) -> WaitStep:
        """One look, its :meth:`step` logged to ``log`` and a regeneration it calls for done. Raises an
        error that is not transient as it is (a typed client error)."""
        now = time.time()
        try:
            step = self.step(*client.look(self.export_id, self.page_hint, self.page_size), now=now)
            step.log_to(log)
            if step.action == "regenerate":
                client.regenerate_download_link(self.export_id)
                self.regenerated()
        except Exception as error:
            step = self.step(error=error, now=now)
            if step.action == "fail":
                raise
            step.log_to(log)
        return step

    def status(self, client: ExportClient) -> WaitStep:
        """What the wait would do now, acting on nothing and raising any error (a retry reconnecting to
        its export); a miss with large list pages is looked for again at once with small ones."""
        while True:
            size = self.page_size
            step = self.step(*client.look(self.export_id, self.page_hint, size))
            if self.page_size == size:
                return step

    @classmethod
    def for_client(
        cls,
        client: ExportClient | AsyncExportClient,
        export_id: str,
        poll_interval: float,
        deadline: float,
        max_regenerations: int,
        **kwargs: Any,
    ) -> ExportWaiter:
        """A waiter set up for ``client``'s vendor (how it tracks, its list pages, whether it regenerates)."""
        dialect = client.dialect
        kwargs.setdefault("page_size", dialect.list_page_size)
        kwargs.setdefault("fallback_page_size", dialect.list_fallback_page_size)
        return cls(
            export_id,
            poll_interval,
            deadline,
            max_regenerations,
            can_regenerate=client.caps.regenerate,
            tracks_list=client.caps.tracking == "list",
            **kwargs,
        )


def wait_until_ready(client: ExportClient, waiter: ExportWaiter, log: Any) -> ExportJob:
    """Poll until ``waiter`` says done; ``WaitFailedError`` / ``WaitTimeoutError`` otherwise.

    Each look starts one delay after the previous one started (a steady cadence whatever the latency).
    """
    waiter.begin(time.time())
    while True:
        if waiter.remaining(time.time()) <= 0:
            raise WaitTimeoutError(waiter.export_id, waiter.timeout_reason())
        polled_at = time.time()
        step = waiter.poke(client, log)
        if step.action == "fail":
            raise WaitFailedError(waiter.export_id, step.reason)
        if step.action == "done" and step.job is not None:
            return step.job
        time.sleep(waiter.sleep_for(step.delay, time.time(), since=polled_at))
