"""8x8 CPaaS log export requests: start (POST), poll (GET), cancel (DELETE), download parts (API host).

Written from ``docs/vendors/8x8.md``. Where the vendor publishes nothing this module makes a choice and
says so (a knob where a provider must not rely on it): ``to`` covers its whole second (``to_inclusive``),
the 429 error code, the download link's expiry answer (410, code 1300).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base import ApiError, EndpointHandler, VendorApp, json_object, json_response
from ..content import BytesContent, Content
from ..downloads import serve_content
from ..faults import Fault, Faults
from ..httpserver import Request, Response
from ..requestlog import RequestLog
from ..timeutil import DAY_MS, format_epoch, to_epoch_ms
from .eightxeight_data import (
    LogDataset,
    LogRow,
    gzip_bytes,
    mismatched,
    render_csv,
    synthetic_parts,
    zip_bytes,
)

ENDPOINTS = ("submit", "status", "cancel", "download")
SUB_ACCOUNT = re.compile(r"[A-Za-z0-9\-._&]{3,50}")
_PREFIX = re.compile(r"/api/v1/subaccounts/([^/]+)/messages/(exports|download)(?:/([^/]+))?")
# The three documented forms: yyyy-MM-dd, yyyy-MM-ddTHH:mm:ssZ, yyyy-MM-ddTHH:mm:ss+hh:mm (seconds at most).
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2}))?")
_PHONE = re.compile(r"\+?[1-9]\d{6,14}")
WORKING = ("queued", "running")
OUTCOMES = ("succeeded", "empty", "failed", "error")
CODE_INVALID, CODE_SUB_ACCOUNT, CODE_UNAUTHORIZED, CODE_JOB = 1000, 1001, 1200, 4018
CODE_GONE = 1300  # "not found / expired"
CODE_RATE_LIMITED = 1100  # not published: any code will do, the status and Retry-After are what count
MONTH_SECONDS = 30 * 86_400


@dataclass
class Part:
    """One file of a job: its content as served (CSV, gzip or zip), download token and ETag."""

    token: str
    content: Content
    compression: str | None
    etag: str

    @classmethod
    def of(cls, content: Content, compression: str | None = None) -> Part:
        token = secrets.token_urlsafe(24)
        return cls(token, content, compression, '"' + hashlib.sha256(token.encode()).hexdigest()[:32] + '"')


@dataclass
class Job:
    """One export job (times are wall-clock epoch seconds).

    :param job_id: the opaque 64-character id.
    :param params: the request body as received.
    :param rows: the rows the job holds (after the window, filters and ``limit``).
    :param parts: the files it serves once succeeded.
    :param outcome: ``succeeded`` / ``empty`` / ``failed`` / ``error`` reached at ``ready_at``.
    """

    job_id: str
    params: dict[str, Any]
    rows: list[LogRow]
    parts: list[Part]
    created_at: float
    ready_at: float
    outcome: str
    link_ttl: float
    cancelled: bool = False
    expires_override: float | None = None
    deletes: int = 0

    def status_at(self, now: float) -> str:
        if self.cancelled:
            return "cancelled"
        if now < self.ready_at:
            return "queued" if now < (self.created_at + self.ready_at) / 2 else "running"
        return self.outcome

    @property
    def status(self) -> str:
        return self.status_at(time.time())

    @property
    def expires_at(self) -> float:
        return self.expires_override if self.expires_override is not None else self.ready_at + self.link_ttl


@dataclass
class Options:
    """How jobs are built (see :class:`EightByEightEmulator` for each knob)."""

    export_delay: float
    link_ttl: float
    parts: int
    gzip_parts: bool | Sequence[int]
    zip_parts: bool | Sequence[int]
    header_mismatch: int | None
    job_outcome: str | None
    to_inclusive: bool
    line_terminator: str
    download_requires_auth: bool
    export_size_bytes: int | None


class EightByEightApp(VendorApp):
    """Routes ``/api/v1/subaccounts/{id}/messages/exports[/{jobId}]`` and ``.../download/{token}``."""

    def __init__(
        self,
        api_key: str,
        sub_account_id: str,
        dataset: LogDataset,
        options: Options,
        faults: Faults,
        log: RequestLog,
        latency: float,
    ) -> None:
        super().__init__(faults, log, latency)
        self.api_key = api_key
        self.sub_account_id = sub_account_id
        self.dataset = dataset
        self.options = options
        self.link_origin = ""  # scheme://host:port the download links name (set once the server listens)
        self.jobs: dict[str, Job] = {}
        self.parts: dict[str, tuple[Job, int]] = {}
        self.cancelled: list[str] = []
        self.lock = threading.RLock()

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
        if self._is_download(request) and not self.options.download_requires_auth:
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
        if self.options.to_inclusive:
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
        if user_id is not None and self.dataset.product == "sms":
            raise ApiError(400, "channelUserId applies to Chat Apps only", CODE_INVALID)
        number = "+" + phone.lstrip("+") if phone else None
        rows = self.dataset.select(start, end, number, countries, limit, user_id)
        fail = fault is not None and fault.kind == "fail"
        job = self.create_job(
            body, rows, fail, (start, named_end) if self.options.export_size_bytes else None
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
        with self.lock:
            job.deletes += 1
            self.cancelled.append(job.job_id)
            if job.status in WORKING:
                job.cancelled = True
        return Response(204)

    def _download(self, request: Request, fault: Fault | None) -> Response:
        self._check_sub_account(request)
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        assert match is not None
        with self.lock:
            found = self.parts.get(match.group(3) or "")
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
            self.expire(job)  # the link expires while this body is in flight: a resume gets 410
        return response

    def _range_error(self, headers: dict[str, str], request: Request) -> Response:
        response = self.error(416, "Requested range not satisfiable", request, CODE_INVALID)
        response.headers["Content-Range"] = headers["Content-Range"]  # bytes */size: what there is
        return response

    def _job_from_path(self, request: Request) -> Job:
        match = _PREFIX.fullmatch(request.path.rstrip("/"))
        assert match is not None
        with self.lock:
            job = self.jobs.get(match.group(3) or "")
        if job is None:
            raise ApiError(404, "Invalid jobId", CODE_JOB)
        return job

    # -------------------------------------------------------------------------------------------- jobs
    def create_job(
        self,
        params: dict[str, Any],
        rows: list[LogRow],
        fail: bool = False,
        synthetic_window: tuple[int, int] | None = None,
    ) -> Job:
        """A new job; ``synthetic_window`` (with ``export_size_bytes``) serves big synthetic parts instead."""
        options = self.options
        outcome = options.job_outcome or ("succeeded" if rows or synthetic_window else "empty")
        if fail:
            outcome = "failed"
        parts: list[Part] = []
        if outcome == "succeeded" and synthetic_window is not None and options.export_size_bytes:
            big = synthetic_parts(
                options.export_size_bytes, options.parts, *synthetic_window, options.line_terminator
            )
            parts = [Part.of(content) for content in big]
        elif outcome == "succeeded":
            parts = self._parts(rows)
        now = time.time()
        job = Job(
            job_id=secrets.token_hex(32),
            params=dict(params),
            rows=rows,
            parts=parts,
            created_at=now,
            ready_at=now + options.export_delay,
            outcome=outcome,
            link_ttl=options.link_ttl,
        )
        with self.lock:
            self.jobs[job.job_id] = job
            for index, part in enumerate(parts):
                self.parts[part.token] = (job, index)
        return job

    def _parts(self, rows: list[LogRow]) -> list[Part]:
        options = self.options
        count = options.parts
        size = -(-len(rows) // count) if rows else 0
        parts = []
        for index in range(count):
            chunk = rows[index * size : (index + 1) * size]
            columns = self.dataset.columns
            if options.header_mismatch == index:
                columns = mismatched(columns)
            data = render_csv(columns, chunk, options.line_terminator)
            compression = None
            if _chosen(options.zip_parts, index):
                data, compression = zip_bytes(data, f"sms-logs-{index + 1}.csv"), "zip"
            elif _chosen(options.gzip_parts, index):
                data, compression = gzip_bytes(data), "gzip"
            parts.append(Part.of(BytesContent(data), compression))
        return parts

    def expire(self, job: Job) -> None:
        with self.lock:
            job.expires_override = min(job.expires_at, time.time())


def _expires(epoch_seconds: float) -> str:
    """As the reference's example writes it, ``2020-10-25T06:58:41.74Z``: fraction without trailing zeros
    (Python 3.10's ``datetime.fromisoformat`` refuses two digits: a client must parse it leniently)."""
    stamp = format_epoch(epoch_seconds)
    whole, _, fraction = stamp[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def _chosen(which: bool | Sequence[int], index: int) -> bool:
    return which if isinstance(which, bool) else index in which


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
