"""Submit a message-history, delivery-reports or contacts export and wait until it can be downloaded."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    ResumableJobMixin,
    conf,
)

from airflow_provider_msghistory.arguments import (
    RUN_INTERVAL_END,
    RUN_INTERVAL_START,
    BadArgumentError,
    check_run_interval,
    count,
    is_templated,
    positive_seconds,
    time_zone,
    with_interval_advice,
)
from airflow_provider_msghistory.client.cancel import CANCEL_TIMEOUT, cancel_within
from airflow_provider_msghistory.client.datetimes import EXAMPLE, format_api, parse_aware
from airflow_provider_msghistory.client.dialects import DEFAULT_VENDOR, parse_time_dialect
from airflow_provider_msghistory.client.errors import ApiValidationError, MsgHistoryError
from airflow_provider_msghistory.client.models import ExportKind, ExportRequest
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.waiting import ExportWaiter
from airflow_provider_msghistory.client.windows import Window, restated_start
from airflow_provider_msghistory.hooks.connection import vendor_visible_at_parse
from airflow_provider_msghistory.utils.waits import (
    defer_wait,
    finished_event,
    wait_in_worker,
)

if TYPE_CHECKING:
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.dialects import Dialect
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

# task_state_store key of the submitted export (renaming it breaks in-flight retries).
EXPORT_ID_KEY = "msghistory_export_id"
# task_state_store key of the e-mailed reports already accepted: {piece key: transaction id}.
EMAIL_REQUESTS_KEY = "msghistory_email_requests"
_FIELDS = ("sender", "recipient", "campaign_id", "list_ids", "contact_ids")
_EMAIL_FIELDS = ("email_recipients", "email_sender")


class MsgHistoryExportOperator(ResumableJobMixin, BaseOperator):
    """Submit an export and (by default) wait until its files are available for download.

    The window is half-open ``[start_datetime, end_datetime)`` and defaults to the run's data interval (a
    run without one, a manual run with no logical date on Airflow 3, fails at task start saying what to
    pass instead).
    How it reaches the vendor is the vendor's business: Qlara takes inclusive millisecond bounds
    (``start``, ``end - 1 ms``); 8x8 takes whole seconds of unknown inclusivity, so a covering window is
    asked for and the transfer keeps only the rows inside ``[start, end)``. Either way consecutive runs
    neither overlap nor leave a gap. Contacts exports take no window; a delivery-reports export takes
    ``campaign_id`` alone, or the window.

    Static arguments are validated when the DAG is parsed against the vendor's rules (the vendor named by
    ``vendor``, else the connection's when it is an ``AIRFLOW_CONN_*`` variable, else the default
    ``qlara``); templated ones, and the connection's actual vendor, at task start before any request (a bad
    rendered value fails without retries: a retry would render it the same).
    Waiting happens in the triggerer (``deferrable=True``) or in the worker; both drive the same wait
    (:mod:`airflow_provider_msghistory.client.waiting`).

    Cancel: a killed or timed-out task cancels the export where the vendor can (8x8): in the worker via
    ``on_kill``; when deferred, the trigger cancels it on Airflow >= 3.3, and best effort below (only when
    the task is no longer deferred). Qlara has no cancel call: its exports run to the end.

    Crash safety: on Airflow >= 3.3 the export id is saved in ``task_state_store`` right after submission,
    so a retry after a worker crash, a timeout or a lost trigger reconnects to the live export instead of
    submitting a duplicate (pass ``durable=False`` to opt out). On older Airflow every try submits anew.

    Returns (XCom) ``{"export_id", "export_type", "window": {"start", "end"} | None, "status",
    "msghistory_conn_id", "vendor"}``: ``export_id`` is the provider's id (the vendor's job id, plus the
    window when rows must be cut to it: pass it as is to the transfer or sensor); ``window`` holds the
    inclusive millisecond bounds of the rows the export stands for; ``status`` the export's final status;
    the connection and vendor it was made on (a transfer or sensor downstream on another connection fails
    at its start, saying so).

    E-mailed reports (vendors whose capabilities say ``delivery="email"``, Messangi): the vendor mails the
    CSV to ``email_recipients`` from ``email_sender`` (default: the connection's extras ``report_emails``
    and ``report_sender``); nothing comes back to wait for or download, so the task returns once every
    request is accepted and logs where the reports will arrive. A window longer than the vendor's cap (92
    days) is split into contiguous, non-overlapping pieces, submitted one by one (several channels: one
    request per channel per piece). The XCom adds ``delivery: "email"``, ``recipients`` and ``requests``
    (per request: ``start`` and ``end`` as sent, inclusive milliseconds, its ``filters`` and the vendor's
    ``transaction_id``); ``export_id`` is the transaction ids joined by commas, ``status`` ``"ACCEPTED"``.
    On Airflow >= 3.3 each accepted request is recorded in ``task_state_store``, so a retry after a
    partial failure sends only the rest (no report is mailed twice). A request the vendor refuses (a
    report too big, a bad sender) fails the task at once, naming the piece.

    :param export_type: ``"message_history"``, ``"delivery_reports"`` or ``"contacts"`` (8x8: only
        ``"message_history"``).
    :param start_datetime: aware window start (included); datetime or ISO-8601 string with offset. Templated.
    :param end_datetime: aware window end (excluded). Templated.
    :param sender: message-history filter on the sender (Qlara). Templated.
    :param recipient: message-history filter on the recipient (Qlara). Templated.
    :param campaign_id: delivery-reports scope (Qlara). Templated.
    :param list_ids: contacts scope: these lists' contacts (Qlara). Templated.
    :param contact_ids: contacts scope: these contacts (Qlara). Templated.
    :param filters: the vendor's own filters by their API names, e.g. 8x8's ``{"phoneNumber":
        "+6591234567", "countries": ["SG"], "limit": 0, "channelUserId": "..."}``, Messangi's
        ``{"channel": ["S", "W"], "status": "SENT,EXPIRED"}``. Templated.
    :param email_recipients: where an e-mailed report goes (required for a vendor that e-mails its
        exports unless the connection has ``report_emails``; refused for the others). Templated.
    :param email_sender: the report's sender address (same rules; extra ``report_sender``). Templated.
    :param vendor: the connection's vendor, for parse-time checks when the connection is not an
        environment variable (``"8x8"``); checked against the connection at task start.
    :param msghistory_conn_id: Airflow connection of the API.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status polls (> 0).
    :param timeout: seconds to wait for the export before failing (> 0).
    :param wait_for_completion: ``False`` returns right after submitting (status ``"SUBMITTED"``).
    :param max_regenerations: how many times an expired download link is regenerated while waiting
        (vendors that can regenerate).
    :param restate_days: widen the window to ``[start - restate_days days, end)`` so a partitioned transfer
        (``partition_by``) rewrites the trailing days with their settled statuses (default 0: the window as
        given). The export id then carries the widened window and when the vendor was asked, so the
        transfer learns both from the usual ``xcom_pull``.
    :param partition_timezone: the IANA zone whose calendar days ``restate_days`` counts (default ``"UTC"``;
        pass the transfer's ``partition_timezone``, so a restated window starts at a local midnight even
        across a DST change).
    """

    template_fields: Sequence[str] = (
        "start_datetime",
        "end_datetime",
        "sender",
        "recipient",
        "campaign_id",
        "list_ids",
        "contact_ids",
        "filters",
        "email_recipients",
        "email_sender",
    )
    external_id_key = EXPORT_ID_KEY
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        export_type: str,
        start_datetime: datetime | str | None = RUN_INTERVAL_START,
        end_datetime: datetime | str | None = RUN_INTERVAL_END,
        sender: str | None = None,
        recipient: str | None = None,
        campaign_id: str | int | None = None,
        list_ids: Sequence[str | int] | str | None = None,
        contact_ids: Sequence[str | int] | str | None = None,
        filters: Mapping[str, Any] | None = None,
        email_recipients: Sequence[str] | str | None = None,
        email_sender: str | None = None,
        vendor: str | None = None,
        msghistory_conn_id: str = "msghistory_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float = 3600,
        wait_for_completion: bool = True,
        max_regenerations: int = 3,
        restate_days: int = 0,
        partition_timezone: str = "UTC",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.restate_days = count(restate_days, "restate_days", "3", minimum=0)
        self.partition_timezone = partition_timezone
        self._zone = time_zone(partition_timezone, "partition_timezone")
        kind = _parse_kind(export_type)
        defaulted_window = start_datetime == RUN_INTERVAL_START and end_datetime == RUN_INTERVAL_END
        if kind is ExportKind.CONTACTS and defaulted_window:
            start_datetime = end_datetime = None  # contacts have no window; ignore the run's interval
        elif kind is ExportKind.DELIVERY_REPORTS and campaign_id is not None and defaulted_window:
            start_datetime = end_datetime = None  # campaign alone scopes it
        # Whether the window is the run's data interval, which a run without a logical date lacks.
        self._window_from_run = start_datetime == RUN_INTERVAL_START and end_datetime == RUN_INTERVAL_END
        self._window_templated = is_templated(start_datetime) or is_templated(end_datetime)
        self.export_type = kind.value
        self.start_datetime = start_datetime
        self.end_datetime = end_datetime
        self.sender = sender
        self.recipient = recipient
        self.campaign_id = campaign_id
        self.list_ids = list_ids
        self.contact_ids = contact_ids
        self.filters = filters
        self.email_recipients = email_recipients
        self.email_sender = email_sender
        self.vendor = vendor
        self.msghistory_conn_id = msghistory_conn_id
        self.deferrable = deferrable
        self.poll_interval = positive_seconds(poll_interval, "poll_interval", "10")
        self.timeout = positive_seconds(timeout, "timeout", "3600")
        self.wait_for_completion = wait_for_completion
        self.max_regenerations = count(max_regenerations, "max_regenerations", "3", minimum=0)
        self._validate_static()
        # Set at task start: the validated request and the status to report; the export to cancel on kill.
        self._request: ExportRequest | None = None
        self._window: dict[str, str] | None = None
        self._final_status: str | None = None
        self._export_id: str | None = None

    # -- validation ---------------------------------------------------------------------------------------

    def _validate_static(self) -> None:
        """Check at DAG parse whatever is known without rendering templates.

        Templated values are replaced by placeholders of the right kind, so the vendor's rules (which
        fields an export type accepts or needs, its filters) are checked now; the values themselves are
        checked again at task start.
        """
        start, end = self.start_datetime, self.end_datetime
        placeholder = datetime(2000, 1, 1, tzinfo=timezone.utc)
        start_dt = placeholder if is_templated(start) else _aware_or_none(start, "start_datetime")
        end_dt = placeholder + timedelta(days=1) if is_templated(end) else _aware_or_none(end, "end_datetime")
        if start_dt is not None and end_dt is not None and is_templated(start) != is_templated(end):
            # One side unknown until rendered: only its presence matters now.
            start_dt, end_dt = placeholder, placeholder + timedelta(days=1)
        elif (start_dt is None) != (end_dt is None):
            missing = "end_datetime" if end_dt is None else "start_datetime"
            raise ValueError(f"{missing}: start_datetime and end_datetime go together, e.g. {EXAMPLE!r}")
        static = {
            name: ("0" if is_templated(getattr(self, name)) else getattr(self, name)) for name in _FIELDS
        }
        filters = None if is_templated(self.filters) else self.filters
        emails = {
            name: (None if is_templated(getattr(self, name)) else getattr(self, name))
            for name in _EMAIL_FIELDS
        }
        request = _build(self.export_type, start_dt, end_dt, filters=filters, **static, **emails)
        source = "vendor" if self.vendor else f"connection {self.msghistory_conn_id!r} extra vendor"
        vendor = self.vendor or vendor_visible_at_parse(self.msghistory_conn_id) or DEFAULT_VENDOR
        try:
            dialect = parse_time_dialect(vendor)
        except ValueError as error:  # name where the vendor came from
            raise ValueError(f"{source}: {str(error).removeprefix('vendor: ')}") from None
        _checked(dialect, request, templated_filters=is_templated(self.filters))

    def build_request(self) -> tuple[ExportRequest, dict[str, str] | None]:
        """The request from the rendered fields, and the window it stands for (for the XCom)."""
        if self._window_from_run:
            check_run_interval(self.start_datetime, self.end_datetime)
        start = _aware_or_none(self.start_datetime, "start_datetime")
        end = _aware_or_none(self.end_datetime, "end_datetime")
        if start is not None:
            start = restated_start(start, self.restate_days, self._zone)
        try:
            request = _build(
                self.export_type,
                start,
                end,
                filters=self.filters or None,
                **{name: getattr(self, name) or None for name in (*_FIELDS, *_EMAIL_FIELDS)},
            )
        except ValueError as error:
            raise with_interval_advice(error, self._window_templated) from None
        window = None
        if request.window is not None:
            first, last = request.window.inclusive_ms()
            window = {"start": format_api(first), "end": format_api(last)}
        return request, window

    # -- execution ----------------------------------------------------------------------------------------

    @cached_property
    def hook(self) -> MsgHistoryHook:
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        return MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id)

    def execute(self, context: Any) -> dict[str, Any]:
        try:  # before any request is sent (and before the connection is looked up)
            self._request, self._window = self.build_request()
        except ValueError as error:
            raise BadArgumentError(str(error)) from None
        dialect = self.hook.get_client().dialect  # the connection's own options are checked here
        try:
            if self.vendor and self.vendor.strip().lower() != dialect.name:
                raise ValueError(
                    f"vendor: the operator says {self.vendor!r} but connection {self.msghistory_conn_id!r} "
                    f"is {dialect.name!r}; fix one of them"
                )
            _checked(dialect, self._request)
        except ValueError as error:
            raise BadArgumentError(str(error)) from None
        if dialect.caps.delivery == "email":
            return self._request_reports(context, self.hook.get_client())
        self._check_downstream(context)
        return self.execute_resumable(context)

    def _check_downstream(self, context: Any) -> None:
        """Run the checks of the tasks that will store this export (their ``check_before_export``) before
        submitting it: a destination they would refuse must not cost the export's wait first."""
        if not self.has_dag():  # a task outside a DAG has no downstream tasks
            return
        for task in self.downstream_list:
            check = getattr(task, "check_before_export", None)
            if not callable(check):
                continue
            try:
                check(context)
            except (ValueError, PermissionError) as error:
                raise AirflowException(
                    f"export not submitted: downstream task {task.task_id!r} would fail after it: {error}"
                ) from None

    def _request_reports(self, context: Any, client: ExportClient) -> dict[str, Any]:
        """Submit the e-mailed report(s), one request per planned piece, skipping those a previous try
        got accepted; return the XCom. Nothing to wait for: the vendor mails the CSV."""
        assert self._request is not None
        dialect = client.dialect
        store = context.get("task_state_store") if self.durable else None
        accepted: dict[str, str] = dict((store.get(EMAIL_REQUESTS_KEY) if store is not None else None) or {})
        recipients = ", ".join(dialect.email_recipients(self._request))
        pieces = dialect.plan(self._request)
        requests: list[dict[str, Any]] = []
        for number, piece in enumerate(pieces, start=1):
            assert piece.window is not None  # an e-mailed report always has one (the dialect checks)
            first, last = piece.window.inclusive_ms()
            entry: dict[str, Any] = {"start": format_api(first), "end": format_api(last)}
            if piece.filters:
                entry["filters"] = dict(piece.filters)
            key = f"{entry['start']}/{entry['end']}/{sorted(piece.filters.items())}"
            label = f"report {number} of {len(pieces)} ({entry['start']} to {entry['end']}{_shown(piece)})"
            if key in accepted:
                self.log.info(
                    "%s: already accepted by an earlier try (%s); not sent again", label, accepted[key]
                )
            else:
                try:
                    accepted[key] = ExportRef.parse(client.submit_export(piece)).job_id
                except ApiValidationError as error:
                    # Refused as asked (too big, bad sender): the same request fails the same way again.
                    raise AirflowFailException(f"{label}: {error}") from error
                except MsgHistoryError as error:
                    raise AirflowException(
                        f"{label}: {error} (a retry sends only the reports not yet accepted)"
                    ) from error
                if store is not None:
                    store.set(EMAIL_REQUESTS_KEY, accepted)
                self.log.info(
                    "%s accepted (transaction %s): %s will e-mail it to %s",
                    label,
                    accepted[key],
                    dialect.name,
                    recipients,
                )
            requests.append({**entry, "transaction_id": accepted[key]})
        self.log.info(
            "%d report request(s) accepted; the CSV files will arrive by e-mail at %s (nothing to download)",
            len(requests),
            recipients,
        )
        return {
            **self._result(",".join(r["transaction_id"] for r in requests), "ACCEPTED"),
            "delivery": "email",
            "recipients": recipients.split(", "),
            "requests": requests,
        }

    def submit_job(self, context: Any) -> str:
        assert self._request is not None
        asked = datetime.now(timezone.utc)
        export_id = self.hook.get_client().submit_export(self._request)
        if self.restate_days and self._request.window is not None:
            # The transfer writes every partition of the widened window, ordered by when it was asked.
            export_id = str(ExportRef(ExportRef.parse(export_id).job_id, self._request.window, asked))
        self._export_id = export_id
        self.log.info("Submitted %s export %s (window %s)", self.export_type, export_id, self._window)
        self._final_status = "SUBMITTED"
        return export_id

    def get_job_status(self, external_id: Any, context: Any) -> str:
        """Status of a previously submitted export, as the waiting logic's action (used on retry)."""
        self._export_id = str(external_id)
        step = self._waiter(str(external_id)).status(self.hook.get_client())
        if step.job is not None:
            self._final_status = step.job.status.value
        return step.action

    def is_job_active(self, status: str) -> bool:
        return status in ("wait", "regenerate")

    def is_job_succeeded(self, status: str) -> bool:
        return status == "done"

    def poll_until_complete(self, external_id: Any, context: Any) -> dict[str, Any]:
        """Wait for the export: defer to the trigger, or poll here. Returns the XCom (resume path)."""
        export_id = str(external_id)
        if self.wait_for_completion:
            waiter = self._waiter(export_id)
            if self.deferrable:
                defer_wait(self, waiter, self.msghistory_conn_id, cancel_on_kill=True)
            job = wait_in_worker(self.hook.get_client(), waiter, self.log)
            self._final_status = job.status.value
        self._export_id = None  # done: nothing left to cancel
        return self.get_job_result(export_id, context)

    def get_job_result(self, external_id: Any, context: Any) -> dict[str, Any]:
        return self._result(str(external_id), self._final_status or "COMPLETED")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the XCom, or fail with the trigger's cause."""
        done = finished_event(event)
        _, self._window = self.build_request()
        return self._result(done.export_id, done.export_status)

    def on_kill(self) -> None:
        """Cancel the export this task is waiting for, where the vendor can (8x8's DELETE)."""
        export_id = self._export_id
        if export_id is None:
            return
        client = self.hook.get_client()
        if not client.caps.cancel:
            self.log.info(
                "Export %s keeps running: %s exports cannot be cancelled", export_id, client.dialect.name
            )
            return
        try:
            if cancel_within(client.config, export_id, CANCEL_TIMEOUT):
                self.log.info("Cancelled export %s", ExportRef.parse(export_id).job_id)
            else:
                self.log.warning(
                    "Cancelling export %s took over %g s; not waiting further", export_id, CANCEL_TIMEOUT
                )
        except Exception as error:  # best effort: the task is being killed anyway
            self.log.warning("Could not cancel export %s: %s", export_id, error)

    def _waiter(self, export_id: str) -> ExportWaiter:
        return ExportWaiter.for_client(
            self.hook.get_client(),
            export_id,
            self.poll_interval,
            time.time() + self.timeout,
            self.max_regenerations,
        )

    def _result(self, export_id: str, status: str) -> dict[str, Any]:
        return {
            "export_id": export_id,
            "export_type": self.export_type,
            "window": self._window,
            "status": status,
            # where the export id means something: the transfer and sensor check they read it there
            "msghistory_conn_id": self.msghistory_conn_id,
            "vendor": self.hook.get_client().dialect.name,
        }


