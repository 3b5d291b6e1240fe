"""Agile Telecom Qlara Partner Gateway: requests A-G and tolerant parsing of their responses.

Response schemas are unpublished, so every reader below accepts each variant of the tolerance contract in
``shared/reference/qlara.md``; names of request fields that are unknown (sender/recipient) live here only.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import quote

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.datetimes import format_api
from airflow_provider_msghistory.client.dialects.base import (
    ApiRequest,
    Dialect,
    MessageListSpec,
    first_present,
    normalise_status,
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

_SUBMIT_PATHS = {
    ExportKind.MESSAGE_HISTORY: ("submit_message_history_export", "/messages/history/export"),
    ExportKind.CONTACTS: ("submit_contacts_export", "/exports/contacts"),
    ExportKind.DELIVERY_REPORTS: ("submit_delivery_reports_export", "/exports/delivery-reports"),
}


class QlaraDialect(Dialect):
    """The Qlara Partner Gateway (``https://lora-api.agiletelecom.com/api``)."""

    name: ClassVar[str] = "qlara"
    # Production keys; trial keys get 100/min and 10/s (connection extras requests_per_minute/_second).
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (RateLimit(50, 1.0), RateLimit(1000, 60.0))
    message_list: ClassVar[MessageListSpec | None] = MessageListSpec(
        channels=CHANNELS,
        statuses=HISTORY_STATUSES,
        max_page_size=HISTORY_MAX_PAGE_SIZE,
        fields=HISTORY_FIELDS,
        time_fields=("sendDate", "sentDate", "sendDateTime"),
    )

    def auth_headers(self, config: ClientConfig) -> dict[str, str]:
        if config.api_key:
            return {"X-Api-Key": config.api_key}
        token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    # --- requests -------------------------------------------------------------------------------------
    def submit_export(self, request: ExportRequest) -> ApiRequest:
        endpoint, path = _SUBMIT_PATHS[request.kind]
        body: dict[str, Any] = {}
        if request.start is not None and request.end is not None:
            body["startDateTime"] = format_api(request.start)
            body["endDateTime"] = format_api(request.end)
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

    def list_exports(self, page: int, limit: int | None) -> ApiRequest:
        params = {"page": page} if limit is None else {"page": page, "limit": limit}
        return ApiRequest("list_exports", "GET", f"{PREFIX}/exports", params=params)

    def download_link(self, export_id: str) -> ApiRequest:
        return ApiRequest("get_download_link", "GET", f"{PREFIX}/exports/{_segment(export_id)}")

    def regenerate_download_link(self, export_id: str) -> ApiRequest:
        # Re-creates the file of an existing export: repeating it never creates a second export.
        return ApiRequest("regenerate_download_link", "POST", f"{PREFIX}/exports/{_segment(export_id)}")

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
        url = first_present(body, URL_KEYS) if isinstance(body, Mapping) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UnexpectedResponseError(
                None, "the response carries no downloadUrl/url/downloadLink", "get_download_link"
            )
        expiry = first_present(body, EXPIRY_KEYS)
        return DownloadLink(export_id, url, _parse_expiry(expiry))

    def parse_regenerate(self, export_id: str, body: Any) -> str:
        if isinstance(body, Mapping):
            new_id = first_present(body, ID_KEYS)
            if isinstance(new_id, (str, int)) and not isinstance(new_id, bool) and str(new_id):
                return str(new_id)
        return export_id

    def parse_history(self, body: Any) -> list[dict[str, Any]]:
        return [m for m in unwrap_list(body, HISTORY_KEYS, "message_history") if isinstance(m, dict)]

    def error_for(
        self, endpoint: str, status: int, headers: Mapping[str, str], body: Any, text: str
    ) -> ApiError:
        if endpoint == "get_download_link" and status == 400:
            return ExportExpiredError(status, self.error_message(body, text), endpoint)
        return super().error_for(endpoint, status, headers, body, text)


def _segment(export_id: str) -> str:
    text = str(export_id).strip()
    if not text:
        raise ValueError("export_id: empty; pass the id returned by a submit call, e.g. 'exp_123'")
    if text in (".", ".."):  # a dot segment would resolve to another endpoint, with the key
        raise ValueError(f"export_id: {text!r} is not an export id; pass the id returned by a submit call")
    return quote(text, safe="")


def _choice(value: str, allowed: tuple[str, ...], param: str) -> str:
    upper = str(value).strip().upper()
    if upper not in allowed:
        raise ValueError(f"{param}: {value!r} is not one of {', '.join(allowed)} (e.g. {allowed[0]!r})")
    return upper


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _parse_expiry(value: object) -> datetime | None:
    """Expiry as an aware datetime: ISO string or epoch seconds/milliseconds; unreadable -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):  # 1e20, NaN, Infinity: no datetime holds them
            log.warning("Unreadable download-link expiry %r; ignoring it", value)
            return None
    if isinstance(value, str):
        text = value.strip()
        text = text[:-1] + "+00:00" if text[-1:] in "Zz" else text
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            log.warning("Unreadable download-link expiry %r; ignoring it", value)
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None
