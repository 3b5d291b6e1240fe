"""Paging a vendor's message list over one exact window: the bookkeeping both clients share (sans-IO).

The window is half-open ``[start, end)``; the dialect turns it into the bounds its list takes and says which
page is the last. Rows the server sends outside the window (by their send time, where they carry one) are
dropped, so consecutive windows give every message once even from a server with looser bounds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_msghistory.client.dialects.base import Dialect, MessageListSpec
from airflow_provider_msghistory.client.errors import UnexpectedResponseError
from airflow_provider_msghistory.client.wire import ApiRequest

log = logging.getLogger(__name__)

#: a series longer than this is a server that never serves a short page (raise; never stop silently)
MAX_HISTORY_PAGES = 100_000


@dataclass(frozen=True)
class HistoryPage:
    """One page of one channel's series.

    :param channel: the channel asked for (``None`` for a vendor whose list takes none).
    :param page: the page's number (0-based).
    :param messages: the records inside the window, each carrying ``channel``.
    :param served: records the server sent (before dropping those outside the window).
    :param last: no page follows.
    """

    channel: str | None
    page: int
    messages: list[dict[str, Any]]
    served: int
    last: bool


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
        self.page_size = page_size
        self.page = first_page
        self._previous: str | None = None
        # Records per page the server really serves: unknown until a full page shows it honours
        # page_size, or a probe shows it clamps it (Qlara publishes no maximum).
        self._stride: int | None = None
        self._probe: int | None = None
        self.request()  # the dialect validates channel and status now

    def request(self) -> ApiRequest:
        """The request of the current page."""
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
        last = self._is_last(served)
        if not last:
            fingerprint = _fingerprint(served)
            if fingerprint == self._previous:
                raise UnexpectedResponseError(
                    None,
                    f"page {self.page} of channel {self.channel} repeats page {self.page - 1}: the server "
                    "seems to ignore 'page'",
                    "message_history",
                )
            self._previous = fingerprint
            if self.page + 1 >= MAX_HISTORY_PAGES:
                raise UnexpectedResponseError(
                    None,
                    f"no last page after {MAX_HISTORY_PAGES} pages of channel {self.channel}",
                    "message_history",
                )
        kept = [self._with_channel(m) for m in served if self._inside(m)]
        if len(kept) < len(served):
            log.info(
                "Dropped %d record(s) of channel %s page %d sent outside the window",
                len(served) - len(kept),
                self.channel,
                self.page,
            )
        page = HistoryPage(self.channel, self.page, kept, len(served), last)
        self.page += 1
        return page

    def _is_last(self, served: list[dict[str, Any]]) -> bool:
        """The dialect's last-page rule, made safe against a server that clamps ``page_size``.

        A short page before any full one may be the last page or a clamped one (which the last-page rule
        would take for the end, silently losing the rest). The next page tells: empty, it was the end;
        not empty, the server serves that many per page (and pages by it), so that is the stride from now.
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
            self._stride, self._probe = self._probe, None
        stride = self._stride or self.page_size
        if not self.dialect.is_last_history_page(served, stride):
            self._stride = stride
            return False
        if self._stride is None and served:
            self._probe = len(served)
            return False
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
