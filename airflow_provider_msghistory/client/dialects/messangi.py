"""Messangi Reporting API v3: e-mailed CSV reports of at most 92 days, the paged JSON message log, login keys.

Facts in ``docs/vendors/messangi.md``. Published: the login (``POST /kingslanding/login``, the key in
the ``authorization`` response header, 24 h), Bearer keys, the ``{"meta", "data"}`` envelope, the query
(``from``/``to`` Zulu with milliseconds, one channel of S E P W R, comma-separated statuses), the report
body's fields, the 92-day cap and the two ``explain`` texts. **Provisional** (not published anywhere
retrievable), and therefore here alone: the paths ``/v3/mlog/export`` and ``/v3/mlog``, the paging fields,
the record fields, the ``transactionId`` as the report's handle, the bad-sender text.

The report is e-mailed: nothing to poll, nothing to download (``tracking="none"``, ``delivery="email"``).
Whether ``to`` is inclusive is unknown: a report asks for ``start`` and ``end - 1 ms`` (split windows never
overlap, whichever reading holds); message-log records are cut to ``[start, end)`` by ``createdAt``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from airflow_provider_msghistory.client.auth import AuthFlow, bearer
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.datetimes import EXAMPLE, MS, ceil_to, floor_to, zulu_ms
from airflow_provider_msghistory.client.dialects.base import (
    Capabilities,
    Dialect,
    MessageListSpec,
)
from airflow_provider_msghistory.client.errors import (
    ApiError,
    ApiValidationError,
    AuthenticationError,
    UnexpectedResponseError,
)
from airflow_provider_msghistory.client.login import LoginFlow
from airflow_provider_msghistory.client.models import (
    ExportKind,
    ExportRequest,
    email_address,
    email_addresses,
)
from airflow_provider_msghistory.client.options import ConnectionOption
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

LOGIN_PATH = "/kingslanding/login"  # [doc]
REPORT_PATH = "/v3/mlog/export"  # [provisional]
MLOG_PATH = "/v3/mlog"  # [doc] for GET; the export sub-path is provisional
KEY_LIFETIME = 24 * 3600.0  # [doc] a login key lives 24 h
MAX_WINDOW = timedelta(days=92)  # [doc]
MAX_PAGE_SIZE = 1000  # [provisional]
# [doc] one channel per request; the long names are accepted for readability.
CHANNEL_CODES = ("S", "E", "P", "W", "R")
CHANNEL_NAMES = {"SMS": "S", "EMAIL": "E", "PUSH": "P", "WHATSAPP": "W", "RCS": "R"}
CHANNELS = {**{code: code for code in CHANNEL_CODES}, **CHANNEL_NAMES}
FILTERS = ("channel", "status")
# [provisional] the record fields, in the order a CSV lists them first
RECORD_FIELDS = (
    "id", "channel", "direction", "sender", "recipient", "status", "statusDescription", "campaignId",
    "createdAt", "updatedAt",
)  # fmt: skip
# [doc] the explain texts (matched loosely: the vendor's wording may drift); the sender one is provisional.
RANGE_TEXT = "date range exceeds"
TOO_BIG_TEXT = "too big"
SENDER_TEXT = "sender"


class MessangiDialect(Dialect):
    """Messangi (``https://elastic.messangi.me``; staging ``https://staging-aws.messangi.me``)."""

    name: ClassVar[str] = "messangi"
    caps: ClassVar[Capabilities] = Capabilities(
        tracking="none",
        delivery="email",
        max_window=MAX_WINDOW,
        exact_bounds=False,  # inclusivity of `to` unknown: the message log is cut by createdAt
        kinds=frozenset({ExportKind.MESSAGE_HISTORY}),
        auth_forms=("API key (Bearer)", "login + password (24 h key)"),
    )
    row_time_column: ClassVar[str | None] = "createdAt"
    status_column: ClassVar[str | None] = "status"
    message_list: ClassVar[MessageListSpec | None] = MessageListSpec(
        channels=CHANNEL_CODES,
        statuses=(),  # per channel and unpublished: passed on, comma-separated without spaces
        max_page_size=MAX_PAGE_SIZE,
        fields=RECORD_FIELDS,
        time_fields=("createdAt",),
        aliases=CHANNEL_NAMES,
        id_fields=("id",),
        page_size_param="size",
    )
    # Parse-time checks cannot see the connection's extras: stand-ins let a DAG relying on them parse.
    placeholder_options: ClassVar[Mapping[str, Any]] = {
        "report_emails": ["parse-time@example.invalid"],
        "report_sender": "parse-time@example.invalid",
    }
    connection_options: ClassVar[tuple[ConnectionOption, ...]] = (
        ConnectionOption(
            "report_emails",
            "Report recipients (Messangi)",
            placeholder="ops@acme.example, audit@acme.example (Messangi only)",
            description=(
                "Messangi only: where e-mailed reports go by default, comma-separated (or a JSON list)."
            ),
        ),
        ConnectionOption(
            "report_sender",
            "Report sender (Messangi)",
            placeholder="reports@acme.example (Messangi only)",
            description="Messangi only: the default sender of e-mailed reports (a sender of the space).",
        ),
    )

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config)
        options = config.options
        self.report_emails = email_addresses(_blank_none(options.get("report_emails")), "report_emails")
        self.report_sender = email_address(_blank_none(options.get("report_sender")), "report_sender")

    def auth(self) -> AuthFlow:
        if self.config.username is None:
            return bearer(self.config.api_key or "")
        return LoginFlow(
            base_url=self.config.base_url,
            username=self.config.username,
            password=self.config.password or "",
            login=ApiRequest(
                "login",
                "POST",
                LOGIN_PATH,
                json={"username": self.config.username, "password": self.config.password},
            ),
            read_key=self._read_login,
            lifetime=KEY_LIFETIME,
        )

    def _read_login(self, response: RawResponse) -> str:
        if response.status_code >= 400:
            error = self.error_for("login", response.status_code, response.headers, response.body, "")
            if isinstance(error, AuthenticationError):
                error = AuthenticationError(
                    response.status_code,
                    f"login rejected: check the connection's login and password (or leave login empty and "
                    f"put a platform API key in the password field). Messangi said: {error.message}",
                    "login",
                )
            raise error
        scheme, _, key = str(response.headers.get("authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise UnexpectedResponseError(
                response.status_code,
                "the login answer carries no 'authorization: Bearer ...' header",
                "login",
            )
        return key.strip()

    # --- submission -----------------------------------------------------------------------------------
    def check(self, request: ExportRequest) -> None:
        super().check(request)
        for name in ("list_ids", "contact_ids"):
            if name in request.given():
                raise ValueError(f"{name}: not accepted by Messangi message reports")
        if request.window is None:
            raise ValueError(f"start: a Messangi report needs start and end, e.g. {EXAMPLE!r}")
        request.window.check_not_empty()
        self._filters(request.filters)
        self.email_recipients(request)
        self._sender(request)

    def plan(self, request: ExportRequest) -> list[ExportRequest]:
        # One channel per request ([doc]): several mean one request per channel per window.
        channels = self._filters(request.filters).get("channel") or [None]
        planned = []
        for piece in super().plan(request):
            for channel in channels:
                filters = dict(request.filters)
                if channel is not None:
                    filters["channel"] = channel
                planned.append(dataclasses.replace(piece, filters=filters))
        return planned

    def submit_export(self, request: ExportRequest) -> ApiRequest:
        assert request.window is not None  # check() refuses a request without one
        filters = self._filters(request.filters)
        channels = filters.pop("channel", None) or []
        if len(channels) > 1:
            raise ValueError("filters.channel: one channel per Messangi request; plan() splits them")
        first, last = request.window.inclusive_ms()
        params: dict[str, Any] = {"from": zulu_ms(first), "to": zulu_ms(last), **filters}
        if channels:
            params["channel"] = channels[0]
        for name, wire in (("recipient", "recipient"), ("campaign_id", "campaignId"), ("sender", "sender")):
            value = getattr(request, name)
            if value is not None:
                params[wire] = value
        body = {
            "emails": list(self.email_recipients(request)),
            "sender": self._sender(request),
            "timezone": "GMT",
        }
        return ApiRequest("submit_export", "POST", REPORT_PATH, params=params, json=body, creates_export=True)

    def parse_export_id(self, body: Any) -> str:
        meta = body.get("meta") if isinstance(body, Mapping) else None
        transaction = meta.get("transactionId") if isinstance(meta, Mapping) else None
        if not isinstance(transaction, str) or not transaction.strip():
            raise UnexpectedResponseError(None, "the answer carries no meta.transactionId", "submit_export")
        return transaction.strip()

    def email_recipients(self, request: ExportRequest) -> tuple[str, ...]:
        recipients = request.email_recipients or self.report_emails
        if not recipients:
            raise ValueError(
                "email_recipients: Messangi e-mails its reports; pass email_recipients=['ops@acme.example'] "
                'or set the connection extra {"report_emails": ["ops@acme.example"]}'
            )
        return recipients

    def _sender(self, request: ExportRequest) -> str:
        sender = request.email_sender or self.report_sender
        if not sender:
            raise ValueError(
                "email_sender: Messangi needs the report's sender (a valid sender of the space); pass "
                "email_sender='reports@acme.example' or set the connection extra {\"report_sender\": "
                '"reports@acme.example"}'
            )
        return sender

    def _filters(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """The filters as the wire takes them (``channel`` as a list of codes); ``ValueError`` naming
        ``filters.<name>``."""
        wire: dict[str, Any] = {}
        for name, value in filters.items():
            if name not in FILTERS:
                hint = " (recipient, sender and campaign_id are operator arguments)"
                raise ValueError(
                    f"filters: unknown Messangi filter {name!r}; known: {', '.join(FILTERS)}{hint}"
                )
            if value is None:
                continue
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not items:
                raise ValueError(f"filters.{name}: expected a string or a list of strings, got {value!r}")
            texts = []
            for item in items:
                if not isinstance(item, str) or not item.strip() or " " in item.strip():
                    raise ValueError(f"filters.{name}: {item!r} is not a {name} like 'S' or 'SENT'")
                texts.append(item.strip().upper())
            if name == "channel":
                unknown = [t for t in texts if t not in CHANNELS]
                if unknown:
                    raise ValueError(
                        f"filters.channel: {unknown[0]!r} is not a Messangi channel; use S, E, P, W, R "
                        "(or SMS, EMAIL, PUSH, WHATSAPP, RCS)"
                    )
                wire[name] = list(dict.fromkeys(CHANNELS[t] for t in texts))
            else:
                wire[name] = ",".join(dict.fromkeys(texts))  # [doc] comma-separated, no spaces
        return wire

    # --- message log (client/history.py pages it) ------------------------------------------------------
    def message_history(
        self, channel: str, start: datetime, end: datetime, status: str | None, page: int, limit: int
    ) -> ApiRequest:
        code = CHANNELS.get(str(channel).strip().upper())
        if code is None:
            raise ValueError(
                f"channel: {channel!r} is not a Messangi channel; use S, E, P, W, R "
                "(or SMS, EMAIL, PUSH, WHATSAPP, RCS)"
            )
        params: dict[str, Any] = {
            "from": zulu_ms(start),
            "to": zulu_ms(end),
            "channel": code,
            "page": page,
            "size": limit,
        }
        if status is not None:
            params["status"] = self._filters({"status": status})["status"]
        return ApiRequest("message_history", "GET", MLOG_PATH, params=params)

    def history_bounds(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        # Inclusivity of `to` unknown: ask for [floor(start), ceil(end)] in milliseconds, which covers the
        # window either way; records outside [start, end) are dropped by createdAt (message_list.time_fields).
        first, stop = floor_to(start, MS), ceil_to(end, MS)
        if first >= stop:
            raise ValueError(f"end: {end.isoformat()} is not after start {start.isoformat()}")
        if stop - first > MAX_WINDOW:
            raise ValueError(f"end: a Messangi message-log read spans at most {MAX_WINDOW.days} days")
        return first, stop

    def parse_history(self, body: Any) -> list[dict[str, Any]]:
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, list):
            raise UnexpectedResponseError(None, "the message log carries no 'data' array", "message_history")
        return [r for r in data if isinstance(r, dict)]

    # --- connection check -----------------------------------------------------------------------------
    def check_connection(self) -> ApiRequest:
        # One record of a one-millisecond window: the cheapest authenticated read.
        now = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=1)
        first, last = Window(now, now + timedelta(milliseconds=2)).inclusive_ms()
        params = {"from": zulu_ms(first), "to": zulu_ms(last), "page": 0, "size": 1}
        return ApiRequest("check_connection", "GET", MLOG_PATH, params=params)

    def parse_connection_check(self, body: Any) -> None:
        self.parse_history(body)

    # --- errors ---------------------------------------------------------------------------------------
    def error_message(self, body: Any, text: str) -> str:
        meta = body.get("meta") if isinstance(body, Mapping) else None
        explain = meta.get("explain") if isinstance(meta, Mapping) else None
        if isinstance(explain, str) and explain.strip():
            return explain.strip()
        return super().error_message(body, text)

    def error_for(
        self, endpoint: str, status: int, headers: Mapping[str, str], body: Any, text: str
    ) -> ApiError:
        error = super().error_for(endpoint, status, headers, body, text)
        if not isinstance(error, ApiValidationError):
            return error
        said = error.message
        lowered = said.lower()
        if RANGE_TEXT in lowered:
            message = (
                f"the window is longer than Messangi's {MAX_WINDOW.days}-day limit "
                f"(Messangi said: {said!r}); the provider splits longer windows, so a clock or rounding "
                "disagreement is likely: report it"
            )
        elif TOO_BIG_TEXT in lowered:
            message = (
                f"the report is too big for Messangi to e-mail (Messangi said: {said!r}); ask for narrower "
                "windows (a shorter schedule interval, or nearer start_datetime/end_datetime), filter by "
                "channel or status, or load the message log with MsgHistoryMessagesToStorageOperator"
            )
        elif SENDER_TEXT in lowered:
            message = (
                f"email_sender: Messangi refused the report's sender (Messangi said: {said!r}); use a sender "
                "address of the Messangi space (email_sender= or the connection extra report_sender)"
            )
        else:
            return error
        return ApiValidationError(status, message, endpoint)


def _blank_none(value: Any) -> Any:
    return None if value is None or value == "" or value == [] else value


DIALECT = MessangiDialect
