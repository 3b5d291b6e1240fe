"""Messangi Reporting API v3 requests: login keys, the e-mailed CSV report request, the paged message log.

Written from ``docs/vendors/messangi.md``. What the vendor publishes: the login (key in the
``authorization`` response header, 24 h), Bearer keys, the 92-day cap and its ``explain`` text, the
too-big ``explain`` text, the ``{"meta", "data"}`` envelope, channels S E P W R. Everything else here is
**provisional** (paths ``/v3/mlog/export`` and ``/v3/mlog``, the paging fields, the record fields, the
status codes of errors, the bad-sender text) and lives in the ``messangi/`` folder alone.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Any

from ..base import ApiError, EndpointHandler, VendorApp, int_param, json_object, json_response
from ..faults import Fault, Faults
from ..httpserver import Request, Response
from ..requestlog import REDACTED, RequestLog
from ..timeutil import DAY_MS, to_epoch_ms
from .data import CHANNELS, STATUSES, MlogDataset, MlogRecord
from .space import ReportRequest, Space

ENDPOINTS = ("login", "export", "mlog")
LOGIN_PATH, EXPORT_PATH, MLOG_PATH = "/kingslanding/login", "/v3/mlog/export", "/v3/mlog"
MAX_DAYS = 92
RANGE_EXPLAIN = f"The date range exceeds the allowed limit: {MAX_DAYS}"  # [doc]
TOO_BIG_EXPLAIN = "The size of the report is too big. Please contact support"  # [doc]
BAD_SENDER_EXPLAIN = "The sender is not a valid sender of the space"  # [provisional]
EXPIRED_EXPLAIN = "The token has expired"  # [provisional]
# [doc] UTC Zulu ISO-8601 with milliseconds, e.g. 2015-03-04T00:00:00.000Z (fewer fraction digits accepted).
_ZULU = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
_TIMEZONE = re.compile(r"GMT(?:[+-]\d{2}:\d{2})?")
MAX_SIZE = 1000


class MessangiApp(VendorApp):
    """Routes the login, the report request and the message log over the :class:`~.space.Space`."""

    def __init__(
        self, space: Space, dataset: MlogDataset, faults: Faults, log: RequestLog, latency: float
    ) -> None:
        super().__init__(faults, log, latency)
        self.space = space
        self.settings = space.settings
        self.dataset = dataset

    # ------------------------------------------------------------------------------------------ pipeline
    def route(self, request: Request) -> tuple[str, EndpointHandler]:
        routes: dict[str, tuple[str, str, EndpointHandler]] = {
            LOGIN_PATH: ("POST", "login", self._login),
            EXPORT_PATH: ("POST", "export", self._export),
            MLOG_PATH: ("GET", "mlog", self._mlog),
        }
        path = request.path.rstrip("/")
        if path not in routes:
            raise ApiError(404, f"No endpoint {request.method} {request.path}")
        method, endpoint, handler = routes[path]
        if request.method != method:
            raise ApiError(405, f"Request method '{request.method}' is not supported")
        return endpoint, handler

    def public(self, request: Request) -> bool:
        return request.path.rstrip("/") == LOGIN_PATH

    def authenticate(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        return "space" if self.space.valid_key(key) else None

    def unauthorized(self, request: Request) -> Response:
        key = request.headers.get("Authorization", "").partition(" ")[2]
        expired = self.space.issued(key.strip())
        return self.error(401, EXPIRED_EXPLAIN if expired else "Unauthorized", request)

    def error(self, status: int, message: str, request: Request, code: int | None = None) -> Response:
        return json_response(status, {"meta": _meta(message), "data": None})

    def rate_limited(self, retry_after: int, request: Request) -> Response:
        response = self.error(429, "Too many requests", request)
        response.headers["Retry-After"] = str(retry_after)
        return response

    def loggable(self, body_json: Any) -> Any:
        if isinstance(body_json, dict) and "password" in body_json:
            return {**body_json, "password": REDACTED}
        return body_json

    # ----------------------------------------------------------------------------------------- endpoints
    def _login(self, request: Request, fault: Fault | None) -> Response:
        body = json_object(request)
        key = self.space.login(body.get("username"), body.get("password"))
        if key is None:
            raise ApiError(401, "Invalid username or password")
        return Response(200, {"authorization": f"Bearer {key}"})

    def _export(self, request: Request, fault: Fault | None) -> Response:
        records = self._select(request)
        body = json_object(request)
        emails = body.get("emails")
        if (
            not isinstance(emails, list)
            or not emails
            or not all(isinstance(e, str) and _EMAIL.fullmatch(e) for e in emails)
        ):
            raise ApiError(400, 'emails is required: a list of e-mail addresses, e.g. ["ops@acme.example"]')
        sender = body.get("sender")
        if not isinstance(sender, str) or not sender:
            raise ApiError(400, "sender is required: a valid sender e-mail of the space")
        if sender not in self.settings.report_senders:
            raise ApiError(400, BAD_SENDER_EXPLAIN)
        timezone = body.get("timezone")
        if not isinstance(timezone, str) or not _TIMEZONE.fullmatch(timezone):
            raise ApiError(400, "timezone is required, in GMT, e.g. GMT")
        if len(records) > self.settings.report_max_records:
            raise ApiError(400, TOO_BIG_EXPLAIN)
        meta = _meta(f"The report will be sent to {', '.join(emails)}")
        report = ReportRequest(meta["transactionId"], dict(request.query), body, len(records))
        self.space.accept_report(report)
        return json_response(200, {"meta": meta, "data": {"status": "ACCEPTED"}})

    def _mlog(self, request: Request, fault: Fault | None) -> Response:
        records = self._select(request)
        page = int_param(request, "page", 0, 0)
        size = int_param(request, "size", 100, 1, MAX_SIZE)
        items = [r.to_json() for r in records[page * size : (page + 1) * size]]
        paging = {
            "number": page,
            "size": size,
            "totalElements": len(records),
            "totalPages": math.ceil(len(records) / size),
        }
        return json_response(200, {"meta": _meta("OK"), "data": items, "page": paging})

    def _select(self, request: Request) -> list[MlogRecord]:
        """The records the query of either route selects (after its 92-day and format checks)."""
        query = request.query
        start, end = _zulu(query, "from"), _zulu(query, "to")
        if end <= start:
            raise ApiError(400, "'to' must be after 'from'")
        if end - start > MAX_DAYS * DAY_MS:
            raise ApiError(400, RANGE_EXPLAIN)
        channel = query.get("channel")
        if channel is not None and channel not in CHANNELS:
            raise ApiError(400, f"channel must be one of {', '.join(CHANNELS)} (one per request), e.g. S")
        statuses = None
        if query.get("status"):
            statuses = tuple(query["status"].split(","))
            known = set().union(*STATUSES.values())
            if any(s not in known for s in statuses):
                raise ApiError(
                    400, "status must be comma-separated statuses without spaces, e.g. SENT,EXPIRED"
                )
        end_exclusive = end + 1 if self.settings.to_inclusive else end
        return self.dataset.select(
            start, end_exclusive, channel, statuses, query.get("recipient"), query.get("campaignId"),
            query.get("sender"),
        )  # fmt: skip


def _meta(explain: str) -> dict[str, Any]:
    return {"timestamp": int(time.time() * 1000), "transactionId": str(uuid.uuid4()), "explain": explain}


def _zulu(query: dict[str, str], name: str) -> int:
    value = query.get(name)
    if value is None:
        raise ApiError(400, f"'{name}' is required, e.g. 2015-03-04T00:00:00.000Z")
    if not _ZULU.fullmatch(value):
        raise ApiError(
            400, f"'{name}' must be UTC Zulu ISO-8601 with milliseconds, e.g. 2015-03-04T00:00:00.000Z"
        )
    try:
        return to_epoch_ms(value)
    except ValueError:
        raise ApiError(400, f"'{name}' is not a valid date-time: {value!r}") from None
