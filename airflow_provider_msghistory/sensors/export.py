"""Sensor waiting for an existing export (submitted elsewhere) to become downloadable."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    conf,
)

from airflow_provider_msghistory.arguments import (
    check_export_origin,
    checked_export_id,
    is_templated,
    positive_seconds,
)
from airflow_provider_msghistory.client.waiting import ExportWaiter
from airflow_provider_msghistory.utils.waits import defer_wait, finished_event

if TYPE_CHECKING:
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook


class MsgHistoryExportSensor(BaseSensorOperator):
    """Wait until an export is completed and available for download, by poking or in the triggerer.

    Drives the same wait as the export operator and trigger
    (:class:`airflow_provider_msghistory.client.waiting.ExportWaiter`): an expired link is regenerated (at
    most ``max_regenerations`` times, where the vendor can), FAILED or an unknown id fails the task, an
    ``empty`` export is done, and 5xx/429/network errors only make a poke return ``False``.

    Returns (XCom) ``{"export_id", "status"}``.

    ``poke_interval`` defaults to 10 s and ``timeout`` to 3600 s (an export takes seconds to minutes).

    :param export_id: the export to wait for. Templated.
    :param msghistory_conn_id: Airflow connection of the API.
    :param deferrable: wait in the triggerer instead of poking from a worker.
    :param max_regenerations: how many times an expired download link is regenerated while waiting.
    """

    template_fields: Sequence[str] = ("export_id",)
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        export_id: str,
        msghistory_conn_id: str = "msghistory_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_regenerations: int = 3,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 10)
        kwargs.setdefault("timeout", 3600)
        super().__init__(**kwargs)
        if export_id is None or (isinstance(export_id, (str, int)) and not is_templated(export_id)):
            checked_export_id(export_id)  # not an XComArg or a template (known once rendered)
        positive_seconds(self.poke_interval, "poke_interval", "10")
        self.export_id = export_id  # may be a template or an XComArg until rendered
        self.msghistory_conn_id = msghistory_conn_id
        self.deferrable = deferrable
        self.max_regenerations = max_regenerations
        self._waiter: ExportWaiter | None = None  # kept across pokes: page hint, regenerations, log

    @cached_property
    def hook(self) -> MsgHistoryHook:
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        return MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id)

    def execute(self, context: Any) -> Any:
        client = self.hook.get_client()
        check_export_origin(self, context, str(self.export_id), self.msghistory_conn_id, client.dialect.name)
        if not self.deferrable:
            return super().execute(context)
        timeout = float(self.timeout.total_seconds() if isinstance(self.timeout, timedelta) else self.timeout)
        waiter = self._new_waiter(time.time() + timeout)
        defer_wait(self, waiter, self.msghistory_conn_id)

    def _new_waiter(self, deadline: float, **kwargs: Any) -> ExportWaiter:
        return ExportWaiter.for_client(
            self.hook.get_client(),
            str(self.export_id),
            float(self.poke_interval),
            deadline,
            self.max_regenerations,
            **kwargs,
        )

    def poke(self, context: Any) -> Any:
        from airflow.providers.common.compat.sdk import PokeReturnValue

        if self._waiter is None:  # Airflow pokes it again on its own schedule: no deadline, no pacing
            self._waiter = self._new_waiter(float("inf"), paced=False)
        step = self._waiter.poke(self.hook.get_client(), self.log)
        if step.action == "fail":
            raise AirflowException(step.message)
        if step.action != "done" or step.job is None:
            return False
        return PokeReturnValue(
            is_done=True, xcom_value={"export_id": step.export_id, "status": step.job.status.value}
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: the XCom, or the trigger's cause as the failure."""
        done = finished_event(event, timeout_error=AirflowSensorTimeout)
        return {"export_id": done.export_id, "status": done.export_status}
