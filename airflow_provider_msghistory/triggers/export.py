"""Deferrable trigger that waits, in the triggerer's event loop, for an export to become downloadable."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_msghistory.client.waiting import LIST_PAGE_SIZE, ExportWaiter

DEFAULT_CONN_ID = "msghistory_default"


class MsgHistoryExportTrigger(BaseTrigger):
    """Poll the export list until an export is completed and available, then fire one event.

    Finds the export through the paginated list with a page hint (the list is newest first, so an export
    only moves to later pages): a poll costs one request, not a scan of the account's history. An expired
    link is regenerated (at most ``max_regenerations`` times). 5xx, 429 and network failures are waited out
    with backoff until ``end_time``; they never end the trigger. Every call is async. The first look comes at
    a random point of the first poll interval, so many triggers started together do not poll in lockstep.

    Events: ``{"status": "success", "export_id", "export_status", ...}``, ``{"status": "error", "export_id",
    "message"}`` (FAILED, unknown id, expired too often, a non-transient API error) and
    ``{"status": "timeout", "export_id", "message"}``.

    :param export_id: the export to wait for.
    :param msghistory_conn_id: Airflow connection of the API.
    :param poll_interval: seconds between polls.
    :param end_time: absolute deadline in epoch seconds (absolute, so a triggerer restart does not extend it).
    :param max_regenerations: how many times an expired download link may be regenerated.
    :param page_hint: export-list page to look at first.
    :param regenerations: regenerations already done before this trigger started.
    :param page_size: export-list page size used to find the export.
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

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "export_id": self.export_id,
                "msghistory_conn_id": self.msghistory_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "max_regenerations": self.max_regenerations,
                "page_hint": self.page_hint,
                "regenerations": self.regenerations,
                "page_size": self.page_size,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        waiter = ExportWaiter(
            export_id=self.export_id,
            poll_interval=self.poll_interval,
            deadline=self.end_time,
            max_regenerations=self.max_regenerations,
            page_hint=self.page_hint,
            regenerations=self.regenerations,
            page_size=self.page_size,
        )
        event = await self._wait(waiter)
        yield TriggerEvent(event)

    async def _wait(self, waiter: ExportWaiter) -> dict[str, Any]:
        # Imported here: the hook pulls in Airflow's connection machinery, which the triggerer only needs
        # once a trigger runs.
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        try:
            client = await MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id).aget_client()
        except Exception as error:
            return self._error(
                f"cannot build the API client from connection {self.msghistory_conn_id!r}: {error}"
            )
        async with client:
            # First look at a random point of the first interval: triggers created together (a mapped
            # task, a triggerer restart) then poll spread out instead of in lockstep. The export was just
            # submitted (or is being waited for anyway), so nothing is seen later than one interval.
            await asyncio.sleep(waiter.sleep_for(random.uniform(0, waiter.poll_interval), time.time()))
            while True:
                remaining = waiter.remaining(time.time())
                if remaining <= 0:
                    return {
                        "status": "timeout",
                        "export_id": self.export_id,
                        "message": waiter.timeout_reason(),
                    }
                polled_at = time.time()
                try:
                    # The client retries inside its own budget; never let that run past the deadline.
                    job, page = await asyncio.wait_for(
                        client.find_export(
                            self.export_id, start_page=waiter.start_page, page_size=waiter.page_size
                        ),
                        timeout=remaining,
                    )
                    decision = waiter.observe(job, page)
                    if decision.action == "done" and job is not None:
                        return {
                            "status": "success",
                            "export_id": self.export_id,
                            "export_status": job.status.value,
                            "page_hint": waiter.page_hint,
                            "regenerations": waiter.regenerations,
                        }
                    if decision.action == "fail":
                        return self._error(f"export {self.export_id}: {decision.reason}")
                    if waiter.news:
                        self.log.info("Export %s: %s", self.export_id, decision.reason)
                    if decision.action == "regenerate":
                        await asyncio.wait_for(
                            client.regenerate_download_link(self.export_id), timeout=remaining
                        )
                        waiter.regenerated()
                    delay = waiter.poll_interval
                except asyncio.TimeoutError:
                    continue  # the deadline passed mid-call: the loop head reports the timeout
                except Exception as error:
                    backoff = waiter.on_error(error)
                    if backoff is None:
                        return self._error(f"export {self.export_id}: {error}")
                    self.log.warning(
                        "Export %s: transient failure #%d (%s); retrying in %.1fs",
                        self.export_id,
                        waiter.failures,
                        error,
                        backoff,
                    )
                    delay = backoff
                await asyncio.sleep(waiter.sleep_for(delay, time.time(), since=polled_at))

    def _error(self, message: str) -> dict[str, Any]:
        return {"status": "error", "export_id": self.export_id, "message": message}
