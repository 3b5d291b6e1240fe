"""Stream a finished export's CSV to any storage path Airflow's ObjectStoragePath knows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator, conf

from airflow_provider_msghistory.client.errors import ExportExpiredError
from airflow_provider_msghistory.client.waiting import LIST_PAGE_SIZE, ExportWaiter
from airflow_provider_msghistory.operators.export import raise_for_event, wait_sync
from airflow_provider_msghistory.transfers.destination import (
    Destination,
    check_destination_store,
    is_templated,
    parse_destination,
    validate_compression,
    validate_if_exists,
)
from airflow_provider_msghistory.transfers.download import Link, ResumableDownload
from airflow_provider_msghistory.transfers.lineage import export_lineage
from airflow_provider_msghistory.transfers.streaming import PartFile

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook


class MsgHistoryExportToStorageOperator(BaseOperator):
    """Download a completed export's CSV to a file on local disk or object storage, byte-exact.

    Gets a fresh pre-signed link just before downloading (an expired export is regenerated and waited for:
    in the triggerer when ``deferrable``, else in the worker) and streams it chunk by chunk, so memory stays
    flat whatever the size. A rejected link is replaced; a broken or truncated body is resumed with
    ``Range`` where the server allows it, else restarted; attempts are bounded. The API key never reaches
    the download host.

    Bytes go to a hidden temporary name beside the destination (``.<name>.part-<uuid>``), moved into place
    only once complete and checked against the announced size; on any failure the temporary file (or the
    multipart upload) is discarded, so a failed task never leaves a partial file at the destination.

    Static arguments are checked when the DAG is parsed, templated ones at task start, and the store
    (bucket exists, file already there) before the download starts. A static destination is declared as an
    outlet Asset (Dataset on Airflow 2).

    Returns (XCom) ``{"path", "export_id", "bytes", "rows", "sha256", "sha256_of": "csv", "compression",
    "stored_bytes", "skipped"}``: ``bytes``, ``rows`` (data rows, header excluded) and ``sha256`` describe
    the CSV as served, before any compression; ``stored_bytes`` is the size written at ``path``.

    With the ``[openlineage]`` extra installed, the OpenLineage listener reports the export as the task's
    input and the file as its output (:mod:`~airflow_provider_msghistory.transfers.lineage`).

    :param export_id: the export to download, usually
        ``"{{ ti.xcom_pull(task_ids='export')['export_id'] }}"``. Templated.
    :param destination: file URL (``file:///…``, ``s3://bucket/key``, any scheme Airflow's ObjectStoragePath
        knows) or an ObjectStoragePath. Templated.
    :param storage_conn_id: Airflow connection used to reach the store (e.g. an ``aws`` connection).
    :param if_exists: ``"fail"`` (default), ``"replace"`` or ``"skip"`` (keep the file, download nothing).
    :param compression: ``None`` (the CSV as served) or ``"gzip"``.
    :param msghistory_conn_id: Airflow connection of the API.
    :param deferrable: wait for a regenerated export in the triggerer instead of the worker.
    :param poll_interval: seconds between status polls while waiting for a regenerated export.
    :param timeout: seconds to wait for a regenerated export before failing.
    :param max_attempts: failed download attempts allowed (expired link, broken stream) before failing.
    :param max_regenerations: how many times an expired export may be regenerated.
    """

    template_fields: Sequence[str] = ("export_id", "destination")
    ui_color = "#e6f5e9"

    def __init__(
        self,
        *,
        export_id: str,
        destination: Any,
        storage_conn_id: str | None = None,
        if_exists: str = "fail",
        compression: str | None = None,
        msghistory_conn_id: str = "msghistory_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float = 3600,
        max_attempts: int = 5,
        max_regenerations: int = 3,
        **kwargs: Any,
    ) -> None:
        self.if_exists = validate_if_exists(if_exists)
        self.compression = validate_compression(compression)
        self.poll_interval = _positive(poll_interval, "poll_interval", "10")
        self.timeout = _positive(timeout, "timeout", "3600")
        self.max_attempts = _count(max_attempts, "max_attempts", "5", minimum=1)
        self.max_regenerations = _count(max_regenerations, "max_regenerations", "3", minimum=0)
        if not is_templated(export_id):
            _export_id(export_id)
        static_destination = None if is_templated(destination) else parse_destination(destination,
                                                                                        storage_conn_id)
        if static_destination is not None:
            from airflow.providers.common.compat.sdk import Asset

            kwargs["outlets"] = [*_as_list(kwargs.get("outlets")), Asset(static_destination.url)]
        super().__init__(**kwargs)
        self.export_id = export_id
        self.destination = destination
        self.storage_conn_id = storage_conn_id
        self.msghistory_conn_id = msghistory_conn_id
        self.deferrable = deferrable
        # What the finished transfer read and wrote, for OpenLineage: (base URL, vendor, export id, file).
        self._lineage: tuple[str, str, str, Destination] | None = None

    @cached_property
    def hook(self) -> MsgHistoryHook:
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        return MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id)

    # -- execution ----------------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        export_id, dest = self._rendered()
        fs = dest.filesystem()
        if check_destination_store(dest, fs, self.if_exists) and self.if_exists == "skip":
            return self._skipped(export_id, dest)
        client = self.hook.get_client()
        waiter = self._waiter(export_id)
        job, page = client.find_export(export_id, page_size=LIST_PAGE_SIZE)
        decision = waiter.observe(job, page)
        if decision.action == "fail":
            raise AirflowException(f"export {export_id}: {decision.reason}")
        if decision.action != "done":
            self.log.info("Export %s is not downloadable yet: %s", export_id, decision.reason)
            if decision.action == "regenerate":
                client.regenerate_download_link(export_id)
                waiter.regenerated()
            if self.deferrable:
                self._defer(waiter)
            wait_sync(client, waiter, self.log)
        return self._transfer(client, export_id, dest, fs, waiter)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger saw the regenerated export ready: download it."""
        raise_for_event(event)
        export_id, dest = self._rendered()
        fs = dest.filesystem()
        if check_destination_store(dest, fs, self.if_exists) and self.if_exists == "skip":
            return self._skipped(export_id, dest)
        waiter = self._waiter(export_id)
        waiter.regenerations = int(event.get("regenerations") or 0)
        return self._transfer(self.hook.get_client(), export_id, dest, fs, waiter)

    def _rendered(self) -> tuple[str, Destination]:
        """The export id and destination after rendering, validated before any request."""
        return _export_id(self.export_id), parse_destination(self.destination, self.storage_conn_id)

    def _waiter(self, export_id: str) -> ExportWaiter:
        return ExportWaiter(export_id, self.poll_interval, time.time() + self.timeout, self.max_regenerations)

    def _defer(self, waiter: ExportWaiter) -> None:
        from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

        self.defer(
            trigger=MsgHistoryExportTrigger(
                export_id=waiter.export_id,
                msghistory_conn_id=self.msghistory_conn_id,
                poll_interval=self.poll_interval,
                end_time=waiter.deadline,
                max_regenerations=self.max_regenerations,
                page_hint=waiter.page_hint,
                regenerations=waiter.regenerations,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 5 * self.poll_interval + 60),
        )

    def _transfer(
        self, client: ExportClient, export_id: str, dest: Destination, fs: Any, waiter: ExportWaiter
    ) -> dict[str, Any]:
        part = PartFile(dest, fs, self.compression)
        links = _FreshLinks(client, waiter, self.timeout, self.log)
        self.log.info("Downloading export %s to %s (temporary %s)", export_id, dest.url, part.path)
        part.open()
        try:
            stats = ResumableDownload(
                client, links, part, label=f"export {export_id}", max_attempts=self.max_attempts, log=self.log
            ).run()
            if stats.total is None:
                self.log.warning("The server sent no Content-Length for export %s: its size is unchecked",
                                 export_id)
            stored = part.finish()  # checks the stored size against the bytes written
            part.commit(replace=self.if_exists != "fail")
        except BaseException:
            part.abort()
            raise
        self._lineage = (client.config.base_url, client.dialect.name, export_id, dest)
        digest = stats.digest
        self.log.info("Stored export %s at %s: %s bytes, %s rows, sha256 %s", export_id, dest.url,
                      f"{digest.size:,}", f"{digest.rows:,}", digest.sha256)
        return {
            "path": dest.url,
            "export_id": export_id,
            "bytes": digest.size,
            "rows": digest.rows,
            "sha256": digest.sha256,
            "sha256_of": "csv",
            "compression": self.compression,
            "stored_bytes": stored,
            "skipped": False,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the vendor export as input, the file written as output (nothing when skipped).

        Called by the OpenLineage listener (``[openlineage]`` extra) after the task finished.
        """
        if self._lineage is None:
            from airflow.providers.openlineage.extractors import OperatorLineage

            return OperatorLineage()
        return export_lineage(*self._lineage)

    def _skipped(self, export_id: str, dest: Destination) -> dict[str, Any]:
        self.log.info("%s already exists and if_exists='skip': nothing downloaded", dest.url)
        return {"path": dest.url, "export_id": export_id, "bytes": None, "rows": None, "sha256": None,
                "sha256_of": "csv", "compression": self.compression, "stored_bytes": None, "skipped": True}


class _FreshLinks:
    """Issues download links; an expired export is regenerated and waited for in the worker.

    (Mid-download there is a part file in flight, so the wait cannot be handed to the triggerer.)
    """

    def __init__(
        self, client: ExportClient, waiter: ExportWaiter, timeout: float, log: Any
    ) -> None:
        self.client = client
        self.waiter = waiter
        self.timeout = timeout
        self.log = log
        self.generation = 0

    def fresh(self) -> Link:
        export_id = self.waiter.export_id
        try:
            return self._link(export_id)
        except ExportExpiredError:
            if self.waiter.regenerations >= self.waiter.max_regenerations:
                raise
            self.log.warning("Export %s expired mid-transfer; regenerating it and waiting", export_id)
            self.client.regenerate_download_link(export_id)
            self.waiter.regenerated()
            self.generation += 1
            self.waiter.deadline = max(self.waiter.deadline, time.time() + self.timeout)
            wait_sync(self.client, self.waiter, self.log)
            return self._link(export_id)

    def _link(self, export_id: str) -> Link:
        from airflow_provider_msghistory.hooks.msghistory import mask_link_query

        url = self.client.get_download_link(export_id).url
        mask_link_query(url)
        return Link(url, self.generation)


def _export_id(value: object) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text or text in ("None", ".", ".."):
        raise ValueError(f"export_id: expected an export id such as 'exp_123' (usually "
                         f"\"{{{{ ti.xcom_pull(task_ids='export')['export_id'] }}}}\"); got {value!r}")
    return text


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _positive(value: object, param: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{param}: expected a number of seconds > 0, e.g. {example}; got {value!r}")
    return float(value)


def _count(value: object, param: str, example: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{param}: expected an integer >= {minimum}, e.g. {example}; got {value!r}")
    return value
