"""ExportClient (sync) and AsyncExportClient: a dialect speaking over a transport.

The clients hold no vendor knowledge: requests come from the dialect, bytes go through the transport, and
error statuses become the dialect's typed errors (with secrets scrubbed from the server's text).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any

from airflow_provider_msghistory.client.auth import AuthFlow
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.datetimes import parse_aware
from airflow_provider_msghistory.client.dialects import Dialect, make_dialect
from airflow_provider_msghistory.client.dialects.base import Capabilities
from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    ApiError,
    ApiValidationError,
    NotFoundError,
    RateLimitedError,
)
from airflow_provider_msghistory.client.history import HistoryPage, HistoryWalk, message_list_of
from airflow_provider_msghistory.client.models import DownloadLink, ExportJob, ExportKind, ExportRequest
from airflow_provider_msghistory.client.pacing import Pacer
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.retry import RetryPolicy
from airflow_provider_msghistory.client.transport.aio import AsyncTransport
from airflow_provider_msghistory.client.transport.sync import DownloadResponse, SyncTransport
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

log = logging.getLogger(__name__)

MAX_LIST_PAGES = 10_000  # a server that ignores ``page`` must not keep a scan going forever
# Export-list pages one async scan reads at once (the key's pacer still spaces them): a shared poll over
# tens of thousands of exports reads its twenty-odd pages in a few round trips, not one after another.
LIST_READS_AT_ONCE = 8
HISTORY_STORM_BUDGET = 900.0  # seconds of uninterrupted 429s a message-list page rides out


class _ClientCore:
    """What both clients share: request building, response checking, export references."""

    _transport: SyncTransport | AsyncTransport
    #: where ``config`` came from, named by every API error (the hook sets ``"connection '<id>'"``)
    source: str = ""

    def __init__(self, config: ClientConfig, dialect: Dialect | None) -> None:
        self.config = config
        self.dialect = dialect or make_dialect(config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.config.base_url!r}, vendor={self.dialect.name!r})"

    @property
    def auth(self) -> AuthFlow:
        """The vendor's auth flow of this client (set ``on_secret`` to mask keys it derives later)."""
        return self._transport.auth

    @property
    def caps(self) -> Capabilities:
        """What the vendor's export lifecycle offers."""
        return self.dialect.caps

    def _checked(self, request: ApiRequest, response: RawResponse) -> Any:
        if response.status_code < 300:
            return response.body
        if response.status_code in request.ok_statuses:
            error = self.dialect.unexpected_answer(request, response)
            if error is None:
                return response.body
        else:
            error = self.dialect.error_for(
                request.endpoint, response.status_code, response.headers, response.body, response.text
            )
        url = self.config.base_url + request.path  # no query: the request line as a reader can act on it
        hint = self.dialect.status_help(response.status_code)
        raise self._scrubbed(error.locate(self.source, request.method, url, hint))

    def _scrubbed(self, error: ApiError) -> ApiError:
        return self._transport.scrubbed(error)

    def _prepared(self, request: ExportRequest) -> ApiRequest:
        self.dialect.check(request)
        return self.dialect.submit_export(request)

    def _ref(self, job_id: str, request: ExportRequest) -> str:
        """The provider's export id: the job id, plus the window when rows must be cut to it."""
        window = None if self.caps.exact_bounds else request.window
        return str(ExportRef(job_id, window))

    @staticmethod
    def _job_id(export_id: str) -> str:
        return ExportRef.parse(export_id).job_id

    def _needs(self, what: str, available: bool) -> None:
        if not available:
            raise NotImplementedError(f"vendor {self.dialect.name!r} has no {what}")

    @staticmethod
    def _page_size(value: int, param: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{param}: must be a positive integer, e.g. 50")
        return value

    def _walk(
        self,
        channel: str | None,
        start: datetime | str,
        end: datetime | str,
        status: str | None,
        page_size: int | None,
        first_page: int,
    ) -> HistoryWalk:
        start_dt, end_dt = parse_aware(start, "start"), parse_aware(end, "end")
        if page_size is None:
            page_size = message_list_of(self.dialect).max_page_size
        connection = f"{self.dialect.name} {self.config.base_url}"
        return HistoryWalk(self.dialect, channel, start_dt, end_dt, status, page_size, first_page, connection)

    def _not_found(self, export_id: str) -> NotFoundError:
        return NotFoundError(None, f"export {export_id!r} is not in the account's export list", "get_export")


class _ListEnd:
    """Tells when a scan of the export list has read its last page."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self._previous: list[str] | None = None

    def is_last(self, jobs: list[ExportJob]) -> bool:
        """A short page, or the same page twice (a server that ignores ``page``)."""
        ids = [job.export_id for job in jobs]
        repeated = ids and ids == self._previous
        if repeated:
            log.warning("The export list served the same page twice; the server may ignore 'page'")
        self._previous = ids
        return len(jobs) < self.page_size or bool(repeated)


class _Paging:
    """What a walk does between its page calls (no I/O): a page refused with 429 even after the transport's
    retries is asked again once the server's wait is over (paging is idempotent; the key's pacer holds every
    client that long, capped), until the refusals have lasted ``HISTORY_STORM_BUDGET`` seconds; a page size
    the server refuses is asked again smaller."""

    def __init__(self, walk: HistoryWalk, pacer: Pacer) -> None:
        self.walk = walk
        self.pacer = pacer
        self.done = False
        self._storm_since: float | None = None

    def again(self, error: ApiError) -> bool:
        """Whether to ask for the page again after ``error`` (else the walk fails with it)."""
        if isinstance(error, RateLimitedError):
            now = time.monotonic()
            self._storm_since = self._storm_since if self._storm_since is not None else now
            if now - self._storm_since > HISTORY_STORM_BUDGET:
                return False
            wait = error.retry_after if error.retry_after and error.retry_after > 0 else 1.0
            log.warning("%s: rate limited; asking again in %.1f s", error.endpoint, wait)
            self.pacer.hold(wait)  # the next send waits it out
            return True
        return isinstance(error, ApiValidationError) and self.walk.refused(error)

    def page(self, body: Any) -> HistoryPage:
        """The page a call answered (the walk is done after its last)."""
        self._storm_since = None
        page = self.walk.absorb(body)
        self.done = page.last
        return page


class _FindState:
    """Bookkeeping of one scan of the export list for one or many exports, each from its own page hint.

    Per export: forward from the hint up to the end of the list (the list is newest first, so an export
    only moves to later pages), then the pages before the hint (exports were deleted). Every page is read at
    most once and pages no export needs are skipped: exports waited for together cost one read of each page
    they sit on, not one per export. The async scan reads several pages at once (:meth:`next_pages`): the
    pages the exports are hinted on, and, while exports are being searched for past their hint, a few
    pages ahead (doubling per batch, so a search reads at most about twice the pages it needed).
    """

    def __init__(self, hints: Mapping[str, int], page_size: int) -> None:
        self.hints = {str(export_id): max(int(hint), 0) for export_id, hint in hints.items()}
        # Next forward page per export still looked for; exports past the end go to ``backward``.
        self.forward = dict(self.hints)
        self.backward: set[str] = set()
        self.found: dict[str, tuple[ExportJob | None, int]] = {}
        self.read: set[int] = set()
        self.end: int | None = None  # number of pages in the list, once a short page showed it
        self._end = _ListEnd(page_size)
        self._ahead = 1  # pages read ahead of a search's frontier in the next batch

    def next_page(self) -> int | None:
        """The next page to read, or ``None`` when the scan is over."""
        if len(self.read) >= MAX_LIST_PAGES:
            return None
        if self.forward:
            return min(self.forward.values())
        unread = [
            page
            for export_id in self.backward
            for page in range(min(self.hints[export_id], self.end or MAX_LIST_PAGES))
            if page not in self.read
        ]
        return min(unread) if unread else None

    def next_pages(self, at_most: int) -> list[int]:
        """The next pages to read together (at most ``at_most``), or ``[]`` when the scan is over."""
        left = MAX_LIST_PAGES - len(self.read)
        if left <= 0:
            return []
        if not self.forward:
            page = self.next_page()
            return [] if page is None else [page]
        pages = set(self.forward.values())
        searching = [page for export_id, page in self.forward.items() if page > self.hints[export_id]]
        if searching:  # exports moved past their hint: read ahead of the furthest search
            frontier = max(searching)
            limit = frontier + self._ahead if self.end is None else min(frontier + self._ahead, self.end)
            pages.update(page for page in range(frontier + 1, limit) if page not in self.read)
            self._ahead = min(self._ahead * 2, at_most)
        return sorted(pages)[: min(at_most, left)]

    def absorb(self, page: int, jobs: list[ExportJob]) -> None:
        """Take in one page read."""
        self.read.add(page)
        for job in jobs:
            if job.export_id in self.forward or job.export_id in self.backward:
                self.found[job.export_id] = (job, page)
                self.forward.pop(job.export_id, None)
                self.backward.discard(job.export_id)
        if self._end.is_last(jobs):
            self.end = page + 1 if self.end is None else min(self.end, page + 1)
        for export_id, next_page in list(self.forward.items()):
            while next_page in self.read:  # every export still looked for was looked for on a read page
                next_page += 1
            self.forward[export_id] = next_page
            if self.end is not None and next_page >= self.end:
                del self.forward[export_id]
                self.backward.add(export_id)

    def results(self) -> dict[str, tuple[ExportJob | None, int]]:
        """Every export asked for: its job and page, or ``(None, 0)`` when the list does not hold it."""
        return {export_id: self.found.get(export_id, (None, 0)) for export_id in self.hints}


class ExportClient(_ClientCore, AbstractContextManager["ExportClient"]):
    """Synchronous client of a CPaaS export API.

    Export ids taken and returned are the provider's (:class:`ExportRef`): the vendor's job id, plus the
    window when the vendor's bounds cannot say it exactly.

    :param config: where and how to connect.
    :param dialect: vendor dialect (default: ``config.vendor``'s, built with ``config``).
    :param policy: retry policy (default: from ``config``).
    :param sleep: wait function between retries (tests pass a recorder).
    :param clock: monotonic clock bounding the total retry time (tests pair it with ``sleep``).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        dialect: Dialect | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(config, dialect)
        extra = {k: v for k, v in (("sleep", sleep), ("clock", clock)) if v is not None}
        self._transport = SyncTransport(config, self.dialect, policy=policy, **extra)

    def _call(self, request: ApiRequest) -> Any:
        try:
            response = self._transport.send(request)
        except ApiConnectionError as error:
            error.locate(self.source)  # which connection's host did not answer
            raise
        return self._checked(request, response)

    # --- submissions ----------------------------------------------------------------------------------
    def submit_export(self, request: ExportRequest) -> str:
        """Create an export (checked against the vendor's rules first); returns the provider's export id."""
        job_id = self.dialect.parse_export_id(self._call(self._prepared(request)))
        log.debug("Submitted %s export %s", request.kind.value, job_id)  # the operator logs it once
        return self._ref(job_id, request)

    def submit_message_history_export(
        self,
        start: datetime | str,
        end: datetime | str,
        sender: str | None = None,
        recipient: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> str:
        """Export the message history of the half-open window ``[start, end)``, optionally filtered."""
        return self.submit_export(
            ExportRequest.build(
                ExportKind.MESSAGE_HISTORY, start, end, sender=sender, recipient=recipient, filters=filters
            )
        )

    def submit_contacts_export(self, list_ids: Any = None, contact_ids: Any = None) -> str:
        """Export contacts of ``list_ids``, or ``contact_ids``, or (neither) every contact."""
        return self.submit_export(
            ExportRequest.build(ExportKind.CONTACTS, list_ids=list_ids, contact_ids=contact_ids)
        )

    def submit_delivery_reports_export(
        self,
        campaign_id: str | int | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> str:
        """Export delivery reports of a campaign or of the half-open window ``[start, end)``."""
        return self.submit_export(
            ExportRequest.build(ExportKind.DELIVERY_REPORTS, start, end, campaign_id=campaign_id)
        )

    # --- tracking: export list ------------------------------------------------------------------------
    def list_exports(self, page: int = 0, limit: int | None = None) -> list[ExportJob]:
        """One page (0-based) of the account's exports, newest first."""
        if limit is not None:
            self._page_size(limit, "limit")
        return self.dialect.parse_export_list(self._call(self.dialect.list_exports(page, limit)))

    def iter_exports(self, page_size: int = 50) -> Iterator[ExportJob]:
        """Every export, page by page (lazy; stops at the first short page)."""
        self._page_size(page_size, "page_size")
        return self._iter_exports(page_size)

    def _iter_exports(self, page_size: int) -> Iterator[ExportJob]:
        end = _ListEnd(page_size)
        for page in range(MAX_LIST_PAGES):
            jobs = self.list_exports(page, page_size)
            yield from jobs
            if end.is_last(jobs):
                return

    def find_export(
        self, export_id: str, start_page: int = 0, page_size: int = 50
    ) -> tuple[ExportJob | None, int]:
        """Find one export in the list, starting at the hint ``start_page - 1``.

        Returns the job and the page it was on (pass it back next time), or ``(None, 0)``. The list is
        newest first, so an export only moves to later pages; the pages before the hint are read only
        when the forward scan misses (exports were deleted).
        """
        self._page_size(page_size, "page_size")
        job_id = self._job_id(export_id)
        state = _FindState({job_id: max(int(start_page) - 1, 0)}, page_size)
        while (page := state.next_page()) is not None:
            state.absorb(page, self.list_exports(page, page_size))
        return state.results()[job_id]

    # --- tracking: either way -------------------------------------------------------------------------
    def get_export(self, export_id: str) -> ExportJob:
        """The export's current state; ``NotFoundError`` when the server does not know it."""
        job_id = self._job_id(export_id)
        if self.caps.tracking == "job":
            return self.dialect.parse_export(job_id, self._call(self.dialect.get_export(job_id)))
        job, _ = self.find_export(job_id)
        if job is None:
            raise self._not_found(job_id)
        return job

    def look(self, export_id: str, page_hint: int, page_size: int) -> tuple[ExportJob | None, int]:
        """One look of a wait: the job (``None``: the vendor does not know it) and its list page.

        List-tracked vendors find it from ``page_hint`` (the page it was last seen on); job-tracked ones
        cost one status request.
        """
        self._needs("export status to poll", self.caps.tracking != "none")
        if self.caps.tracking == "list":
            return self.find_export(export_id, start_page=page_hint + 1, page_size=page_size)
        try:
            return self.get_export(export_id), 0
        except NotFoundError:
            return None, 0

    # --- delivery -------------------------------------------------------------------------------------
    def get_download_link(self, export_id: str) -> DownloadLink:
        """The export's one download URL (``ExportExpiredError`` when expired or not ready)."""
        self._needs("download-link call", self.caps.delivery == "links" and not self.caps.links_in_job)
        job_id = self._job_id(export_id)
        return self.dialect.parse_download_link(job_id, self._call(self.dialect.download_link(job_id)))

    def regenerate_download_link(self, export_id: str) -> None:
        """Re-create an expired download (poll the export again afterwards)."""
        self._needs("regenerate call", self.caps.regenerate)
        self._call(self.dialect.regenerate_download_link(self._job_id(export_id)))

    def open_download(self, url: str, offset: int = 0) -> AbstractContextManager[DownloadResponse]:
        """Stream a download URL (credentials only on the API's own origin; ``Range`` from ``offset``)."""
        return self._transport.open_download(url, offset)

    # --- cancel ---------------------------------------------------------------------------------------
    def cancel_export(self, export_id: str) -> None:
        """Cancel a running export (an export already gone is not an error)."""
        self._needs("cancel call", self.caps.cancel)
        try:
            self._call(self.dialect.cancel_export(self._job_id(export_id)))
        except NotFoundError:
            log.info("Export %s is already gone; nothing to cancel", export_id)

    # --- message history ------------------------------------------------------------------------------
    def iter_history_pages(
        self,
        channel: str | None,
        start: datetime | str,
        end: datetime | str,
        status: str | None = None,
        page_size: int | None = None,
        first_page: int = 0,
    ) -> Iterator[HistoryPage]:
        """The pages of one channel's messages sent in the half-open window ``[start, end)``, exactly.

        Validated now (``ValueError``), fetched lazily. Records outside the window are dropped and every
        record carries ``channel``.

        :param page_size: records per page (default: the largest the vendor serves).
        :param first_page: the page to start from (a resumed series).
        """
        walk = self._walk(channel, start, end, status, page_size, first_page)
        return self._walk_pages(walk)

    def _walk_pages(self, walk: HistoryWalk) -> Iterator[HistoryPage]:
        paging = _Paging(walk, self._transport.pacer)
        while not paging.done:
            try:
                body = self._call(walk.request())
            except ApiError as error:
                if paging.again(error):
                    continue
                raise
            yield paging.page(body)

    # --- misc -----------------------------------------------------------------------------------------
    def check_connection(self) -> None:
        """One cheap authenticated call whose answer must be the API's; raises ``AuthenticationError``,
        ``UnexpectedResponseError`` (another server answered) etc. on failure."""
        self.dialect.parse_connection_check(self._call(self.dialect.check_connection()))

    def close(self) -> None:
        """Release pooled connections."""
        self._transport.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncExportClient(_ClientCore, AbstractAsyncContextManager["AsyncExportClient"]):
    """Asynchronous client (for triggers): the same calls as :class:`ExportClient`, awaited.

    :param config: where and how to connect.
    :param dialect: vendor dialect (default: ``config.vendor``'s, built with ``config``).
    :param policy: retry policy (default: from ``config``).
    :param sleep: async wait function between retries (tests pass a recorder).
    :param clock: monotonic clock bounding the total retry time (tests pair it with ``sleep``).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        dialect: Dialect | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(config, dialect)
        extra = {k: v for k, v in (("sleep", sleep), ("clock", clock)) if v is not None}
        self._transport = AsyncTransport(config, self.dialect, policy=policy, **extra)

    async def _call(self, request: ApiRequest) -> Any:
        try:
            response = await self._transport.send(request)
        except ApiConnectionError as error:
            error.locate(self.source)
            raise
        return self._checked(request, response)

    async def list_exports(self, page: int = 0, limit: int | None = None) -> list[ExportJob]:
        """One page (0-based) of the account's exports, newest first."""
        if limit is not None:
            self._page_size(limit, "limit")
        return self.dialect.parse_export_list(await self._call(self.dialect.list_exports(page, limit)))

    async def find_export(
        self, export_id: str, start_page: int = 0, page_size: int = 50
    ) -> tuple[ExportJob | None, int]:
        """Async :meth:`ExportClient.find_export`."""
        job_id = self._job_id(export_id)
        found = await self.find_exports({job_id: max(int(start_page) - 1, 0)}, page_size)
        return found[job_id]

    async def find_exports(
        self, hints: Mapping[str, int], page_size: int = 50
    ) -> dict[str, tuple[ExportJob | None, int]]:
        """Find many exports with one scan: each page read at most once, whoever needs it.

        :param hints: job id -> the page to look on first (where it was last seen, or 0). As with
            :meth:`find_export`, each export is looked for forward from its hint, then before it.
        :param page_size: list page size.
        :returns: every id of ``hints`` -> its job and page, or ``(None, 0)`` when the list lacks it.
        """
        self._page_size(page_size, "page_size")
        state = _FindState(hints, page_size)
        while pages := state.next_pages(LIST_READS_AT_ONCE):
            reads = [asyncio.ensure_future(self.list_exports(page, page_size)) for page in pages]
            try:
                lists = await asyncio.gather(*reads)
            except BaseException:
                for read in reads:  # one page failed (or the scan was cancelled): the others go too
                    read.cancel()
                await asyncio.gather(*reads, return_exceptions=True)
                raise
            for page, jobs in zip(pages, lists, strict=True):  # in page order: the list's end seen in order
                state.absorb(page, jobs)
        return state.results()

    async def get_export(self, export_id: str) -> ExportJob:
        """Async :meth:`ExportClient.get_export`."""
        job_id = self._job_id(export_id)
        if self.caps.tracking == "job":
            return self.dialect.parse_export(job_id, await self._call(self.dialect.get_export(job_id)))
        job, _ = await self.find_export(job_id)
        if job is None:
            raise self._not_found(job_id)
        return job

    async def look(self, export_id: str, page_hint: int, page_size: int) -> tuple[ExportJob | None, int]:
        """Async :meth:`ExportClient.look`."""
        self._needs("export status to poll", self.caps.tracking != "none")
        if self.caps.tracking == "list":
            return await self.find_export(export_id, start_page=page_hint + 1, page_size=page_size)
        try:
            return await self.get_export(export_id), 0
        except NotFoundError:
            return None, 0

    async def regenerate_download_link(self, export_id: str) -> None:
        """Async :meth:`ExportClient.regenerate_download_link`."""
        self._needs("regenerate call", self.caps.regenerate)
        await self._call(self.dialect.regenerate_download_link(self._job_id(export_id)))

    async def cancel_export(self, export_id: str) -> None:
        """Async :meth:`ExportClient.cancel_export`."""
        self._needs("cancel call", self.caps.cancel)
        try:
            await self._call(self.dialect.cancel_export(self._job_id(export_id)))
        except NotFoundError:
            log.info("Export %s is already gone; nothing to cancel", export_id)

    def iter_history_pages(
        self,
        channel: str | None,
        start: datetime | str,
        end: datetime | str,
        status: str | None = None,
        page_size: int | None = None,
        first_page: int = 0,
    ) -> AsyncIterator[HistoryPage]:
        """Async :meth:`ExportClient.iter_history_pages` (validated now, fetched lazily)."""
        walk = self._walk(channel, start, end, status, page_size, first_page)
        return self._walk_pages(walk)

    async def _walk_pages(self, walk: HistoryWalk) -> AsyncIterator[HistoryPage]:
        paging = _Paging(walk, self._transport.pacer)
        while not paging.done:
            try:
                body = await self._call(walk.request())
            except ApiError as error:
                if paging.again(error):
                    continue
                raise
            yield paging.page(body)

    async def check_connection(self) -> None:
        """Async :meth:`ExportClient.check_connection`."""
        self.dialect.parse_connection_check(await self._call(self.dialect.check_connection()))

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran (a closed client cannot send)."""
        return self._transport.closed

    async def aclose(self) -> None:
        """Release the HTTP client."""
        await self._transport.aclose()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
