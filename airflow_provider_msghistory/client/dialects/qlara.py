"""Agile Telecom Qlara Partner Gateway: requests A-G and tolerant parsing of their responses.

Response schemas are unpublished, so every reader below accepts each variant of the tolerance contract in
``docs/vendors/qlara.md``; names of request fields that are unknown (sender/recipient) live here only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from airflow_provider_msghistory.client.auth import AuthFlow, api_key_header, basic
from airflow_provider_msghistory.client.datetimes import EXAMPLE, format_api
from airflow_provider_msghistory.client.dialects.base import (
    Capabilities,
    Dialect,
    MessageListSpec,
    first_present,
    http_url,
    normalise_status,
    parse_expiry,
    path_segment,
    unwrap_list,
)
from airflow_provider_msghistory.client.errors import ApiError, ExportExpiredError, UnexpectedResponseError
from airflow_provider_msghistory.client.models import (
    DownloadLink,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from airflow_provider_msghistory.client.pacing import RateLimit
from airflow_provider_msghistory.client.wire import ApiRequest

log = logging.getLogger(__name__)

PREFIX = "/partner-gateway/v1"
CHANNELS = ("SMS", "RCS", "WHATSAPP")
HISTORY_STATUSES = ("DELIVERED", "SENT", "RECEIVED", "ERROR", "EXPIRED", "UNKNOWN")

STATUS_MAP: dict[str, ExportStatus] = {
    **dict.fromkeys(("PENDING", "QUEUED", "RUNNING", "IN_PROGRESS"), ExportStatus.PENDING),
    **dict.fromkeys(("COMPLETED", "SUCCEEDED"), ExportStatus.COMPLETED),
    "EXPIRED": ExportStatus.EXPIRED,
    **dict.fromkeys(("FAILED", "ERROR", "CANCELLED"), ExportStatus.FAILED),
}
ID_KEYS = ("exportId", "id")
URL_KEYS = ("downloadUrl", "url", "downloadLink")
EXPIRY_KEYS = ("expiresAt", "expiration")
EXPORT_LIST_KEYS = ("content", "items", "data")
HISTORY_KEYS = ("content", "items", "data", "messages")

# The docs name three fields of a history record; the rest are what the list is expected to carry (the
# export's columns: id, channel, destination, status, send and delivery dates) and only order CSV columns.
HISTORY_FIELDS = (
    "messageId",
    "customerMessageId",
    "channel",
    "destination",
    "sender",
    "deliveryStatus",
    "deliveryStatusDescription",
    "sendDate",
    "deliveryDate",
)
# The docs give the default page size (20) but no maximum; 1,000 is the assumed cap (the emulator's).
HISTORY_MAX_PAGE_SIZE = 1000

# Which scope fields each export kind takes.
_FIELDS: dict[ExportKind, frozenset[str]] = {
    ExportKind.MESSAGE_HISTORY: frozenset({"sender", "recipient"}),
    ExportKind.DELIVERY_REPORTS: frozenset({"campaign_id"}),
    ExportKind.CONTACTS: frozenset({"list_ids", "contact_ids"}),
}

_SUBMIT_PATHS = {
    ExportKind.MESSAGE_HISTORY: ("submit_message_history_export", "/messages/history/export"),
    ExportKind.CONTACTS: ("submit_contacts_export", "/exports/contacts"),
    ExportKind.DELIVERY_REPORTS: ("submit_delivery_reports_export", "/exports/delivery-reports"),
}


class QlaraDialect(Dialect):
    """The Qlara Partner Gateway (``https://lora-api.agiletelecom.com/api``)."""

    name: ClassVar[str] = "qlara"
    # No cancel call; bounds are inclusive at ms precision, so the window goes on the wire exactly.
    caps: ClassVar[Capabilities] = Capabilities(
        tracking="list",
        regenerate=True,
        auth_forms=("API key (X-Api-Key)", "login + password (Basic)"),
    )
    # Production keys; trial keys get 100/min and 10/s (connection extras requests_per_minute/_second).
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (RateLimit(50, 1.0), RateLimit(1000, 60.0))
    # History and delivery-report files both carry the message's send time (a report row is placed on the day
    # its message was sent, not when the receipt came) and its status.
    row_time_column: ClassVar[str | None] = "sendDate"
    status_column: ClassVar[str | None] = "deliveryStatus"
    message_list: ClassVar[MessageListSpec | None] = MessageListSpec(
        channels=CHANNELS,
        statuses=HISTORY_STATUSES,
        max_page_size=HISTORY_MAX_PAGE_SIZE,
        fields=HISTORY_FIELDS,
        time_fields=("sendDate", "sentDate", "sendDateTime"),
        id_fields=("messageId", "customerMessageId"),
    )
    # The list is newest first, so newer exports push a waited-for export to later pages: a hinted poll
    # costs one request, plus one each time the export crosses a page boundary. A large page keeps those
    # to about one or two even with a thousand exports created during the wait. Spring-style APIs (Qlara's
    # error bodies are Spring Boot's) accept up to 2000 per page by default; a server that caps it lower
    # is caught by the fallback rescan.
    list_page_size: ClassVar[int] = 500
    list_fallback_page_size: ClassVar[int] = 50
    forbidden_help: ClassVar[str] = (
        "IP not whitelisted (403): the API refused this machine's address; add its public IP to the "
        "account's whitelist."
    )

    def auth(self) -> AuthFlow:
        config = self.config
        if config.api_key:
            return api_key_header("X-Api-Key", config.api_key)
        return basic(config.username or "", config.password or "")

    # --- submission -----------------------------------------------------------------------------------
    def check(self, request: ExportRequest) -> None:
        super().check(request)
        given = request.given()
        if request.filters:
            raise ValueError(
                f"filters: qlara takes no vendor filters ({', '.join(sorted(request.filters))}); "
                "use sender/recipient"
            )
        allowed = _FIELDS[request.kind]
        for name in given:
            if name not in allowed:
                raise ValueError(f"{name}: not accepted by a {request.kind.value.replace('_', '-')} export")
        if request.kind is ExportKind.MESSAGE_HISTORY and request.window is None:
            raise ValueError(f"start: a message-history export needs start and end, e.g. {EXAMPLE!r}")
        if (
            request.kind is ExportKind.DELIVERY_REPORTS
            and request.campaign_id is None
            and request.window is None
        ):
            raise ValueError(
                f"campaign_id: a delivery-reports export needs campaign_id (e.g. '12345') or start and end "
                f"(e.g. {EXAMPLE!r})"
            )
        if request.kind is ExportKind.CONTACTS:
            if request.window is not None:
                raise ValueError(
                    "start: a contacts export takes no date range; pass list_ids, contact_ids or neither"
                )
            if request.list_ids is not None and request.contact_ids is not None:
                raise ValueError(
                    "contact_ids: pass list_ids or contact_ids, not both (neither exports every contact)"
                )
        if request.window is not None:
            request.window.inclusive_ms()  # an empty window fails here, naming start_datetime

    def submit_export(self, request: ExportRequest) -> ApiRequest:
        endpoint, path = _SUBMIT_PATHS[request.kind]
        body: dict[str, Any] = {}
        if request.window is not None:
            # Inclusive bounds at ms precision: start and end - 1 ms cover [start, end) exactly.
            first, last = request.window.inclusive_ms()
            body["startDateTime"] = format_api(first)
            body["endDateTime"] = format_api(last)
        if request.sender is not None:
            body["sender"] = request.sender
        if request.recipient is not None:
            body["recipient"] = request.recipient
        if request.campaign_id is not None:
            body["campaignId"] = request.campaign_id
        if request.list_ids is not None:
            body["listIds"] = list(request.list_ids)
        if request.contact_ids is not None:
            body["contactIds"] = list(request.contact_ids)
        return ApiRequest(endpoint, "POST", PREFIX + path, json=body, creates_export=True)

    # --- tracking and delivery ------------------------------------------------------------------------
    def list_exports(self, page: int, limit: int | None) -> ApiRequest:
        params = {"page": page} if limit is None else {"page": page, "limit": limit}
        return ApiRequest("list_exports", "GET", f"{PREFIX}/exports", params=params)

    def download_link(self, job_id: str) -> ApiRequest:
        return ApiRequest("get_download_link", "GET", f"{PREFIX}/exports/{path_segment(job_id, 'exp_123')}")

    def regenerate_download_link(self, job_id: str) -> ApiRequest:
        # Re-creates the file of an existing export: repeating it never creates a second export.
        return ApiRequest(
            "regenerate_download_link", "POST", f"{PREFIX}/exports/{path_segment(job_id, 'exp_123')}"
        )

    # --- message list ------------------------------------------------------------------------------
    def message_history(
        self, channel: str, start: datetime, end: datetime, status: str | None, page: int, limit: int
    ) -> ApiRequest:
        params: dict[str, Any] = {
            "channel": _choice(channel, CHANNELS, "channel"),
            "from": format_api(start),
            "to": format_api(end),
            "page": page,
            "limit": limit,
        }
        if status is not None:
            params["status"] = _choice(status, HISTORY_STATUSES, "status")
        return ApiRequest("message_history", "GET", f"{PREFIX}/messages/history", params=params)

    def check_connection(self) -> ApiRequest:
        return self.list_exports(page=0, limit=1)

    def parse_connection_check(self, body: Any) -> None:
        self.parse_export_list(body)

    # --- responses ------------------------------------------------------------------------------------
    def parse_export_id(self, body: Any) -> str:
        export_id = first_present(body, ID_KEYS) if isinstance(body, Mapping) else None
        if isinstance(export_id, bool) or not isinstance(export_id, (str, int)) or str(export_id) == "":
            raise UnexpectedResponseError(None, "the response carries no exportId/id", "submit_export")
        return str(export_id)

    def parse_export_list(self, body: Any) -> list[ExportJob]:
        entries = unwrap_list(body, EXPORT_LIST_KEYS, "list_exports")
        jobs = []
        for entry in entries:
            if not isinstance(entry, Mapping):
                log.warning("Skipping an export-list entry that is not an object: %r", type(entry).__name__)
                continue
            jobs.append(self._job(entry))
        return jobs

    def _job(self, entry: Mapping[str, Any]) -> ExportJob:
        raw_id = first_present(entry, ID_KEYS)
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise UnexpectedResponseError(None, "an export entry has no exportId/id", "list_exports")
        export_id = str(raw_id)
        raw_status = entry.get("status")
        return ExportJob(
            export_id=export_id,
            status=normalise_status(raw_status, STATUS_MAP, f"export {export_id}"),
            available=entry.get("isAvailableForDownload") is True,
            raw_status="" if raw_status is None else str(raw_status),
            kind=_text(first_present(entry, ("type", "kind", "exportType"))),
            created_at=_text(entry.get("createdAt")),
            completed_at=_text(entry.get("completedAt")),
        )

    def parse_download_link(self, export_id: str, body: Any) -> DownloadLink:
        url = http_url(first_present(body, URL_KEYS) if isinstance(body, Mapping) else None)
        if url is None:
            raise UnexpectedResponseError(
                None, "the response carries no downloadUrl/url/downloadLink", "get_download_link"
            )
        expiry = first_present(body, EXPIRY_KEYS)
        return DownloadLink(export_id, url, parse_expiry(expiry))

    def parse_history(self, body: Any) -> list[dict[str, Any]]:
        return [m for m in unwrap_list(body, HISTORY_KEYS, "message_history") if isinstance(m, dict)]

    def error_for(
        self, endpoint: str, status: int, headers: Mapping[str, str], body: Any, text: str
    ) -> ApiError:
        if endpoint == "get_download_link" and status == 400:
            return ExportExpiredError(status, self.error_message(body, text), endpoint)
        return super().error_for(endpoint, status, headers, body, text)


def _choice(value: str, allowed: tuple[str, ...], param: str) -> str:
    upper = str(value).strip().upper()
    if upper not in allowed:
        raise ValueError(f"{param}: {value!r} is not one of {', '.join(allowed)} (e.g. {allowed[0]!r})")
    return upper


def _text(value: object) -> str | None:
    return None if value is None else str(value)


DIALECT = QlaraDialect
