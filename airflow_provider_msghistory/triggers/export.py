"""Deferrable trigger that waits, in the triggerer's event loop, for an export to become downloadable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_msghistory.client.cancel import CANCEL_TIMEOUT
from airflow_provider_msghistory.client.models import ExportStatus
from airflow_provider_msghistory.client.transport.aio import within
from airflow_provider_msghistory.client.waiting import LIST_PAGE_SIZE, ExportWaiter, timeout_reason
from airflow_provider_msghistory.triggers._shared_poll import ExportWatch
from airflow_provider_msghistory.triggers.events import ExportEvent
from airflow_provider_msghistory.version_compat import AIRFLOW_V_3_3_PLUS

DEFAULT_CONN_ID = "msghistory_default"
# The trigger's keyword arguments, all plain JSON values (Airflow 3.2+ serializes them with serde).
_KWARGS = (
    "export_id", "msghistory_conn_id", "poll_interval", "end_time", "max_regenerations", "page_hint",
    "regenerations", "page_size", "cancel_on_kill", "fallback_page_size",
)  # fmt: skip
ON_KILL_SUPPORTED = AIRFLOW_V_3_3_PLUS  # the triggerer calls on_kill() when the user kills the task


# on_kill's decisions under way (a reference, so a shielded one outliving its trigger's task is not lost).
_ENDING: set[asyncio.Future[None]] = set()


def _task_state(task_instance: Any) -> str | None:
    """The task instance's current state (Airflow < 3.3), read from where this Airflow keeps it."""
    if task_instance is None:
        return None
    try:  # Airflow 3.0-3.2: the triggerer asks the API server
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
    except ImportError:  # Airflow 2: the triggerer reads the metadata database
        from airflow.models.taskinstance import TaskInstance

        current = TaskInstance.get_task_instance(
            dag_id=task_instance.dag_id,
            run_id=task_instance.run_id,
            task_id=task_instance.task_id,
            map_index=task_instance.map_index,
        )
        return None if current is None or current.state is None else str(current.state)
    states = RuntimeTaskInstance.get_task_states(
        dag_id=task_instance.dag_id,
        task_ids=[task_instance.task_id],
        run_ids=[task_instance.run_id],
        map_index=task_instance.map_index,
    )
    state = states.get(task_instance.run_id, {}).get(task_instance.task_id)
    return None if state is None else str(state)


