"""Paging a vendor's message list over one exact window: the bookkeeping both clients share (sans-IO).

The window is half-open ``[start, end)``; the dialect turns it into the bounds its list takes and says which
page is the last. Rows the server sends outside the window (by their send time, where they carry one) are
dropped, so consecutive windows give every message once even from a server with looser bounds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_msghistory.client.dialects.base import Dialect, MessageListSpec
from airflow_provider_msghistory.client.errors import ApiValidationError, UnexpectedResponseError
from airflow_provider_msghistory.client.wire import ApiRequest

log = logging.getLogger(__name__)

#: a series longer than this is a server that never serves a short page (raise; never stop silently)
MAX_HISTORY_PAGES = 100_000
#: record ids remembered per series to drop a record served twice (8-byte digests in a dict, about 100 MB
#: at most); past it the oldest are forgotten: repeats of offset paging sit on neighbouring pages
MAX_TRACKED_IDS = 1_000_000
#: a series serving more than this many times the records the server says its list holds (plus a page)
#: does not end: raise instead of paging on to the page guard
TOTAL_SLACK = 2
#: times a series may start over from page 0 (a server that changed its page size mid-series)
MAX_RESTARTS = 3
#: page sizes a server refused with a 400, per connection (vendor and base URL): later walks ask at most
#: the size that was accepted
_PAGE_SIZE_CAPS: dict[str, int] = {}


@dataclass(frozen=True)
class HistoryPage:
    """One page of one channel's series.

    :param channel: the channel asked for (``None`` for a vendor whose list takes none).
    :param page: the page's number (0-based).
    :param messages: the records inside the window, each carrying ``channel``.
    :param served: records the server sent (before dropping those outside the window).
    :param last: no page follows.
    :param duplicates: records left out as already served in this series (same id).
    """

    channel: str | None
    page: int
    messages: list[dict[str, Any]]
    served: int
    last: bool
    duplicates: int = 0


def message_list_of(dialect: Dialect) -> MessageListSpec:
    """The dialect's message list, or ``ValueError`` saying the vendor has none."""
    if dialect.message_list is None:
        raise ValueError(
            f"vendor: {dialect.name!r} has no paged message list; use its export "
            "(MsgHistoryExportOperator) instead"
        )
    return dialect.message_list


