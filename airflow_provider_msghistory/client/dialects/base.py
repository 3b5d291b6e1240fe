"""The dialect seam: everything vendor-specific about an export's lifecycle lives behind ``Dialect``.

A dialect is built with the connection's :class:`ClientConfig` (and validates its own options there), and
declares :class:`Capabilities`: how exports are tracked (one list read for many, one request per job, or
not at all), how they are delivered (links, e-mail), whether they can be regenerated or cancelled, the
longest window one export may span, and whether its bounds say ``[start, end)`` exactly or rows must be
filtered to it. It is sans-IO: it builds :class:`ApiRequest` objects and parses decoded JSON bodies, and it
owns its :class:`~airflow_provider_msghistory.client.auth.AuthFlow`. The clients, waiters, hook, operators
and trigger read capabilities, never a vendor's name or field names.

A new vendor is one module here plus one line in the registry (see docs/design.md's checklist).
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from airflow_provider_msghistory.client.auth import AuthFlow
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.datetimes import MS, ceil_to, parse_vendor_time
from airflow_provider_msghistory.client.errors import (
    ApiError,
    ApiValidationError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
)
from airflow_provider_msghistory.client.models import (
    DownloadLink,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from airflow_provider_msghistory.client.options import ConnectionOption
from airflow_provider_msghistory.client.pacing import RateLimit
from airflow_provider_msghistory.client.retry import retry_after_seconds
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capabilities:
    """What a vendor's export lifecycle looks like, as the vendor-neutral layers need to know it.

    :param tracking: ``"list"``: exports are found in one account-wide list (many waits share one read);
        ``"job"``: each export is polled by its id; ``"none"``: nothing to poll (e-mail delivery).
    :param delivery: ``"links"``: files are downloaded; ``"email"``: the vendor mails them.
    :param links_in_job: the job's status already lists its file URLs (else one call per export gets the
        single link).
    :param link_auth: download links on the API's own origin need the API's credentials (never sent to
        another origin); ``False``: links are pre-signed and get none.
    :param regenerate: an expired download can be re-created.
    :param cancel: a running export can be cancelled.
    :param max_window: the longest window one export may span (``None``: no cap).
    :param exact_bounds: the wire bounds can say ``[start, end)`` exactly; ``False``: a covering window is
        asked and rows are filtered to ``[start, end)`` by :attr:`Dialect.row_time_column`.
    :param kinds: the export kinds the vendor has.
    :param auth_forms: the credential forms the connection may hold, in words (for the docs' table).
    """

    tracking: Literal["list", "job", "none"]
    delivery: Literal["links", "email"] = "links"
    links_in_job: bool = False
    link_auth: bool = False
    regenerate: bool = False
    cancel: bool = False
    max_window: timedelta | None = None
    exact_bounds: bool = True
    kinds: frozenset[ExportKind] = frozenset(ExportKind)
    auth_forms: tuple[str, ...] = ("API key",)


@dataclass(frozen=True)
class MessageListSpec:
    """What a vendor's paged message list offers (``Dialect.message_list``; ``None``: it has none).

    :param channels: every channel the vendor has, one request series each; ``()`` when the list takes no
        channel (the series then runs once with ``channel=None``).
    :param statuses: the status filters it accepts (empty: not published; any is passed on, and the
        dialect's ``message_history`` checks its form).
    :param max_page_size: the largest page it serves (the default page size).
    :param fields: the record fields its docs name, in the order a CSV lists them first.
    :param time_fields: fields that may hold a record's send time, for keeping rows inside the window.
    :param aliases: other names of the channels, upper case -> channel (Messangi: ``SMS`` -> ``S``).
    :param id_fields: fields that may hold a record's own id (the first present one is used), to drop a
        record served twice in one series.
    :param page_size_param: the query parameter of the page size (named by a 400 refusing it).
    """

    channels: tuple[str, ...]
    statuses: tuple[str, ...]
    max_page_size: int
    fields: tuple[str, ...] = ()
    time_fields: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    id_fields: tuple[str, ...] = ()
    page_size_param: str = "limit"


class Dialect(ABC):
    """How one vendor's API is spoken. A vendor's module declares its subclass as ``DIALECT`` (found by
    ``dialects.__init__``).

    :param config: the connection's configuration; a dialect validates its own ``config.options`` here,
        so a bad option fails before any request.
    """

    name: ClassVar[str]
    caps: ClassVar[Capabilities]
    #: export CSV column of a message's send time: cuts rows to a window (when ``caps.exact_bounds`` is
    #: False, or when a restating export id carries its window) and places them in date partitions
    #: (``None``: this vendor's files can be neither)
    row_time_column: ClassVar[str | None] = None
    #: export CSV column (and message-list field) of a message's delivery status, counted in manifests
    status_column: ClassVar[str | None] = None
    #: what a 401 means (shown by the connection test and added to the error)
    unauthorized_help: ClassVar[str] = (
        "API key rejected (401): check the API key in the password field (or the login and password)."
    )
    #: what a 403 means for this vendor (shown by the connection test and added to the error)
    forbidden_help: ClassVar[str] = "Forbidden (403): the API refused these credentials for this request."
    #: the vendor's published request limits per API key (empty: none known, no client-side pacing)
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    #: the paged message list, or ``None`` when the vendor has none
    message_list: ClassVar[MessageListSpec | None] = None
    #: seconds an export job typically takes (job-tracked vendors): a younger job is looked at less often
    #: (:mod:`~airflow_provider_msghistory.client.cadence`); ``None``: every poll interval
    typical_export_seconds: ClassVar[float | None] = None
    #: options that let the dialect be built for parse-time checks, before the connection is known
    placeholder_options: ClassVar[Mapping[str, Any]] = {}
    #: the connection extras this vendor reads (its form fields; passed on in ``config.options``)
    connection_options: ClassVar[tuple[ConnectionOption, ...]] = ()
    #: export-list page size a wait looks with (``caps.tracking == "list"``), and the smaller one it
    #: rescans with when the export is missing (a server capping the page size serves short pages, which
    #: end a scan early)
    list_page_size: ClassVar[int] = 50
    list_fallback_page_size: ClassVar[int] = 50

    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    # --- authentication -------------------------------------------------------------------------------
    @abstractmethod
    def auth(self) -> AuthFlow:
        """The flow that authenticates requests to the API base URL's origin (and nowhere else)."""

    # --- submission -----------------------------------------------------------------------------------
    def check(self, request: ExportRequest) -> None:
        """Refuse (``ValueError`` naming the parameter) what this vendor does not take: kinds, fields,
        filters, window length. Called before any request, and at DAG parse where the vendor is known."""
        if request.kind not in self.caps.kinds:
            have = ", ".join(sorted(repr(k.value) for k in self.caps.kinds))
            raise ValueError(
                f"export_type: {self.name} has no {request.kind.value!r} export; it offers {have}"
            )
        if self.caps.delivery != "email":
            for name in ("email_recipients", "email_sender"):
                if getattr(request, name) is not None:
                    raise ValueError(
                        f"{name}: {self.name} delivers exports as download links, not by e-mail; leave "
                        f"{name} out and store the file with MsgHistoryExportToStorageOperator"
                    )
        cap = self.caps.max_window
        if cap is not None and request.window is not None and request.window.end - request.window.start > cap:
            raise ValueError(f"end_datetime: {self.name} exports span at most {cap}; split the window")

    def plan(self, request: ExportRequest) -> list[ExportRequest]:
        """The requests the vendor needs for ``request``, in order: one per ``caps.max_window`` piece of its
        window (contiguous, non-overlapping). A vendor with more rules of its own (one channel per
        request) overrides this. Each piece is then :meth:`check`-ed and submitted on its own."""
        cap = self.caps.max_window
        if cap is None or request.window is None:
            return [request]
        return [dataclasses.replace(request, window=piece) for piece in request.window.split(cap)]

    @abstractmethod
    def submit_export(self, request: ExportRequest) -> ApiRequest:
        """The request that creates ``request``'s export (already :meth:`check`-ed)."""

    def asked_window(self, window: Window) -> Window:
        """The half-open window the vendor's rows lie in when :meth:`submit_export` asks for ``window``:
        ``window`` itself where the wire bounds are exact; a covering one where they are coarser
        (``caps.exact_bounds = False``), whose rows are then cut to ``window``. A covering window lets the
        transfer search only its slack for rows to cut (``transfers/merge.py``)."""
        return window

    @abstractmethod
    def parse_export_id(self, body: Any) -> str:
        """The vendor's job id from a submission's response."""

    # --- tracking -------------------------------------------------------------------------------------
    def list_exports(self, page: int, limit: int | None) -> ApiRequest:
        """One page of the account's exports, newest first (``caps.tracking == "list"``)."""
        raise NotImplementedError(f"{self.name} has no export list")

    def parse_export_list(self, body: Any) -> list[ExportJob]:
        """The exports from one page of the list."""
        raise NotImplementedError(f"{self.name} has no export list")

    def get_export(self, job_id: str) -> ApiRequest:
        """A direct status lookup (``caps.tracking == "job"``)."""
        raise NotImplementedError(f"{self.name} has no per-export status call")

    def parse_export(self, job_id: str, body: Any) -> ExportJob:
        """The export from a direct status lookup."""
        raise NotImplementedError(f"{self.name} has no per-export status call")

    # --- delivery -------------------------------------------------------------------------------------
    def download_link(self, job_id: str) -> ApiRequest:
        """The request that returns the export's one download URL (when not ``caps.links_in_job``)."""
        raise NotImplementedError(f"{self.name} lists its files in the export's status")

    def parse_download_link(self, job_id: str, body: Any) -> DownloadLink:
        """The download link from the download-link response."""
        raise NotImplementedError(f"{self.name} lists its files in the export's status")

    def regenerate_download_link(self, job_id: str) -> ApiRequest:
        """The request that re-creates an expired download (``caps.regenerate``)."""
        raise NotImplementedError(f"{self.name} cannot regenerate an export: submit a new one")

    def email_recipients(self, request: ExportRequest) -> tuple[str, ...]:
        """Where an e-mailed report of ``request`` goes (``caps.delivery == "email"``): its own recipients
        or the connection's defaults."""
        raise NotImplementedError(f"{self.name} does not e-mail its exports")

    def empty_csv_header(self, kind: ExportKind) -> bytes | None:
        """The documented header line of an export with no rows (``None``: undocumented, empty file)."""
        return None

    # --- cancel ---------------------------------------------------------------------------------------
    def cancel_export(self, job_id: str) -> ApiRequest:
        """The request that cancels a running export (``caps.cancel``)."""
        raise NotImplementedError(f"{self.name} cannot cancel an export")

    # --- message list (the paged history; see client/history.py) ---------------------------------------
    def message_history(
        self, channel: str, start: datetime, end: datetime, status: str | None, page: int, limit: int
    ) -> ApiRequest:
        """One page of the message history between the bounds :meth:`history_bounds` gave (validates
        channel and status, raising ``ValueError``)."""
        raise NotImplementedError(f"{self.name} has no message list")

    def history_bounds(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The list's bounds covering the half-open window ``[start, end)``.

        Default: inclusive bounds at millisecond precision, ``start`` and ``end - 1 ms`` (both rounded up to
        the millisecond first), so consecutive windows neither overlap nor leave a gap. ``ValueError`` for
        an empty window.
        """
        first, stop = ceil_to(start, MS), ceil_to(end, MS)
        if first >= stop:
            raise ValueError(f"end: {end.isoformat()} is not after start {start.isoformat()}")
        return first, stop - MS

    def is_last_history_page(self, messages: list[dict[str, Any]], limit: int) -> bool:
        """Whether a page of the list is its last one (default: fewer messages than asked for)."""
        return len(messages) < limit

    def history_total(self, body: Any) -> int | None:
        """The records the whole list holds, where a page says (Spring-style ``totalElements``, at the top
        or under ``page``); ``None`` when it does not."""
        holders = (body, body.get("page")) if isinstance(body, Mapping) else ()
        for holder in holders:
            value = holder.get("totalElements") if isinstance(holder, Mapping) else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        return None

    def message_time(self, message: Mapping[str, Any]) -> datetime | None:
        """A record's send time from the spec's ``time_fields``, or ``None`` when it has no readable one."""
        spec = self.message_list
        for key in spec.time_fields if spec is not None else ():
            value = message.get(key)
            if isinstance(value, str) and value.strip():
                return parse_vendor_time(value, naive_is_utc=False)
        return None

    def parse_history(self, body: Any) -> list[dict[str, Any]]:
        """The messages of one history page."""
        raise NotImplementedError(f"{self.name} has no message list")

    # --- connection check -----------------------------------------------------------------------------
    @abstractmethod
    def check_connection(self) -> ApiRequest:
        """The cheapest authenticated call."""

    def parse_connection_check(self, body: Any) -> None:
        """Read the connection check's answer as the API's own (``UnexpectedResponseError`` when it is not:
        a web server's page at the wrong host answers 200 too). Default: anything is accepted."""
        return None

    # --- errors ---------------------------------------------------------------------------------------
    def status_help(self, status: int) -> str:
        """What fixes an error status, in words (``""``: nothing to add to the server's message)."""
        if status == 401:
            return self.unauthorized_help
        if status == 403:
            return self.forbidden_help
        if status in (404, 405):
            return (
                f"If that URL is not the {self.name} API (another server answering on that host or port), "
                "fix the connection's host."
            )
        return ""

    def error_message(self, body: Any, text: str) -> str:
        """The server's message from an error body of any shape (or none).

        Nested objects are followed a few levels, in a loop: a hostile body nested a thousand deep
        ends as its text, never as a ``RecursionError``.
        """
        for _ in range(_MESSAGE_DEPTH):
            if not isinstance(body, Mapping):
                break
            for key in ("message", "error_description", "detail", "explain", "error", "title"):
                value = body.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
                if isinstance(value, Mapping):
                    body = value
                    break
            else:
                break
        if isinstance(body, str) and body.strip():
            return body.strip()
        return text.strip() or "no message in the response"

    def unexpected_answer(self, request: ApiRequest, response: RawResponse) -> ApiError | None:
        """The error when an answer with a status the request expects (``request.ok_statuses``, a connection
        check's 404) is not the API's own, else ``None``. Default: the status suffices; a dialect whose
        expected error has a documented body checks it (a web server's 404 page is not the API's)."""
        return None

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


_MESSAGE_DEPTH = 8  # levels of nested error objects read for a message


def parse_expiry(value: object) -> datetime | None:
    """Expiry as an aware datetime: ISO string or epoch seconds/milliseconds; unreadable -> None."""
    parsed = parse_vendor_time(value)
    if parsed is None and value is not None:
        shown = value[:64] if isinstance(value, str) else value
        log.warning("Unreadable download-link expiry %r; ignoring it", shown)
    return parsed


def http_url(value: object) -> str | None:
    """``value`` as an absolute http(s) URL (surrounding blanks dropped, any case of scheme), else None."""
    url = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def path_segment(export_id: object, example: str) -> str:
    """``export_id`` as one URL path segment: refused when empty or a dot segment (``.``/``..`` would
    resolve to another endpoint, which would then receive the credentials)."""
    text = str(export_id).strip()
    if not text:
        raise ValueError(f"export_id: empty; pass the id returned by the export task, e.g. {example!r}")
    if text in (".", ".."):
        raise ValueError(f"export_id: {text!r} is not an export id; pass the id returned by the export task")
    return quote(text, safe="")
