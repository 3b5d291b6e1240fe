"""Messangi Reporting API v3: login keys, the e-mailed CSV report request and the paged JSON message log.

Written from ``shared/reference/messangi.md``. What the vendor publishes: the login (key in the
``authorization`` response header, 24 h), Bearer keys, the 92-day cap and its ``explain`` text, the
too-big ``explain`` text, the ``{"meta", "data"}`` envelope, channels S E P W R. Everything else here is
**provisional** (paths ``/v3/mlog/export`` and ``/v3/mlog``, the paging fields, the record fields, the
status codes of errors, the bad-sender text) and lives in this module and ``messangi_data`` alone.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..base import ApiError, EndpointHandler, VendorApp, int_param, json_object, json_response
from ..dataset import DAY_MS
from ..faults import Fault, Faults
from ..httpserver import Handler, Request, Response
from ..requestlog import REDACTED, RequestLog
from ..server import Emulator
from ..timeutil import to_epoch_ms
from .messangi_data import CHANNELS, STATUSES, MlogDataset, MlogRecord

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
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class ReportRequest:
    """An accepted CSV report request (the only trace an e-mailed report leaves).

    :param transaction_id: ``meta.transactionId`` of the answer.
    :param query: the query parameters as received.
    :param body: the JSON body as received.
    :param records: how many records the report holds.
    """

    transaction_id: str
    query: dict[str, str]
    body: dict[str, Any]
    records: int


class MessangiApp(VendorApp):
    """Routes the login, the report request and the message log; keys are static or issued by login."""

    def __init__(
        self,
        emulator: MessangiEmulator,
        dataset: MlogDataset,
        faults: Faults,
        log: RequestLog,
        latency: float,
    ) -> None:
        super().__init__(faults, log, latency)
        self.emu = emulator
        self.dataset = dataset
        self.keys: dict[str, float] = {}  # login key -> expiry (wall-clock seconds)
        self.logins = 0
        self.reports: list[ReportRequest] = []
        self.lock = threading.Lock()

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
        if hmac.compare_digest(key.encode(), self.emu.api_key.encode()):
            return "space"
        with self.lock:
            expires = self.keys.get(key)
        return "space" if expires is not None and time.time() < expires else None

    def unauthorized(self, request: Request) -> Response:
        key = request.headers.get("Authorization", "").partition(" ")[2]
        with self.lock:
            expired = key.strip() in self.keys
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
        user, password = body.get("username"), body.get("password")
        emu = self.emu
        if not (
            isinstance(user, str)
            and isinstance(password, str)
            and emu.username is not None
            and emu.password is not None
            and hmac.compare_digest(user.encode(), emu.username.encode())
            and hmac.compare_digest(password.encode(), emu.password.encode())
        ):
            raise ApiError(401, "Invalid username or password")
        key = secrets.token_urlsafe(32)
        with self.lock:
            self.keys[key] = time.time() + emu.key_ttl
            self.logins += 1
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
        if sender not in self.emu.report_senders:
            raise ApiError(400, BAD_SENDER_EXPLAIN)
        timezone = body.get("timezone")
        if not isinstance(timezone, str) or not _TIMEZONE.fullmatch(timezone):
            raise ApiError(400, "timezone is required, in GMT, e.g. GMT")
        if len(records) > self.emu.report_max_records:
            raise ApiError(400, TOO_BIG_EXPLAIN)
        meta = _meta(f"The report will be sent to {', '.join(emails)}")
        with self.lock:
            self.reports.append(ReportRequest(meta["transactionId"], dict(request.query), body, len(records)))
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
            statuses = query["status"].split(",")
            known = set().union(*STATUSES.values())
            if any(s not in known for s in statuses):
                raise ApiError(
                    400, "status must be comma-separated statuses without spaces, e.g. SENT,EXPIRED"
                )
        end_exclusive = end + 1 if self.emu.to_inclusive else end
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


class MessangiEmulator(Emulator):
    """Messangi's Reporting API v3 on loopback (``vendor="messangi"``), provisional wire.

    :param host: interface to bind.
    :param port: API port (0 = a free one).
    :param api_key: a long-lived key from the platform settings (always valid).
    :param username: login user (``None`` disables the login).
    :param password: login password.
    :param key_ttl: seconds a login key lives (the vendor: 24 h).
    :param messages: records in the message log.
    :param seed: seed of the dataset (keys and transaction ids are random).
    :param start: first day of the dataset (UTC midnight), OffsetDateTime string or aware datetime.
    :param days: days the dataset covers (default 200, more than two 92-day windows).
    :param latency: seconds added to every response.
    :param rate_limit: ``None`` (off) or ``(per_minute, burst_per_second)``; 429 carries ``Retry-After``.
    :param report_senders: the space's valid report senders; another gets the bad-sender error.
    :param report_max_records: a report holding more records gets the too-big error.
    :param to_inclusive: ``to`` includes its millisecond (``False``: exclusive); unknown at the vendor.
    :param request_log_limit: entries kept in the request log.
    """

    vendor = "messangi"

    def __init__(
        self,
        *,
        vendor: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "demo-key",
        username: str | None = "demo",
        password: str | None = "demo-password",
        key_ttl: float = DAY_SECONDS,
        messages: int = 4000,
        seed: int = 1,
        start: str | datetime = "2025-01-01T00:00:00Z",
        days: int = 200,
        latency: float = 0.0,
        rate_limit: tuple[int, int] | None = None,
        report_senders: Sequence[str] = ("reports@acme.example",),
        report_max_records: int = 1_000_000,
        to_inclusive: bool = True,
        request_log_limit: int = 100_000,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be a non-empty string, e.g. api_key='demo-key'")
        if key_ttl <= 0:
            raise ValueError("key_ttl must be > 0 seconds, e.g. key_ttl=86400")
        if report_max_records < 0:
            raise ValueError("report_max_records must be >= 0, e.g. report_max_records=1000")
        self.api_key = api_key
        self.username = username
        self.password = password
        self.key_ttl = key_ttl
        self.report_senders = tuple(report_senders)
        self.report_max_records = report_max_records
        self.to_inclusive = to_inclusive
        self.dataset = MlogDataset(messages, seed, to_epoch_ms(start), days)
        faults, log = Faults(endpoints=ENDPOINTS), RequestLog(request_log_limit)
        self._app: MessangiApp = MessangiApp(self, self.dataset, faults, log, latency)
        super().__init__(self._app, host=host, ports=(port,))
        self.set_rate_limit(rate_limit)

    def _handlers(self) -> tuple[Handler, ...]:
        return (self._app.handle_api,)

    def _started(self) -> None:
        """Nothing to wire: Messangi hands out no links."""

    def airflow_conn_json(self, login: bool = False, **extra: Any) -> str:
        """The API key alone (Bearer), or ``login`` + password (``login=True``); ``extra`` adds extras such
        as ``report_emails`` and ``report_sender``."""
        conn: dict[str, Any] = {"conn_type": "msghistory", "host": self.base_url}
        if login:
            conn.update(login=self.username, password=self.password)
        else:
            conn["password"] = self.api_key
        conn["extra"] = {"vendor": "messangi", **extra}
        return json.dumps(conn)

    # ------------------------------------------------------------------------------------------- state
    @property
    def report_requests(self) -> list[ReportRequest]:
        """Accepted report requests, oldest first."""
        with self._app.lock:
            return list(self._app.reports)

    @property
    def logins(self) -> int:
        """Successful logins so far."""
        with self._app.lock:
            return self._app.logins

    def expire_keys(self) -> None:
        """Every login key issued so far expires now (the static ``api_key`` stays valid)."""
        with self._app.lock:
            self._app.keys = dict.fromkeys(self._app.keys, 0.0)

    def login_key(self) -> str:
        """Issue a login key without HTTP (as ``POST /kingslanding/login`` would)."""
        key = secrets.token_urlsafe(32)
        with self._app.lock:
            self._app.keys[key] = time.time() + self.key_ttl
        return key

    def expected_records(
        self,
        start: str | datetime,
        end: str | datetime,
        channel: str | None = None,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """``/v3/mlog`` records created in the half-open ``[start, end)``, oldest first (every channel
        when ``channel`` is ``None``; ``status`` may list several, comma-separated)."""
        statuses = status.split(",") if status else None
        records = self.dataset.select(to_epoch_ms(start), to_epoch_ms(end), channel, statuses)
        return [r.to_json() for r in records]
