"""The dialect seam: everything vendor-specific about requests and responses lives behind ``Dialect``.

A dialect is sans-IO: it builds :class:`ApiRequest` objects and parses decoded JSON bodies. The
transports, the clients, the hook, operators and trigger never look at a vendor's field names.

How the planned vendors fit: 8x8 overrides :meth:`Dialect.auth_headers` (Bearer), reads its sub-account from
``ClientConfig.options``, returns a direct :meth:`Dialect.get_export` request (its job poll) and takes the
download URL from that same poll; Messangi sets ``supports_download = False`` (reports are e-mailed). An
endpoint a vendor lacks raises ``NotImplementedError`` with a sentence saying so from its request builder.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.errors import (
    ApiError,
    ApiValidationError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)
from airflow_provider_msghistory.client.models import DownloadLink, ExportJob, ExportRequest, ExportStatus
from airflow_provider_msghistory.client.pacing import RateLimit
from airflow_provider_msghistory.client.retry import retry_after_seconds

_MS = timedelta(milliseconds=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request to the API, relative to the base URL.

    :param endpoint: logical name used in errors and logs (e.g. ``"list_exports"``).
    :param method: HTTP method.
    :param path: path under the base URL, starting with ``/``.
    :param params: query parameters.
    :param json: JSON body.
    :param creates_export: True for submissions: retried only when the server certainly did not act.
    """

    endpoint: str
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    creates_export: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def idempotent(self) -> bool:
        return not self.creates_export


@dataclass(frozen=True)
class MessageListSpec:
    """What a vendor's paged message list offers (``Dialect.message_list``; ``None``: it has none).

    :param channels: every channel the vendor has, one request series each; ``()`` when the list takes no
        channel (the series then runs once with ``channel=None``).
    :param statuses: the status filters it accepts.
    :param max_page_size: the largest page it serves (the default page size).
    :param fields: the record fields its docs name, in the order a CSV lists them first.
    :param time_fields: fields that may hold a record's send time, for keeping rows inside the window.
    """

    channels: tuple[str, ...]
    statuses: tuple[str, ...]
    max_page_size: int
    fields: tuple[str, ...] = ()
    time_fields: tuple[str, ...] = ()