def _checked(dialect: Dialect, request: ExportRequest, templated_filters: bool = False) -> None:
    """``dialect.check`` of every request the vendor needs for ``request`` (its window split by the
    vendor's cap, ...), with errors naming the operator's own arguments."""
    if templated_filters:
        request = dataclasses.replace(request, filters={})
    try:
        for piece in dialect.plan(request):
            dialect.check(piece)
    except ValueError as error:
        raise ValueError(_operator_names(str(error))) from None


def _shown(piece: ExportRequest) -> str:
    """A request's filters for a log line (empty when none)."""
    return "".join(f", {name} {value}" for name, value in piece.filters.items())


def _build(kind: str, start: datetime | None, end: datetime | None, **values: Any) -> ExportRequest:
    """``ExportRequest.build``, with errors naming the operator's own window arguments."""
    try:
        if start is not None and end is not None:
            Window(start, end).check_not_empty()
        return ExportRequest.build(kind, start, end, **values)
    except ValueError as error:
        raise ValueError(_operator_names(str(error))) from None


def _operator_names(message: str) -> str:
    for api_name, arg in (("start", "start_datetime"), ("end", "end_datetime")):
        if message.startswith(f"{api_name}:"):
            return arg + message[len(api_name) :]
    return message


def _parse_kind(export_type: object) -> ExportKind:
    try:
        return ExportKind.parse(export_type)
    except ValueError:
        valid = ", ".join(repr(k.value) for k in ExportKind)
        raise ValueError(f"export_type: unknown export type {export_type!r}; use one of {valid}") from None


def _aware_or_none(value: object, param: str) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_aware(value, param)
