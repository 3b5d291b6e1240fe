"""Qlara Partner Gateway requests: endpoints A-G on the API server, pre-signed downloads on a storage host.

Written from ``docs/vendors/qlara.md``; the response shapes switch between the tolerance-contract
variants (:class:`~.shapes.Shape`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import math
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ..base import (
    ApiError,
    EndpointHandler,
    VendorApp,
    int_param,
    json_object,
    json_response,
    parse_datetime,
)
from ..content import Content
from ..downloads import serve_content
from ..faults import Fault, Faults
from ..httpserver import Request, Response
from ..requestlog import RequestLog
from ..timeutil import format_epoch
from . import exports as ex
from .content import (
    CONTACT_COLUMNS,
    DELIVERY_REPORT_COLUMNS,
    HISTORY_COLUMNS,
    RowsContent,
    SyntheticCsv,
    contact_row,
    delivery_report_row,
    history_row,
)
from .dataset import CHANNELS, STATUSES, Dataset, Message
from .links import LinkSigner
from .shapes import Shape

ENDPOINTS = ("submit", "history", "list", "link", "regenerate", "download")  # fault names, see faults.py
MAX_LIMIT = 1000
PREFIX = "/api/partner-gateway/v1"
_EXPORT_PATH = re.compile(re.escape(PREFIX) + r"/exports/([^/]+)")
_DOWNLOAD_PATH = re.compile(r"/exports/([^/]+)/[^/]+")


@dataclass
class Settings:
    """Credentials and knobs of one emulator (see :class:`~.emulator.QlaraEmulator` for their meaning)."""

    api_key: str
    username: str | None
    password: str | None
    seed: int
    export_size_bytes: int | None
    history_max_limit: int


class QlaraApp(VendorApp):
    """Both servers' handlers over one shared state.

    :param settings: credentials, seed and the synthetic export size.
    :param dataset: the synthetic account data.
    :param store: export jobs.
    :param signer: link signer (knows the storage URL).
    :param faults: fault plan.
    :param log: request log.
    :param latency: seconds added to every API response.
    """

    def __init__(
        self,
        settings: Settings,
        dataset: Dataset,
        store: ex.ExportStore,
        signer: LinkSigner,
        faults: Faults,
        log: RequestLog,
        latency: float,
    ) -> None:
        super().__init__(faults, log, latency)
        self.settings = settings
        self.dataset = dataset
        self.store = store
        self.signer = signer
        self.shape = Shape()

    # ----------------------------------------------------------------------------------------- API server
    def route(self, request: Request) -> tuple[str, EndpointHandler]:
        path, method = request.path.rstrip("/"), request.method
        routes: dict[tuple[str, str], tuple[str, EndpointHandler]] = {
            ("POST", f"{PREFIX}/messages/history/export"): ("submit", self._submit_history),
            ("GET", f"{PREFIX}/messages/history"): ("history", self._history),
            ("POST", f"{PREFIX}/exports/contacts"): ("submit", self._submit_contacts),
            ("POST", f"{PREFIX}/exports/delivery-reports"): ("submit", self._submit_reports),
            ("GET", f"{PREFIX}/exports"): ("list", self._list_exports),
        }
        if (method, path) in routes:
            return routes[(method, path)]
        if any(p == path for _, p in routes):
            raise ApiError(405, f"Request method '{method}' is not supported")
        if _EXPORT_PATH.fullmatch(path):
            if method == "GET":
                return "link", self._link
            if method == "POST":
                return "regenerate", self._regenerate
            raise ApiError(405, f"Request method '{method}' is not supported")
        raise ApiError(404, "No endpoint " + method + " " + request.path)

    def authenticate(self, request: Request) -> str | None:
        key = request.headers.get("X-Api-Key")
        if key is not None:
            return "key:" + key if hmac.compare_digest(key.encode(), self.settings.api_key.encode()) else None
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "basic" or self.settings.username is None or self.settings.password is None:
            return None
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        ok = hmac.compare_digest(user.encode(), self.settings.username.encode()) and hmac.compare_digest(
            password.encode(), self.settings.password.encode()
        )
        return "user:" + user if ok else None

    def unauthorized(self, request: Request) -> Response:
        response = self.error(401, "Full authentication is required to access this resource", request)
        response.headers["WWW-Authenticate"] = 'Basic realm="Qlara Partner Gateway"'
        return response

    # --------------------------------------------------------------------------------------- endpoints
    def _submit_history(self, request: Request, fault: Fault | None) -> Response:
        body = json_object(request)
        start = _required_datetime(body, "startDateTime")
        end = _required_datetime(body, "endDateTime")
        if start > end:
            raise ApiError(400, "startDateTime must not be after endDateTime")
        sender, recipient = _optional_str(body, "sender"), _optional_str(body, "recipient")
        content: Content
        if self.settings.export_size_bytes is not None:
            content = SyntheticCsv(
                self.settings.export_size_bytes, self.settings.seed, start, max(1, end - start + 1)
            )
        else:
            rows = self.dataset.history_export(start, end, sender, recipient)
            content = RowsContent(HISTORY_COLUMNS, rows, history_row)
        params = {"startDateTime": body["startDateTime"], "endDateTime": body["endDateTime"]}
        params.update({k: v for k, v in (("sender", sender), ("recipient", recipient)) if v is not None})
        return self._accepted(self._create(ex.MESSAGE_HISTORY, params, content, fault))

    def _submit_contacts(self, request: Request, fault: Fault | None) -> Response:
        body = json_object(request)
        list_ids = _optional_ids(body, "listIds")
        contact_ids = _optional_ids(body, "contactIds")
        rows = self.dataset.contacts_export(list_ids, contact_ids)
        params = {
            k: sorted(v) for k, v in (("listIds", list_ids), ("contactIds", contact_ids)) if v is not None
        }
        content = RowsContent(CONTACT_COLUMNS, rows, contact_row)
        return self._accepted(self._create(ex.CONTACTS, params, content, fault))

    def _submit_reports(self, request: Request, fault: Fault | None) -> Response:
        body = json_object(request)
        campaign = body.get("campaignId")
        if campaign is not None and (isinstance(campaign, bool) or not isinstance(campaign, (str, int))):
            raise ApiError(400, "campaignId must be a string or an integer, e.g. 1001")
        has_start, has_end = body.get("startDateTime") is not None, body.get("endDateTime") is not None
        if campaign is None and not (has_start or has_end):
            raise ApiError(400, "Either campaignId or startDateTime and endDateTime are required")
        if has_start != has_end:
            raise ApiError(400, "startDateTime and endDateTime must be given together")
        start = _required_datetime(body, "startDateTime") if has_start else None
        end = _required_datetime(body, "endDateTime") if has_end else None
        if start is not None and end is not None and start > end:
            raise ApiError(400, "startDateTime must not be after endDateTime")
        rows = self.dataset.delivery_reports(None if campaign is None else str(campaign), start, end)
        params = {
            k: body[k] for k in ("campaignId", "startDateTime", "endDateTime") if body.get(k) is not None
        }
        content = RowsContent(DELIVERY_REPORT_COLUMNS, rows, delivery_report_row)
        return self._accepted(self._create(ex.DELIVERY_REPORTS, params, content, fault))

    def _create(self, kind: str, params: dict[str, Any], content: Content, fault: Fault | None) -> ex.Export:
        fail = fault is not None and fault.kind == "fail"
        return self.store.create(kind, params, content, int_ids=self.shape.id_type == "int", fail=fail)

    def _accepted(self, export: ex.Export) -> Response:
        return json_response(
            202, {self.shape.id_field: self._wire_id(export), "status": self.shape.status(ex.PENDING)}
        )

    def _wire_id(self, export: ex.Export) -> str | int:
        return export.wire_id

    def _list_exports(self, request: Request, fault: Fault | None) -> Response:
        page = int_param(request, "page", 0, 0)
        limit = int_param(request, "limit", 10, 1, MAX_LIMIT)
        everything = self.store.newest_first()
        now = self.store.clock()
        entries = []
        for export in everything[page * limit : (page + 1) * limit]:
            status = export.status_at(now)
            entries.append(
                {
                    self.shape.id_field: self._wire_id(export),
                    "type": export.kind,
                    "status": self.shape.status(status),
                    "isAvailableForDownload": status == ex.COMPLETED,
                    "createdAt": format_epoch(export.created_at),
                    "completedAt": format_epoch(export.ready_at)
                    if status in (ex.COMPLETED, ex.EXPIRED)
                    else None,
                }
            )
        return json_response(200, _wrap(self.shape.export_list_wrap, entries, page, limit, len(everything)))

    def _link(self, request: Request, fault: Fault | None) -> Response:
        export = self._export_from_path(request)
        status = export.status
        if status == ex.PENDING:
            raise ApiError(400, f"Export {export.export_id} is not available for download yet")
        if status == ex.FAILED:
            raise ApiError(400, f"Export {export.export_id} failed; submit a new export")
        if status == ex.EXPIRED:
            raise ApiError(400, f"Export {export.export_id} has expired; regenerate it")
        body: dict[str, Any] = {
            self.shape.id_field: self._wire_id(export),
            self.shape.url_field: self.signer.url(export),
        }
        if self.shape.expiry_field is not None:
            body[self.shape.expiry_field] = format_epoch(export.link_expires_at)
        if fault is not None and fault.kind == "expire":
            self.store.expire(export)
        return json_response(200, body)

    def _regenerate(self, request: Request, fault: Fault | None) -> Response:
        export = self._export_from_path(request)
        status = export.status
        if status == ex.FAILED:
            raise ApiError(400, f"Export {export.export_id} failed and cannot be regenerated")
        if status != ex.PENDING:
            self.store.regenerate(export)
        return self._accepted(export)

    def _export_from_path(self, request: Request) -> ex.Export:
        match = _EXPORT_PATH.fullmatch(request.path.rstrip("/"))
        assert match is not None
        export = self.store.get(match.group(1))
        if export is None:
            raise ApiError(404, f"Export {match.group(1)} not found")
        return export

    def _history(self, request: Request, fault: Fault | None) -> Response:
        channel = request.query.get("channel")
        if channel not in CHANNELS:
            raise ApiError(400, f"channel is required and must be one of {', '.join(CHANNELS)}, e.g. SMS")
        for name in ("from", "to"):
            if name not in request.query:
                raise ApiError(
                    400, f"Required parameter '{name}' is missing, e.g. 2025-01-01T00:00:00.000+01:00"
                )
        start = parse_datetime(request.query["from"], "from")
        end = parse_datetime(request.query["to"], "to")
        status = request.query.get("status")
        if status is not None and status not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}, e.g. DELIVERED")
        page = int_param(request, "page", 0, 0)
        cap = self.settings.history_max_limit
        limit = int_param(request, "limit", 20, 1, 10**9 if self.shape.history_over_limit == "clamp" else cap)
        limit = min(limit, cap)
        matches = self.dataset.history_list(channel, start, end, status)
        items = [self.history_record(m) for m in matches[page * limit : (page + 1) * limit]]
        return json_response(200, _wrap(self.shape.history_wrap, items, page, limit, len(matches)))

    def history_record(self, message: Message) -> dict[str, Any]:
        record = message.to_json()
        if self.shape.history_record == "documented":
            return {
                k: record[k] for k in ("customerMessageId", "deliveryStatus", "deliveryStatusDescription")
            }
        return record

    # ------------------------------------------------------------------------------------- storage server
    async def handle_storage(self, request: Request) -> Response:
        fault: Fault | None = None
        try:
            response, fault = await self._storage(request)
        except ApiError as exc:
            response = _s3_error(exc.status, exc.message)
        self.record(request, "storage", response, None, fault)
        return response

    async def _storage(self, request: Request) -> tuple[Response, Fault | None]:
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, "Method not allowed")
        match = _DOWNLOAD_PATH.fullmatch(request.path)
        if match is None:
            raise ApiError(404, "NoSuchKey")
        if "Authorization" in request.headers:  # as S3 does for a pre-signed URL plus a header
            raise ApiError(400, "Only one auth mechanism allowed")
        export = self.store.get(match.group(1))
        if export is None:
            raise ApiError(404, "NoSuchKey")
        expires, signature = request.query.get("expires", ""), request.query.get("signature", "")
        if not self.signer.verify(export, expires, signature):
            raise ApiError(403, "SignatureDoesNotMatch")
        if int(expires) < time.time() or export.status != ex.COMPLETED:
            raise ApiError(403, "Request has expired")
        fault = self.faults.next("download")
        if fault is not None:
            if fault.kind == "reset":
                return Response(0, reset=True), fault
            if fault.seconds:
                await asyncio.sleep(fault.seconds)
            if fault.status is not None:
                return _s3_error(fault.status, "Injected fault"), fault
        await asyncio.to_thread(lambda: export.content.size)  # rows are rendered once to learn the size
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "ETag": f'"{export.export_id}-{export.generation}"',
        }
        rendered = isinstance(export.content, RowsContent)  # rows take CPU to format: keep the loop free
        response = serve_content(
            request, export.content, headers, fault, lambda h: _s3_error(416, "InvalidRange", h), rendered
        )
        if fault is not None and fault.kind == "expire":
            # The clock passes the link's expiry mid-body: this response (signed earlier) still streams, as
            # on S3, but breaks off; any later request with the link, a resume included, gets 403.
            self.store.expire(export)
        return response, fault

    # ------------------------------------------------------------------------------------------- helpers
    def error(self, status: int, message: str, request: Request, code: int | None = None) -> Response:
        """An error answer in the current ``error_body`` shape."""
        style = self.shape.error_body
        if style == "empty":
            return Response(status)
        if style == "text":
            return Response(status, {"Content-Type": "text/plain; charset=utf-8"}, message.encode())
        if style == "alt":
            return json_response(status, {"code": status, "explain": message})
        return json_response(
            status,
            {
                "timestamp": format_epoch(time.time()),
                "status": status,
                "error": _phrase(status),
                "message": message,
                "path": request.path,
            },
        )

    def rate_limited(self, retry_after: int, request: Request) -> Response:
        message = f"Rate limit exceeded. Please retry after {retry_after} seconds."
        if self.shape.error_body in ("default", "alt"):
            body = {
                "status": 429,
                "error": "Too Many Requests",
                "message": message,
                "retryAfter": retry_after,
            }
            response = json_response(429, body)
        else:
            response = self.error(429, message, request)
        if self.shape.retry_after_header:
            response.headers["Retry-After"] = str(retry_after)
        return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _s3_error(status: int, code: str, headers: dict[str, str] | None = None) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code></Error>\n'.encode()
    all_headers = {"Content-Type": "application/xml", **(headers or {})}
    return Response(status, all_headers, body)


def _wrap(key: str | None, items: list[Any], page: int, limit: int, total: int) -> Any:
    if key is None:
        return items
    return {
        key: items,
        "page": page,
        "size": limit,
        "totalElements": total,
        "totalPages": math.ceil(total / limit),
    }


def _required_datetime(body: dict[str, Any], field: str) -> int:
    if body.get(field) is None:
        raise ApiError(400, f"{field} is required, e.g. 2025-01-01T00:00:00.000+01:00")
    return parse_datetime(body[field], field)


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{field} must be a non-empty string")
    return value


def _optional_ids(body: dict[str, Any], field: str) -> set[int] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(400, f"{field} must be a JSON array of ids, e.g. [1, 2]")
    ids = set()
    for item in value:
        if isinstance(item, bool) or not (
            isinstance(item, int) or (isinstance(item, str) and item.isdigit())
        ):
            raise ApiError(400, f"{field} contains a malformed id {item!r}; ids are integers, e.g. [1, 2]")
        ids.add(int(item))
    return ids
