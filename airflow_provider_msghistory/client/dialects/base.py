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
from datetime import datetime
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
from airflow_provider_msghistory.client.retry import retry_after_seconds

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


class Dialect(ABC):
    """How one vendor's API is spoken. Subclasses register in ``dialects.__init__``."""

    name: ClassVar[str]
    #: the vendor has a download link for an export (Messangi e-mails its reports instead)
    supports_download: ClassVar[bool] = True

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
        """One page of the message history (validates channel and status, raising ``ValueError``)."""

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