class HistoryWalk:
    """The pages of one channel in one window, from ``first_page`` until the dialect's last-page rule.

    :param dialect: the vendor dialect.
    :param channel: one of the vendor's channels (``None`` when its list takes none).
    :param start: aware window start (included).
    :param end: aware window end (excluded).
    :param status: optional status filter.
    :param page_size: records per page (1 .. the vendor's maximum).
    :param first_page: where to start (a resumed series).
    :param connection: names the connection (vendor and base URL) whose refused page sizes are remembered.
    :raises ValueError: bad channel, status, page size or window, before any request.
    """

    def __init__(
        self,
        dialect: Dialect,
        channel: str | None,
        start: datetime,
        end: datetime,
        status: str | None,
        page_size: int,
        first_page: int = 0,
        connection: str = "",
    ) -> None:
        spec = message_list_of(dialect)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size: must be a positive integer, e.g. {spec.max_page_size}")
        if page_size > spec.max_page_size:
            raise ValueError(
                f"page_size: {page_size} is more than {dialect.name} serves ({spec.max_page_size}); "
                f"pass at most {spec.max_page_size}"
            )
        self.dialect = dialect
        self.channel = channel
        self.start, self.end = start, end
        self.bounds = dialect.history_bounds(start, end)
        self.status = status
        self.connection = connection
        self.page_size = min(page_size, _PAGE_SIZE_CAPS.get(connection, page_size))
        self.page = first_page
        self.total: int | None = None  # records the list holds, where the server says
        self.served = 0  # records served in this series
        self.distinct = 0  # of which served for the first time (by id)
        self.restarts = 0
        self._seen: dict[int, None] = {}
        self._previous: str | None = None
        # Records per page the server really serves: unknown until a full page shows it honours
        # page_size, or a probe shows it clamps it (Qlara publishes no maximum).
        self._stride: int | None = None
        self._probe: int | None = None
        self.request()  # the dialect validates channel and status now

    def request(self) -> ApiRequest:
        """The request of the current page."""
        cap = _PAGE_SIZE_CAPS.get(self.connection, self.page_size)
        if cap < self.page_size and self.page == 0 and self._stride is None:
            self.page_size = cap  # another walk of this connection learnt the server's cap meanwhile
        first, last = self.bounds
        return self.dialect.message_history(
            self.channel,  # type: ignore[arg-type]  # None only for lists without channels
            first,
            last,
            self.status,
            self.page,
            self.page_size,
        )

    def absorb(self, body: Any) -> HistoryPage:
        """Take in the current page's body; returns the page and moves on to the next one."""
        served = self.dialect.parse_history(body)
        total = self.dialect.history_total(body)
        self.total = total if total is not None else self.total
        self.served += len(served)
        fresh = [m for m in served if self._first_time(m)]
        self.distinct += len(fresh)
        last = self._is_last(served)
        if not last:
            fingerprint = _fingerprint(served)
            if fingerprint == self._previous:
                raise self._endless(
                    f"page {self.page} repeats page {self.page - 1}: the server seems to ignore 'page'"
                )
            self._previous = fingerprint
            if self.page + 1 >= MAX_HISTORY_PAGES:
                raise self._endless(f"no last page after {MAX_HISTORY_PAGES} pages")
            if self.total is not None and self.served > TOTAL_SLACK * self.total + self.page_size:
                raise self._endless(
                    f"the server says its list holds {self.total:,} records, but served {self.served:,} "
                    f"by page {self.page} without a last page"
                )
        kept = [self._with_channel(m) for m in fresh if self._inside(m)]
        if len(kept) < len(fresh):
            log.info(
                "Dropped %d record(s) of channel %s page %d sent outside the window",
                len(fresh) - len(kept),
                self.channel,
                self.page,
            )
        page = HistoryPage(self.channel, self.page, kept, len(served), last, len(served) - len(fresh))
        if page.duplicates:
            log.warning(
                "Dropped %d record(s) of channel %s page %d already served in this series (the list moved "
                "under offset paging, or pages overlap)",
                page.duplicates,
                self.channel,
                self.page,
            )
        self.page += 1
        return page

    def refused(self, error: BaseException) -> bool:
        """Whether a refusal of the current page was about its size; if so, the next request asks a
        smaller one (the size the server names, else half), remembered for the connection.

        Qlara publishes no maximum page size: a server answering 400 above its own cap must not fail
        every load.
        """
        param = message_list_of(self.dialect).page_size_param
        if not isinstance(error, ApiValidationError) or error.status_code != 400 or self.page_size <= 1:
            return False
        text = error.message.lower()
        if not re.search(rf"\b{re.escape(param.lower())}\b", text):
            return False
        named = [n for n in map(int, re.findall(r"\d{1,9}", text)) if 1 <= n < self.page_size]
        size = max(named) if named else self.page_size // 2
        log.warning(
            "The server refused %s=%d (%s); asking %d per page from now on for this connection",
            param,
            self.page_size,
            error.message[:200],
            size,
        )
        position = self.page * (self._stride or self.page_size)  # records before the current page
        self.page = position // size if position % size == 0 else self._restart()
        self.page_size = size
        self._stride = self._probe = self._previous = None
        _PAGE_SIZE_CAPS[self.connection] = size
        return True

    def _restart(self) -> int:
        """Page 0 again (records already taken are dropped as repeats); bounded."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise self._endless(f"the server changed its page size {self.restarts} times")
        self._previous = None
        return 0

    def _endless(self, why: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(None, f"channel {self.channel}: {why}", "message_history")

    def _is_last(self, served: list[dict[str, Any]]) -> bool:
        """The dialect's last-page rule, made safe against a server that serves fewer than ``page_size``.

        A short page may be the last page or a clamped one (which the last-page rule would take for the
        end, silently losing the rest). Where the server says how many records its list holds and they
        were all served, it is the end; otherwise the next page tells: empty, it was the end; not empty,
        the server serves that many per page. Before any full page, it pages by that size (the stride from
        now); after full pages, it changed size mid-series, so the series starts over at page 0 (records
        already taken are dropped as repeats).
        """
        if self._probe is not None:
            if not served:
                return True
            log.warning(
                "The server serves at most %d records per page of channel %s (asked %d); paging with that",
                self._probe,
                self.channel,
                self.page_size,
            )
            if self._stride is not None:  # its pages shifted under us: read the series again
                self.page = self._restart() - 1  # absorb() moves on to page 0
            self._stride, self._probe = self._probe, None
        stride = self._stride or self.page_size
        if not self.dialect.is_last_history_page(served, stride):
            self._stride = stride
            return False
        if served and not (self.total is not None and self.distinct >= self.total):
            self._probe = len(served)
            return False
        return True

    def _first_time(self, message: Mapping[str, Any]) -> bool:
        """False for a record whose id was already served in this series (records without one pass)."""
        for key in message_list_of(self.dialect).id_fields:
            value = message.get(key)
            if value not in (None, ""):
                text = json.dumps([key, value], sort_keys=True, default=str)
                digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
                if digest in self._seen:
                    return False
                self._seen[digest] = None
                if len(self._seen) > MAX_TRACKED_IDS:
                    del self._seen[next(iter(self._seen))]
                return True
        return True

    def _inside(self, message: Mapping[str, Any]) -> bool:
        sent = self.dialect.message_time(message)
        return sent is None or self.start <= sent < self.end

    def _with_channel(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.channel is not None and message.get("channel") in (None, ""):
            message["channel"] = self.channel
        return message


def _fingerprint(messages: list[dict[str, Any]]) -> str:
    text = json.dumps(messages, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
