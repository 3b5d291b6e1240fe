"""8x8 CPaaS log export requests: start (POST), poll (GET), cancel (DELETE), download parts (API host).

Written from ``docs/vendors/8x8.md``. Where the vendor publishes nothing this module makes a choice and
says so (a knob where a provider must not rely on it): ``to`` covers its whole second (``to_inclusive``),
the 429 error code, the download link's expiry answer (410, code 1300).
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from typing import Any

from ..base import ApiError, EndpointHandler, VendorApp, json_object, json_response
from ..downloads import serve_content
from ..faults import Fault, Faults
from ..httpserver import Request, Response
from ..requestlog import RequestLog
from ..timeutil import DAY_MS, format_epoch, to_epoch_ms
from .jobs import Job, JobStore

ENDPOINTS = ("submit", "status", "cancel", "download")
SUB_ACCOUNT = re.compile(r"[A-Za-z0-9\-._&]{3,50}")
_PREFIX = re.compile(r"/api/v1/subaccounts/([^/]+)/messages/(exports|download)(?:/([^/]+))?")
# The three documented forms: yyyy-MM-dd, yyyy-MM-ddTHH:mm:ssZ, yyyy-MM-ddTHH:mm:ss+hh:mm (seconds at most).
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2}))?")
_PHONE = re.compile(r"\+?[1-9]\d{6,14}")
CODE_INVALID, CODE_SUB_ACCOUNT, CODE_UNAUTHORIZED, CODE_JOB = 1000, 1001, 1200, 4018
CODE_GONE = 1300  # "not found / expired"
CODE_RATE_LIMITED = 1100  # not published: any code will do, the status and Retry-After are what count


class EightByEightApp(VendorApp):
    """Routes ``/api/v1/subaccounts/{id}/messages/exports[/{jobId}]`` and ``.../download/{token}``."""

    def __init__(
        self,
        api_key: str,
        sub_account_id: str,
        store: JobStore,
        faults: Faults,
        log: RequestLog,
        latency: float,
    ) -> None:
        super().__init__(faults, log, latency)
        self.api_key = api_key
        self.sub_account_id = sub_account_id
        self.store = store
        self.link_origin = ""  # scheme://host:port the download links name (set once the server listens)

    # ------------------------------------------------------------------------------------------ pipeline
    def route(self, request: Request) -> tuple[str, EndpointHandler]:
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        if match is None:
            raise ApiError(404, f"No endpoint {request.method} {request.path}", CODE_GONE)
        sub_account, kind, item = match.groups()
        method = request.method
        if kind == "download":
            if item is None or method not in ("GET", "HEAD"):
                raise ApiError(405 if item else 404, f"No endpoint {method} {request.path}", CODE_INVALID)
            return "download", self._download
        handlers: dict[str, tuple[str, EndpointHandler]] = (
            {"POST": ("submit", self._submit)}
            if item is None
            else {"GET": ("status", self._status), "DELETE": ("cancel", self._cancel)}
        )
        if method not in handlers:
            raise ApiError(405, f"Request method '{method}' is not supported", CODE_INVALID)
        if not SUB_ACCOUNT.fullmatch(sub_account):
            raise ApiError(400, "subAccountId must match ^[A-Za-z0-9\\-._&]{3,50}$", CODE_INVALID)
        return handlers[method]

    def authenticate(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            return "subaccount:" + self.sub_account_id
        if self._is_download(request) and not self.store.options.download_requires_auth:
            return "download"  # whether links need the Bearer header is unknown: a knob decides
        return None

    def unauthorized(self, request: Request) -> Response:
        response = self.error(
            401, "Unauthorized: a valid Bearer API key is required", request, CODE_UNAUTHORIZED
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="8x8"'
        return response

    def error(self, status: int, message: str, request: Request, code: int | None = None) -> Response:
        body = {
            "code": code if code is not None else (2000 if status >= 500 else CODE_INVALID),
            "message": message,
            "errorId": str(uuid.uuid4()),
            "timestamp": format_epoch(time.time()),
        }
        return json_response(status, body)

    def rate_limited(self, retry_after: int, request: Request) -> Response:
        response = self.error(429, "Too many requests", request, CODE_RATE_LIMITED)
        response.headers["Retry-After"] = str(retry_after)
        return response

    @staticmethod
    def _is_download(request: Request) -> bool:
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        return match is not None and match.group(2) == "download"

    def _check_sub_account(self, request: Request) -> None:
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        assert match is not None
        if match.group(1) != self.sub_account_id:
            raise ApiError(403, f"Illegal sub-account {match.group(1)!r}", CODE_SUB_ACCOUNT)

    # ----------------------------------------------------------------------------------------- endpoints
    def _submit(self, request: Request, fault: Fault | None) -> Response:
        self._check_sub_account(request)
        body = json_object(request, required=False)
        today = int(time.time() // 86_400) * DAY_MS
        start, _ = _bound(body, "from", today - 7 * DAY_MS)
        end, end_is_date = _bound(body, "to", today)
        if start >= end:
            raise ApiError(400, "'from' must be before 'to'", CODE_INVALID)
        named_end = end
        if self.store.options.to_inclusive:
            end += DAY_MS if end_is_date else 1000  # the whole second (or day) named by `to`
        phone = body.get("phoneNumber")
        if phone is not None and (not isinstance(phone, str) or not _PHONE.fullmatch(phone)):
            raise ApiError(400, "phoneNumber must be an E.164 number, e.g. +6591234567", CODE_INVALID)
        countries = body.get("countries")
        if countries is not None and (
            not isinstance(countries, list)
            or not all(isinstance(c, str) and re.fullmatch(r"[A-Za-z]{2}", c) for c in countries)
        ):
            raise ApiError(400, 'countries must be ISO 3166 alpha-2 codes, e.g. ["US","SG"]', CODE_INVALID)
        limit = body.get("limit", 0)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ApiError(400, "limit must be an integer >= 0 (0 = unlimited)", CODE_INVALID)
        user_id = body.get("channelUserId")
        if user_id is not None and not isinstance(user_id, str):
            raise ApiError(400, "channelUserId must be a string", CODE_INVALID)
        if user_id is not None and self.store.dataset.product == "sms":
            raise ApiError(400, "channelUserId applies to Chat Apps only", CODE_INVALID)
        number = "+" + phone.lstrip("+") if phone else None
        rows = self.store.dataset.select(start, end, number, countries, limit, user_id)
        fail = fault is not None and fault.kind == "fail"
        job = self.store.create(
            body, rows, fail, (start, named_end) if self.store.options.export_size_bytes else None
        )
        return json_response(202, {"jobId": job.job_id})

    def _status(self, request: Request, fault: Fault | None) -> Response:
        self._check_sub_account(request)
        job = self._job_from_path(request)
        status = job.status
        body: dict[str, Any] = {"status": status}
        if status == "succeeded":
            base = f"{self.link_origin}/api/v1/subaccounts/{self.sub_account_id}/messages/download/"
            body["data"] = [base + part.token for part in job.parts]
            body["expires"] = _expires(job.expires_at)
        return json_response(200, body)

    def _cancel(self, request: Request, fault: Fault | None) -> Response:
        self._check_sub_account(request)
        job = self._job_from_path(request)
        self.store.cancel(job)
        return Response(204)

    def _download(self, request: Request, fault: Fault | None) -> Response:
        self._check_sub_account(request)
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        assert match is not None
        found = self.store.part(match.group(3) or "")
        if found is None:
            raise ApiError(404, "Download not found", CODE_GONE)
        job, index = found
        if job.status != "succeeded":
            raise ApiError(404, "Download not found", CODE_GONE)
        if time.time() >= job.expires_at:
            raise ApiError(410, "Download link has expired; start a new export job", CODE_GONE)
        part = job.parts[index]
        suffix = {"gzip": ".csv.gz", "zip": ".zip"}.get(part.compression or "", ".csv")
        headers = {
            # Served as text/csv whatever the bytes: 8x8 does not document compression, so a client must
            # look at the magic bytes.
            "Content-Type": "text/csv",
            "Content-Disposition": f'attachment; filename="sms-logs-{index + 1}{suffix}"',
            "ETag": part.etag,
        }
        response = serve_content(
            request,
            part.content,
            headers,
            fault,
            lambda headers: self._range_error(headers, request),
            in_thread=part.content.size > 1 << 20,  # big synthetic parts: build blocks off the loop
        )
        if fault is not None and fault.kind == "expire":
            self.store.expire(job)  # the link expires while this body is in flight: a resume gets 410
        return response

    def _range_error(self, headers: dict[str, str], request: Request) -> Response:
        response = self.error(416, "Requested range not satisfiable", request, CODE_INVALID)
        response.headers["Content-Range"] = headers["Content-Range"]  # bytes */size: what there is
        return response

    def _job_from_path(self, request: Request) -> Job:
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        assert match is not None
        job = self.store.get(match.group(3) or "")
        if job is None:
            raise ApiError(404, "Invalid jobId", CODE_JOB)
        return job



def _expires(epoch_seconds: float) -> str:
    """As the reference's example writes it, ``2020-10-25T06:58:41.74Z``: fraction without trailing zeros
    (Python 3.10's ``datetime.fromisoformat`` refuses two digits: a client must parse it leniently)."""
    stamp = format_epoch(epoch_seconds)
    whole, _, fraction = stamp[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def _bound(body: dict[str, Any], name: str, default_ms: int) -> tuple[int, bool]:
    """Epoch ms of ``from``/``to`` and whether it was a bare date."""
    value = body.get(name)
    if value is None:
        return default_ms, False
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ApiError(
            400,
            f"'{name}' must be yyyy-MM-dd, yyyy-MM-ddTHH:mm:ssZ or yyyy-MM-ddTHH:mm:ss+hh:mm "
            f"(seconds precision), e.g. 2025-01-02T00:00:00Z; got {value!r}",
            CODE_INVALID,
        )
    year, month, day, hour, minute, second, offset = match.groups()
    text = f"{year}-{month}-{day}T{hour or '00'}:{minute or '00'}:{second or '00'}{offset or 'Z'}"
    try:
        return to_epoch_ms(text), hour is None
    except ValueError:
        raise ApiError(400, f"'{name}' is not a valid date-time: {value!r}", CODE_INVALID) from None
