"""Submit a message-history, delivery-reports or contacts export and wait until it can be downloaded."""

from __future__ import annotations

import time
from collections.abc import Sequence
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

from airflow_provider_msghistory.client.datetimes import EXAMPLE, format_api, parse_aware
from airflow_provider_msghistory.client.models import ExportKind, ExportRequest
from airflow_provider_msghistory.client.progress import WaitProgress
from airflow_provider_msghistory.client.waiting import (
    FALLBACK_PAGE_SIZE,
    LIST_PAGE_SIZE,
    ExportWaiter,
    decide,
)
from airflow_provider_msghistory.operators.window import (
    RUN_INTERVAL_END,
    RUN_INTERVAL_START,
    api_bounds,
    check_run_interval,
)

if TYPE_CHECKING:
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.models import ExportJob
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

# task_state_store key of the submitted export (renaming it breaks in-flight retries).
EXPORT_ID_KEY = "msghistory_export_id"


class BadArgumentError(AirflowFailException, ValueError):
    """A rendered argument (or the run's missing data interval) is wrong: a ``ValueError`` naming it, that
    fails the task without retries, since a retry would render it the same."""


def is_templated(value: object) -> bool:
    """True when ``value`` is a Jinja template, rendered only at task start."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


class MsgHistoryExportOperator(ResumableJobMixin, BaseOperator):
    """Submit an export and (by default) wait until its file is available for download.

    The window is half-open ``[start_datetime, end_datetime)`` and defaults to the run's data interval;
    the API gets ``start`` and ``end - 1 ms`` (its bounds are inclusive), so consecutive runs neither
    overlap nor leave a gap. A run without a data interval (a manual run with no logical date, allowed on
    Airflow 3) fails at task start, before any request, saying what to pass instead. Contacts exports take
    no window. A delivery-reports export takes ``campaign_id`` alone, or the window.

    Static arguments are validated when the DAG is parsed, templated ones at task start, before any
    request (a bad rendered value fails the task without retries: a retry would render it the same).
    Waiting happens in the triggerer (``deferrable=True``) or in the worker; both drive the same
    status logic (:mod:`airflow_provider_msghistory.client.waiting`).

    Crash safety: on Airflow >= 3.3 the export id is saved in ``task_state_store`` right after submission,
    so a retry after a worker crash, a timeout or a lost trigger reconnects to the live export instead of
    submitting a duplicate (pass ``durable=False`` to opt out). On older Airflow there is no state store:
    every try submits a new export, as before.

    Returns (XCom) ``{"export_id", "export_type", "window": {"start", "end"} | None, "status"}``, where
    ``window`` holds the inclusive bounds sent to the API and ``status`` the export's final status.

    :param export_type: ``"message_history"``, ``"delivery_reports"`` or ``"contacts"``.
    :param start_datetime: aware window start (included); datetime or ISO-8601 string with offset. Templated.
    :param end_datetime: aware window end (excluded). Templated.
    :param sender: message-history filter on the sender. Templated.
    :param recipient: message-history filter on the recipient. Templated.
    :param campaign_id: delivery-reports scope. Templated.
    :param list_ids: contacts scope: these lists' contacts. Templated.
    :param contact_ids: contacts scope: these contacts. Templated.
    :param msghistory_conn_id: Airflow connection of the API.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status polls (> 0).
    :param timeout: seconds to wait for the export before failing (> 0).
    :param wait_for_completion: ``False`` returns right after submitting (status ``"SUBMITTED"``).
    :param max_regenerations: how many times an expired download link is regenerated while waiting.
    """

    template_fields: Sequence[str] = (
        "start_datetime",
        "end_datetime",
        "sender",
        "recipient",
        "campaign_id",
        "list_ids",
        "contact_ids",
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
        msghistory_conn_id: str = "msghistory_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float = 3600,
        wait_for_completion: bool = True,
        max_regenerations: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        kind = _parse_kind(export_type)
        defaulted_window = start_datetime == RUN_INTERVAL_START and end_datetime == RUN_INTERVAL_END
        if kind is ExportKind.CONTACTS and defaulted_window:
            start_datetime = end_datetime = None  # contacts have no window; ignore the run's interval
        elif kind is ExportKind.DELIVERY_REPORTS and campaign_id is not None and defaulted_window:
            start_datetime = end_datetime = None  # campaign alone scopes it
        # Whether the window is the run's data interval, which a run without a logical date lacks.
        self._window_from_run = start_datetime == RUN_INTERVAL_START and end_datetime == RUN_INTERVAL_END
        self.export_type = kind.value
        self.start_datetime = start_datetime
        self.end_datetime = end_datetime
        self.sender = sender
        self.recipient = recipient
        self.campaign_id = campaign_id
        self.list_ids = list_ids
        self.contact_ids = contact_ids
        self.msghistory_conn_id = msghistory_conn_id
        self.deferrable = deferrable
        self.poll_interval = _positive(poll_interval, "poll_interval", "10")
        self.timeout = _positive(timeout, "timeout", "3600")
        self.wait_for_completion = wait_for_completion
        if (
            isinstance(max_regenerations, bool)
            or not isinstance(max_regenerations, int)
            or max_regenerations < 0
        ):
            raise ValueError(
                f"max_regenerations: expected an integer >= 0, e.g. 3; got {max_regenerations!r}"
            )
        self.max_regenerations = max_regenerations
        self._validate_static()
        # Set at task start: the validated request and the status to report.
        self._request: ExportRequest | None = None
        self._window: dict[str, str] | None = None
        self._final_status: str | None = None

    # -- validation ---------------------------------------------------------------------------------------

    def _validate_static(self) -> None:
        """Check at DAG parse whatever is known without rendering templates.

        Templated values are replaced by placeholders of the right kind, so the combination rules of
        ``ExportRequest.build`` (which fields an export type accepts or needs) are checked now; the values
        themselves are checked again at task start.
        """
        start, end = self.start_datetime, self.end_datetime
        placeholder_start = datetime(2000, 1, 1, tzinfo=timezone.utc)
        start_dt = placeholder_start if is_templated(start) else _aware_or_none(start, "start_datetime")
        end_dt = (
            placeholder_start + timedelta(days=1)
            if is_templated(end)
            else _aware_or_none(end, "end_datetime")
        )
        if start_dt is not None and end_dt is not None:
            if is_templated(start) != is_templated(end):
                start_dt = end_dt = None  # one side unknown until rendered: only its presence matters
            else:
                api_bounds(start_dt, end_dt)
        elif (start_dt is None) != (end_dt is None):
            missing = "end_datetime" if end_dt is None else "start_datetime"
            raise ValueError(f"{missing}: start_datetime and end_datetime go together, e.g. {EXAMPLE!r}")
        static = {
            name: ("0" if is_templated(getattr(self, name)) else getattr(self, name))
            for name in ("sender", "recipient", "campaign_id", "list_ids", "contact_ids")
        }
        window_present = is_templated(start) or start is not None
        bounds = (placeholder_start, placeholder_start) if window_present else (None, None)
        _build(self.export_type, *bounds, **static)

    def build_request(self) -> tuple[ExportRequest, dict[str, str] | None]:
        """The validated request from the rendered fields, and the window it sends (for the XCom)."""
        if self._window_from_run:
            check_run_interval(self.start_datetime, self.end_datetime)
        start = _aware_or_none(self.start_datetime, "start_datetime")
        end = _aware_or_none(self.end_datetime, "end_datetime")
        bounds: tuple[datetime | None, datetime | None] = (None, None)
        if start is not None and end is not None:
            bounds = api_bounds(start, end)
        request = _build(
            self.export_type,
            *bounds,
            sender=self.sender or None,
            recipient=self.recipient or None,
            campaign_id=self.campaign_id or None,
            list_ids=self.list_ids or None,
            contact_ids=self.contact_ids or None,
        )
        window = None
        if request.start is not None and request.end is not None:
            window = {"start": format_api(request.start), "end": format_api(request.end)}
        return request, window

    # -- execution ----------------------------------------------------------------------------------------

    @cached_property
    def hook(self) -> MsgHistoryHook:
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        return MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id)

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            self._request, self._window = self.build_request()  # before any request is sent
        except ValueError as error:
            raise BadArgumentError(str(error)) from None
        return self.execute_resumable(context)

    def submit_job(self, context: Any) -> str:
        assert self._request is not None
        export_id = self.hook.get_client().submit_export(self._request)
        self.log.info("Submitted %s export %s (window %s)", self.export_type, export_id, self._window)
        self._final_status = "SUBMITTED"
        return export_id

    def get_job_status(self, external_id: Any, context: Any) -> str:
        """Status of a previously submitted export, as the waiting logic's action (used on retry)."""
        client = self.hook.get_client()
        job, _ = client.find_export(str(external_id), page_size=LIST_PAGE_SIZE)
        if job is None:  # the server may cap the page size (see waiting.FALLBACK_PAGE_SIZE)
            job, _ = client.find_export(str(external_id), page_size=FALLBACK_PAGE_SIZE)
        if job is not None:
            self._final_status = job.status.value
        return decide(job, 0, self.max_regenerations).action

    def is_job_active(self, status: str) -> bool:
        return status in ("wait", "regenerate")

    def is_job_succeeded(self, status: str) -> bool:
        return status == "done"

    def poll_until_complete(self, external_id: Any, context: Any) -> dict[str, Any]:
        """Wait for the export: defer to the trigger, or poll here. Returns the XCom (resume path)."""
        export_id = str(external_id)
        if self.wait_for_completion:
            if self.deferrable:
                self._defer(export_id)
            job = self._wait_in_worker(export_id)
            self._final_status = job.status.value
        return self.get_job_result(export_id, context)

    def get_job_result(self, external_id: Any, context: Any) -> dict[str, Any]:
        return self._result(str(external_id), self._final_status or "COMPLETED")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the XCom, or fail with the trigger's cause."""
        export_id = raise_for_event(event)
        _, self._window = self.build_request()
        return self._result(export_id, str(event.get("export_status") or "COMPLETED"))

    def _result(self, export_id: str, status: str) -> dict[str, Any]:
        return {
            "export_id": export_id,
            "export_type": self.export_type,
            "window": self._window,
            "status": status,
        }

    def _defer(self, export_id: str) -> None:
        from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

        self.defer(
            trigger=MsgHistoryExportTrigger(
                export_id=export_id,
                msghistory_conn_id=self.msghistory_conn_id,
                poll_interval=self.poll_interval,
                end_time=time.time() + self.timeout,
                max_regenerations=self.max_regenerations,
            ),
            method_name="execute_complete",
            # The trigger enforces the deadline itself; this only guards against a lost triggerer.
            timeout=timedelta(seconds=self.timeout + 5 * self.poll_interval + 60),
        )

    def _wait_in_worker(self, export_id: str) -> ExportJob:
        waiter = ExportWaiter(
            export_id, self.poll_interval, time.time() + self.timeout, self.max_regenerations
        )
        return wait_sync(self.hook.get_client(), waiter, self.log)