class MsgHistoryExportTrigger(BaseTrigger):
    """Poll until an export is completed and available (or finished empty), then fire one event.

    Job-tracked vendors (8x8): each trigger polls its own job, one request per poll interval, on the
    connection's one shared client and pool. List-tracked vendors (Qlara):

    Every trigger of one connection (and page size) in the triggerer's event loop shares one poll of the
    export list and one API client (:mod:`._shared_poll`): each round reads the pages the waited-for exports
    sit on, once, from each export's page hint (the list is newest first, so an export only moves to later
    pages), and hands every trigger its own export. A round costs a request per page in use, not a scan of
    the account's history, and not one per trigger. What a status means is decided per trigger by
    :class:`~airflow_provider_msghistory.client.waiting.ExportWaiter`, which keeps this trigger's deadline,
    page hint and regenerations. An expired link is regenerated (at most ``max_regenerations`` times). 5xx,
    429 and network failures are waited out with backoff until ``end_time``; they never end the trigger.
    Every call is async; the first look comes within one poll interval.

    Events: an :class:`~airflow_provider_msghistory.triggers.events.ExportEvent`'s payload, ``success``,
    ``error`` (FAILED, unknown id, expired too often, a non-transient API error) or ``timeout``.

    :param export_id: the export to wait for.
    :param msghistory_conn_id: Airflow connection of the API.
    :param poll_interval: seconds between polls.
    :param end_time: absolute deadline in epoch seconds (absolute, so a triggerer restart does not extend it).
    :param max_regenerations: how many times an expired download link may be regenerated.
    :param page_hint: export-list page to look at first.
    :param regenerations: regenerations already done before this trigger started.
    :param page_size: export-list page size used to find the export.
    :param cancel_on_kill: cancel the export when the task is killed or the wait times out (the export
        operator's wait; a sensor waits for an export it does not own). On Airflow >= 3.3 through
        :meth:`on_kill`, below when the trigger is cancelled; either way only once the task is no longer
        deferred (a trigger reassigned between triggerers is cancelled too, and its task still waits).
        Only where the vendor can cancel.
    :param fallback_page_size: the smaller page size to rescan with before calling the export unknown.
    """

    def __init__(
        self,
        export_id: str,
        msghistory_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 10.0,
        end_time: float | None = None,
        max_regenerations: int = 3,
        page_hint: int = 0,
        regenerations: int = 0,
        page_size: int = LIST_PAGE_SIZE,
        cancel_on_kill: bool = False,
        fallback_page_size: int | None = None,
    ) -> None:
        super().__init__()
        self.export_id = str(export_id)
        self.msghistory_conn_id = msghistory_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else time.time() + 3600.0
        self.max_regenerations = int(max_regenerations)
        self.page_hint = int(page_hint)
        self.regenerations = int(regenerations)
        self.page_size = int(page_size)
        self.fallback_page_size = min(self.page_size, int(fallback_page_size or LIST_PAGE_SIZE))
        self.cancel_on_kill = bool(cancel_on_kill)
        self._watch: ExportWatch | None = None

    @classmethod
    def for_waiter(
        cls, waiter: ExportWaiter, conn_id: str, *, cancel_on_kill: bool = False
    ) -> MsgHistoryExportTrigger:
        """The trigger that carries ``waiter``'s wait on (deadline, page hint and size, regenerations)."""
        return cls(
            export_id=waiter.export_id,
            msghistory_conn_id=conn_id,
            poll_interval=waiter.poll_interval,
            end_time=waiter.deadline,
            max_regenerations=waiter.max_regenerations,
            page_hint=waiter.page_hint,
            regenerations=waiter.regenerations,
            page_size=waiter.page_size,
            fallback_page_size=waiter.fallback_page_size,
            cancel_on_kill=cancel_on_kill,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {name: getattr(self, name) for name in _KWARGS},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except asyncio.CancelledError:
            if self.cancel_on_kill and not ON_KILL_SUPPORTED:
                await self._cancel_if_ending()
            raise
        yield TriggerEvent(event.to_payload())

    async def on_kill(self) -> None:
        """Airflow >= 3.3: cancel the export where the vendor can, but only when the task is really ending.

        The triggerer calls ``on_kill`` when the user kills the task, and also when this triggerer was
        stalled past its health threshold and finds its triggers handed to another one: the task is then
        still deferred and another copy of this trigger waits on the same export, which a cancel would
        fail. So the task's state is read first, as below 3.3 (:meth:`_safe_to_cancel`): the export is
        cancelled only when the task is no longer deferred, and kept when the state cannot be read.
        """
        if self.cancel_on_kill:
            await self._cancel_if_ending()

    async def _cancel_if_ending(self) -> None:
        """Cancel the export if the task is no longer deferred; shielded: the triggerer cancels a trigger's
        task again at its next sync while it is still winding down, which must not cut the state read or
        the cancel short (the decision then finishes in the background)."""

        async def decide() -> None:
            if await self._safe_to_cancel():
                await self._cancel_export()

        decision = asyncio.ensure_future(decide())
        _ENDING.add(decision)
        decision.add_done_callback(_ENDING.discard)
        await asyncio.shield(decision)

    async def _wait(self) -> ExportEvent:
        if self.end_time <= time.time():
            return self._timeout()
        watch = ExportWatch(
            self.msghistory_conn_id,
            self.export_id,
            self.page_hint,
            self.page_size,
            self.poll_interval,
            deadline=self.end_time,
        )
        try:
            await watch.start()
        except Exception as error:
            return self._error(
                f"cannot build the API client from connection {self.msghistory_conn_id!r}: {error}"
            )
        self._watch = watch
        try:  # from here on the watch is stopped whatever happens: it holds the process's GC regime too
            waiter = ExportWaiter.for_client(
                watch.client,
                self.export_id,
                self.poll_interval,
                self.end_time,
                self.max_regenerations,
                page_hint=self.page_hint,
                regenerations=self.regenerations,
                page_size=self.page_size,
                fallback_page_size=self.fallback_page_size,
            )
            event = await self._follow(waiter, watch)
            if event.status == "timeout" and self.cancel_on_kill:
                await self._cancel_export()  # the task fails: its export is not wanted any more
            return event
        finally:
            self._watch = None
            await watch.stop()

    async def _cancel_export(self) -> None:
        """Cancel the export, bounded in time; never raises (it runs while the wait is torn down)."""
        try:
            watch = self._watch
            if watch is not None:
                client = watch.client
                if client.caps.cancel:
                    await within(client.cancel_export(self.export_id), CANCEL_TIMEOUT)
                    self.log.info("Cancelled export %s", self.export_id)
                return
            from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

            hook = MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id)
            try:
                client = await hook.aget_client()
                if client.caps.cancel:
                    await within(client.cancel_export(self.export_id), CANCEL_TIMEOUT)
                    self.log.info("Cancelled export %s", self.export_id)
            finally:
                await hook.aclose()
        except Exception as error:
            self.log.warning("Could not cancel export %s: %s", self.export_id, error)

    async def _safe_to_cancel(self) -> bool:
        """Whether the cancellation means the task is gone (killed, failed, cleared) rather than a
        triggerer shutting down or handing the trigger to another one; then the task is still deferred and
        its export must keep running. No task instance (a trigger run outside a triggerer) or an unreadable
        state: not safe."""
        from asgiref.sync import sync_to_async

        try:
            state = await sync_to_async(_task_state)(self.task_instance)
        except Exception as error:  # unknown: keep the export (cancelling a live wait is worse)
            self.log.warning(
                "Cannot read the task's state (%s); not cancelling export %s", error, self.export_id
            )
            return False
        if state is None or state == "deferred":
            self.log.info(
                "Task state %s: not cancelling export %s (its wait goes on, e.g. on another triggerer)",
                state,
                self.export_id,
            )
            return False
        return True

    async def _follow(self, waiter: ExportWaiter, watch: ExportWatch) -> ExportEvent:
        """Take the shared poll's looks at the export and do what the waiter's step says, until it is done
        or failed, or the deadline passes. (The shared poll keeps the cadence: a step's delay is its.)"""
        waiter.begin(time.time())
        while True:
            remaining = waiter.remaining(time.time())
            if remaining <= 0:
                return self._timeout()
            try:
                look = await watch.next_look(timeout=remaining)
                if look is None:
                    continue  # the deadline passed first: the loop head reports the timeout
                # A failed round is not re-raised: its one error object goes to every trigger.
                step = waiter.step(look.job, look.page, error=look.error, now=time.time())
                step.log_to(self.log)
                if step.action == "done" and step.job is not None:
                    return ExportEvent(
                        "success",
                        self.export_id,
                        export_status=step.job.status.value,
                        page_hint=waiter.page_hint,
                        regenerations=waiter.regenerations,
                    )
                if step.action == "fail":
                    return self._error(step.message)
                if step.action == "regenerate":
                    await self._regenerate(watch, waiter, remaining)
                    watch.skip_rounds_started()  # a list read before the regeneration shows it expired
                if waiter.page_size != watch.page_size:  # the waiter fell back to small pages
                    await watch.repage(waiter.page_size, waiter.page_hint)
            except asyncio.TimeoutError:
                continue  # the deadline passed mid-regeneration: the loop head reports the timeout
            except Exception as error:  # from the regeneration
                step = waiter.step(error=error, now=time.time())
                step.log_to(self.log)
                if step.action == "fail":
                    return self._error(step.message)

    async def _regenerate(self, watch: ExportWatch, waiter: ExportWaiter, remaining: float) -> None:
        """Regenerate the expired link, if the export is still expired right before.

        Airflow may run this trigger twice (HA triggerers, a reassignment): a copy may have regenerated the
        export since the round that saw it expired, and regenerating again would restart the export under
        the download the copy's task began. Copies in this loop take turns (one lock per export); a copy on
        another triggerer is caught by the fresh look, except when both look within the same round trip.
        """
        async with watch.export_lock():
            look = watch.client.look(self.export_id, waiter.page_hint, waiter.page_size)
            job, _ = await within(look, remaining)
            if job is None or job.status is not ExportStatus.EXPIRED:
                self.log.info("Export %s is no longer expired (regenerated elsewhere?)", self.export_id)
                return
            await within(watch.client.regenerate_download_link(self.export_id), remaining)
            waiter.regenerated()

    def _timeout(self) -> ExportEvent:
        return ExportEvent("timeout", self.export_id, timeout_reason(self.export_id))

    def _error(self, message: str) -> ExportEvent:
        return ExportEvent("error", self.export_id, message)
