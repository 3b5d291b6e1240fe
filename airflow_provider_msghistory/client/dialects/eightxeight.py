"""8x8 CPaaS log export jobs (SMS and Chat Apps): one job polled by id, several files, no regenerate.

Facts in ``docs/vendors/8x8.md``. The bounds take whole seconds and the vendor does not say whether
``to`` is inclusive, so a covering window is asked for and the rows are cut to ``[start, end)`` by their
``createdat`` afterwards (``caps.exact_bounds = False``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow_provider_msghistory.client.auth import AuthFlow, bearer
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.datetimes import EXAMPLE, SECOND, zulu_seconds
from airflow_provider_msghistory.client.dialects.base import (
    Capabilities,
    Dialect,
    http_url,
    normalise_status,
    parse_expiry,
    path_segment,
)
from airflow_provider_msghistory.client.errors import ApiError, ExportExpiredError, UnexpectedResponseError
from airflow_provider_msghistory.client.models import ExportJob, ExportKind, ExportRequest, ExportStatus
from airflow_provider_msghistory.client.options import ConnectionOption
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.client.wire import ApiRequest, RawResponse

CODE_INVALID_JOB = 4018  # [doc] the 404 body's code for an unknown job
SUB_ACCOUNT = re.compile(r"^[A-Za-z0-9\-._&]{3,50}$")
E164 = re.compile(r"^\+?[1-9]\d{1,14}$")
COUNTRY = re.compile(r"^[A-Za-z]{2}$")
STATUS_MAP: dict[str, ExportStatus] = {
    "QUEUED": ExportStatus.PENDING,
    "RUNNING": ExportStatus.PENDING,
    "SUCCEEDED": ExportStatus.COMPLETED,
    "EMPTY": ExportStatus.EMPTY,
    "FAILED": ExportStatus.FAILED,
    "CANCELLED": ExportStatus.FAILED,
    "CANCELED": ExportStatus.FAILED,
    "ERROR": ExportStatus.FAILED,
}
# The SMS log columns as documented (the header of an export with no rows).
SMS_COLUMNS = (
    "umid,subaccountid,direction,country,operator,mcc,mnc,status_value,status_details,status_errorcode,"
    "status_errormessage,status_timestamp,msisdn,source,encoding,createdat,smscount,price_currency,"
    "price_persms,price_total,clientmessageid,clientbatchid,batchid,body"
)
FILTERS = ("phoneNumber", "countries", "limit", "channelUserId")


class EightByEightDialect(Dialect):
    """8x8 SMS or Chat Apps (the connection's host picks the product and region)."""

    name: ClassVar[str] = "8x8"
    caps: ClassVar[Capabilities] = Capabilities(
        tracking="job",
        links_in_job=True,
        link_auth=True,  # [unknown] whether links need it: sent, but only to the API's own origin
        cancel=True,
        exact_bounds=False,
        kinds=frozenset({ExportKind.MESSAGE_HISTORY}),
        auth_forms=("API key (Bearer)",),
    )
    row_time_column: ClassVar[str | None] = "createdat"
    status_column: ClassVar[str | None] = "status_value"
    # [unknown] 8x8 publishes no duration: half a minute is assumed for a day's logs; the triggerer learns
    # the real durations of the jobs it sees finish (client/cadence.py).
    typical_export_seconds: ClassVar[float | None] = 30.0
    placeholder_options: ClassVar[Mapping[str, Any]] = {"sub_account_id": "parse-time-check"}
    connection_options: ClassVar[tuple[ConnectionOption, ...]] = (
        ConnectionOption(
            "sub_account_id",
            "Sub-account id (8x8)",
            placeholder="acme_sms_01 (8x8 only)",
            description="8x8 only: the sub-account whose logs to export.",
        ),
    )
    forbidden_help: ClassVar[str] = (
        "Forbidden (403): the key may not read this sub-account's logs; check the connection's "
        "sub_account_id (8x8 code 1001: illegal sub-account) and the key's permissions in the Connect portal."
    )

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(config)
        raw = config.options.get("sub_account_id")
        text = raw.strip() if isinstance(raw, str) else ""
        if not SUB_ACCOUNT.match(text):
            shown = "missing" if raw in (None, "") else repr(raw)
            raise ValueError(
                f"sub_account_id: {shown} is not an 8x8 sub-account id (3-50 of A-Z a-z 0-9 - . _ &); set "
                'the connection extra {"vendor": "8x8", "sub_account_id": "acme_sms_01"}'
            )
        if config.username is not None:
            raise ValueError(
                "login: 8x8 authenticates with an API key (Bearer); leave login empty and put the key in "
                "the password field"
            )
        self.sub_account_id = text
        host = (urlsplit(config.base_url).hostname or "").lower()
        self.chat_apps = host.startswith("chatapps.")
        self.sms = host.startswith("sms.")
        self._jobs = f"/api/v1/subaccounts/{quote(text, safe='')}/messages/exports"

    def auth(self) -> AuthFlow:
        return bearer(self.config.api_key or "")

    # --- submission -----------------------------------------------------------------------------------
    def check(self, request: ExportRequest) -> None:
        super().check(request)
        for name in request.given():
            hint = " (use filters={'phoneNumber': '+6591234567'})" if name == "recipient" else ""
            raise ValueError(f"{name}: not accepted by 8x8 log exports{hint}")
        if request.window is None:
            raise ValueError(f"start: an 8x8 log export needs start and end, e.g. {EXAMPLE!r}")
        request.window.check_not_empty()
        self._filters(request.filters)

    def _filters(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        """The filters as the wire takes them; ``ValueError`` naming ``filters.<name>``."""
        body: dict[str, Any] = {}
        for name, value in filters.items():
            if name not in FILTERS:
                raise ValueError(f"filters: unknown 8x8 filter {name!r}; known: {', '.join(FILTERS)}")
            if value is None:
                continue
            if name == "phoneNumber":
                if not isinstance(value, str) or not E164.match(value.strip()):
                    raise ValueError(f"filters.phoneNumber: {value!r} is not E.164, e.g. '+6591234567'")
                body[name] = value.strip()
            elif name == "countries":
                items = value.split(",") if isinstance(value, str) else value
                if not isinstance(items, (list, tuple)) or not items:
                    raise ValueError(
                        f"filters.countries: expected ISO codes like ['US', 'SG'], got {value!r}"
                    )
                for item in items:
                    if not isinstance(item, str) or not COUNTRY.match(item.strip()):
                        raise ValueError(
                            f"filters.countries: {item!r} is not an ISO 3166 alpha-2 code like 'SG'"
                        )
                codes = [item.strip().upper() for item in items]
                body[name] = codes
            elif name == "limit":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"filters.limit: expected an integer >= 0 (0 = no limit), got {value!r}")
                body[name] = value
            else:
                if self.sms or not isinstance(value, str) or not value.strip():
                    why = "is a Chat Apps filter (chatapps.* hosts)" if self.sms else "must be a string"
                    raise ValueError(f"filters.channelUserId: {why}, e.g. 'US.1349...'")
                body[name] = value.strip()
        return body

    def asked_window(self, window: Window) -> Window:
        # ``to`` is ceil(end) + 1 s and may be inclusive to the second: rows up to 2 s past ceil(end).
        first, last = window.covering_seconds()
        return Window(first, last + SECOND)

    def submit_export(self, request: ExportRequest) -> ApiRequest:
        assert request.window is not None  # check() refuses a request without one
        first, last = request.window.covering_seconds()
        body: dict[str, Any] = {
            "from": zulu_seconds(first),
            "to": zulu_seconds(last),
            **self._filters(request.filters),
        }
        return ApiRequest("submit_export", "POST", self._jobs, json=body, creates_export=True)

    def parse_export_id(self, body: Any) -> str:
        job_id = body.get("jobId") if isinstance(body, Mapping) else None
        if not isinstance(job_id, str) or not job_id.strip():
            raise UnexpectedResponseError(None, "the response carries no jobId", "submit_export")
        return job_id.strip()

    # --- tracking, delivery, cancel -------------------------------------------------------------------
    def get_export(self, job_id: str) -> ApiRequest:
        return ApiRequest("get_export", "GET", f"{self._jobs}/{path_segment(job_id, 'b2f0c1…')}")

    def parse_export(self, job_id: str, body: Any) -> ExportJob:
        if not isinstance(body, Mapping):
            raise UnexpectedResponseError(None, "the job status is not a JSON object", "get_export")
        raw_status = body.get("status")
        status = normalise_status(raw_status, STATUS_MAP, f"8x8 job {job_id}")
        files = _file_urls(job_id, body.get("data"))
        expires_at = parse_expiry(body.get("expires"))
        if (
            status is ExportStatus.COMPLETED
            and expires_at is not None
            and expires_at <= datetime.now(timezone.utc)
        ):
            status = ExportStatus.EXPIRED  # no regenerate: decide() says a new export is needed
        return ExportJob(
            export_id=job_id,
            status=status,
            available=bool(files),
            raw_status="" if raw_status is None else str(raw_status),
            kind=ExportKind.MESSAGE_HISTORY.value,
            files=files,
            expires_at=expires_at,
        )

    def cancel_export(self, job_id: str) -> ApiRequest:
        return ApiRequest("cancel_export", "DELETE", f"{self._jobs}/{path_segment(job_id, 'b2f0c1…')}")

    def empty_csv_header(self, kind: ExportKind) -> bytes | None:
        # Only the SMS columns are documented for the API's files (Chat Apps' list is the portal's).
        return None if self.chat_apps else SMS_COLUMNS.encode() + b"\n"

    def check_connection(self) -> ApiRequest:
        # A status read of a job that cannot exist: 404 "Invalid jobId" proves key and sub-account.
        return ApiRequest(
            "check_connection", "GET", f"{self._jobs}/connection-check", ok_statuses=frozenset({404})
        )

    def unexpected_answer(self, request: ApiRequest, response: RawResponse) -> ApiError | None:
        body = response.body
        code = body.get("code") if isinstance(body, Mapping) else None
        if code == CODE_INVALID_JOB:
            return None
        if isinstance(code, int) and not isinstance(code, bool):  # 8x8's error body, another error (1001)
            status, headers = response.status_code, response.headers
            return self.error_for(request.endpoint, status, headers, body, response.text)
        return UnexpectedResponseError(
            response.status_code,
            f"the answer is not the 8x8 API's (no error body with code {CODE_INVALID_JOB} 'Invalid jobId'): "
            "check the connection's host, e.g. https://sms.8x8.com",
            request.endpoint,
        )

    def error_for(
        self, endpoint: str, status: int, headers: Mapping[str, str], body: Any, text: str
    ) -> ApiError:
        code = body.get("code") if isinstance(body, Mapping) else None
        if status == 410 or (code == 1300 and endpoint != "get_export"):
            return ExportExpiredError(
                status,
                f"{self.error_message(body, text)}; 8x8 cannot regenerate it: submit a new export",
                endpoint,
            )
        return super().error_for(endpoint, status, headers, body, text)


def _file_urls(job_id: str, data: Any) -> tuple[str, ...]:
    """The job's file URLs, each once, in order; an entry that is not an absolute http(s) URL fails the
    read naming it (a file skipped without a word is a part missing from the export)."""
    if data is None:
        return ()
    if not isinstance(data, list):
        raise UnexpectedResponseError(
            None, f"job {job_id}: 'data' should list the file URLs; got a {type(data).__name__}", "get_export"
        )
    urls: dict[str, None] = {}
    for number, entry in enumerate(data, 1):
        url = http_url(entry)
        if url is None:
            shown = repr(entry)[:120]
            raise UnexpectedResponseError(
                None,
                f"job {job_id}: file {number} of {len(data)} is not an absolute http(s) URL ({shown}); it "
                "cannot be downloaded, so the export cannot be stored whole",
                "get_export",
            )
        urls.setdefault(url)
    return tuple(urls)


DIALECT = EightByEightDialect