class Dialect(ABC):
    """How one vendor's API is spoken. Subclasses register in ``dialects.__init__``."""

    name: ClassVar[str]
    #: the vendor has a download link for an export (Messangi e-mails its reports instead)
    supports_download: ClassVar[bool] = True
    #: the vendor's published request limits per API key (empty: none known, no client-side pacing)
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    #: the paged message list, or ``None`` when the vendor has none
    message_list: ClassVar[MessageListSpec | None] = None

    # --- authentication -------------------------------------------------------------------------------
    @abstractmethod
    def auth_headers(self, config: ClientConfig) -> dict[str, str]:
        """Headers that authenticate a request to the API base URL's host (and nowhere else)."""

    # --- requests -------------------------------------------------------------------------------------
    @abstractmethod
    def submit_export(self, request: ExportRequest) -> ApiRequest:
        """The request that creates ``request``'s export."""

    @abstractmethod
    def list_exports(self, page: int, limit: int | None) -> ApiRequest:
        """One page of the account's exports, newest first (``limit=None``: the server's default)."""

    def get_export(self, export_id: str) -> ApiRequest | None:
        """A direct status lookup, or ``None`` when the vendor only offers the list (clients then page it)."""
        return None

    @abstractmethod
    def download_link(self, export_id: str) -> ApiRequest:
        """The request that returns the export's download URL."""

    @abstractmethod
    def regenerate_download_link(self, export_id: str) -> ApiRequest:
        """The request that re-creates an expired download."""

    @abstractmethod
    def message_history(
        self, channel: str, start: datetime, end: datetime, status: str | None, page: int, limit: int
    ) -> ApiRequest:
        """One page of the message history between the bounds :meth:`history_bounds` gave (validates
        channel and status, raising ``ValueError``)."""

    def history_bounds(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The list's bounds covering the half-open window ``[start, end)``.

        Default: inclusive bounds at millisecond precision, ``start`` and ``end - 1 ms`` (both rounded up to
        the millisecond first), so consecutive windows neither overlap nor leave a gap. ``ValueError`` for
        an empty window.
        """
        first, stop = _ceil_ms(start), _ceil_ms(end)
        if first >= stop:
            raise ValueError(f"end: {end.isoformat()} is not after start {start.isoformat()}")
        return first, stop - _MS

    def is_last_history_page(self, messages: list[dict[str, Any]], limit: int) -> bool:
        """Whether a page of the list is its last one (default: fewer messages than asked for)."""
        return len(messages) < limit

    def message_time(self, message: Mapping[str, Any]) -> datetime | None:
        """A record's send time from the spec's ``time_fields``, or ``None`` when it has no readable one."""
        spec = self.message_list
        for key in spec.time_fields if spec is not None else ():
            value = message.get(key)
            if isinstance(value, str) and value.strip():
                text = value.strip()
                text = text[:-1] + "+00:00" if text[-1:] in "Zz" else text
                try:
                    parsed = datetime.fromisoformat(text)
                except ValueError:
                    return None
                return parsed if parsed.tzinfo is not None else None
        return None

    @abstractmethod
    def check_connection(self) -> ApiRequest:
        """The cheapest authenticated call."""

    # --- responses ------------------------------------------------------------------------------------
    @abstractmethod
    def parse_export_id(self, body: Any) -> str:
        """The export id from a submission's response."""

    @abstractmethod
    def parse_export_list(self, body: Any) -> list[ExportJob]:
        """The exports from one page of the list."""

    def parse_export(self, body: Any) -> ExportJob:
        """The export from a direct status lookup (only for dialects whose ``get_export`` returns one)."""
        raise NotImplementedError(f"{self.name} has no direct export lookup")

    @abstractmethod
    def parse_download_link(self, export_id: str, body: Any) -> DownloadLink:
        """The download link from the download-link response."""

    def parse_regenerate(self, export_id: str, body: Any) -> str:
        """The export id after a regeneration (the same one unless the vendor says otherwise)."""
        return export_id

    @abstractmethod
    def parse_history(self, body: Any) -> list[dict[str, Any]]:
        """The messages of one history page."""

    # --- errors ---------------------------------------------------------------------------------------
    def error_message(self, body: Any, text: str) -> str:
        """The server's message from an error body of any shape (or none)."""
        if isinstance(body, Mapping):
            for key in ("message", "error_description", "detail", "explain", "error", "title"):
                value = body.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
                if isinstance(value, Mapping):
                    return self.error_message(value, "")
        if isinstance(body, str) and body.strip():
            return body.strip()[:500]
        return text.strip()[:500] or "no message in the response"

    def error_for(
        self, endpoint: str, status: int, headers: Mapping[str, str], body: Any, text: str
    ) -> ApiError:
        """The typed error for an error response (dialects refine endpoint-specific meanings)."""
        message = self.error_message(body, text)
        if status in (401, 403):
            return AuthenticationError(status, message, endpoint)
        if status == 404:
            return NotFoundError(status, message, endpoint)
        if status == 429:
            return RateLimitedError(status, message, endpoint, retry_after_seconds(headers, body))
        if status >= 500:
            return ServerError(status, message, endpoint)
        return ApiValidationError(status, message, endpoint)


def _ceil_ms(value: datetime) -> datetime:
    """Round up to the next whole millisecond."""
    extra = value.microsecond % 1000
    return value + timedelta(microseconds=1000 - extra) if extra else value


def normalise_status(raw: object, mapping: Mapping[str, ExportStatus], context: str) -> ExportStatus:
    """Map a vendor status case-insensitively; an unknown one is logged and returned as UNKNOWN."""
    key = str(raw).strip().upper() if raw is not None else ""
    status = mapping.get(key)
    if status is None:
        log.warning("Unknown export status %r for %s; treating it as still in progress", raw, context)
        return ExportStatus.UNKNOWN
    return status


def first_present(body: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` whose value is not ``None``."""
    for key in keys:
        value = body.get(key)
        if value is not None:
            return value
    return None


def unwrap_list(body: Any, keys: tuple[str, ...], endpoint: str) -> list[Any]:
    """A bare JSON array, or the array an object wraps under one of ``keys``."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        for key in keys:
            value = body.get(key)
            if isinstance(value, list):
                return value
        if not body:
            return []
    raise UnexpectedResponseError(
        None, f"expected a JSON array or an object wrapping one in {'/'.join(keys)}", endpoint
    )