def wait_sync(client: ExportClient, waiter: ExportWaiter, log: Any) -> ExportJob:
    """Poll with the sync client until ``waiter`` says done; raise ``AirflowException`` on fail/timeout.

    Logs each change of the export's status and a sparse heartbeat in between (:class:`WaitProgress`).
    """
    progress = WaitProgress(waiter.export_id, time.time())
    while True:
        if waiter.remaining(time.time()) <= 0:
            raise AirflowException(waiter.timeout_reason())
        polled_at = time.time()
        try:
            job, page = client.find_export(
                waiter.export_id, start_page=waiter.start_page, page_size=waiter.page_size
            )
            decision = waiter.observe(job, page)
            if decision.action == "fail":
                raise AirflowException(f"export {waiter.export_id}: {decision.reason}")
            done = decision.action == "done" and job is not None
            line = progress.poll(decision.reason, time.time(), None if done else waiter.poll_interval)
            if line:
                log.info("%s", line)
            if done:
                return job
            if decision.action == "regenerate":
                client.regenerate_download_link(waiter.export_id)
                waiter.regenerated()
            delay = waiter.poll_interval
        except AirflowException:
            raise
        except Exception as error:
            backoff = waiter.on_error(error)
            if backoff is None:
                raise
            log.warning(
                "Export %s: transient failure #%d (%s); retrying in %.1fs",
                waiter.export_id,
                waiter.failures,
                error,
                backoff,
            )
            delay = backoff
        time.sleep(waiter.sleep_for(delay, time.time(), since=polled_at))


def raise_for_event(event: dict[str, Any] | None) -> str:
    """Return the export id of a success event; raise ``AirflowException`` with the cause otherwise."""
    if not event:
        raise AirflowException("the export trigger fired without an event")
    if event.get("status") == "success":
        return str(event["export_id"])
    kind = "timed out" if event.get("status") == "timeout" else "failed"
    raise AirflowException(f"waiting for export {event.get('export_id')} {kind}: {event.get('message')}")


def _build(kind: str, start: datetime | None, end: datetime | None, **filters: Any) -> ExportRequest:
    """``ExportRequest.build``, with errors naming the operator's own window arguments."""
    try:
        return ExportRequest.build(kind, start, end, **filters)
    except ValueError as error:
        message = str(error)
        for api_name, arg in (("start", "start_datetime"), ("end", "end_datetime")):
            if message.startswith(f"{api_name}:"):
                message = arg + message[len(api_name) :]
        raise ValueError(message) from None


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


def _positive(value: object, param: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{param}: expected a number of seconds > 0, e.g. {example}; got {value!r}")
    return float(value)
