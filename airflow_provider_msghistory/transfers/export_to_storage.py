"""Stream a finished export's CSV to any storage path Airflow's ObjectStoragePath knows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, conf

from airflow_provider_msghistory.arguments import (
    BadArgumentError,
    check_export_origin,
    checked_export_id,
    count,
    is_templated,
    positive_seconds,
)
from airflow_provider_msghistory.client.datetimes import iso_utc, parse_vendor_time
from airflow_provider_msghistory.client.errors import ExportExpiredError
from airflow_provider_msghistory.client.models import ExportJob, ExportKind, ExportStatus
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.waiting import ExportWaiter
from airflow_provider_msghistory.transfers.destination import (
    Destination,
    check_destination_store,
    parse_destination,
)
from airflow_provider_msghistory.transfers.download import Link, ResumableDownload
from airflow_provider_msghistory.transfers.lineage import export_lineage
from airflow_provider_msghistory.transfers.merge import MAX_PART_BYTES, CsvMerger, MergeStats
from airflow_provider_msghistory.transfers.partition_store import publish, stager
from airflow_provider_msghistory.transfers.partitions import CsvPartitioner
from airflow_provider_msghistory.transfers.parts import JobFileLinks, MergeStartOver, download_parts
from airflow_provider_msghistory.transfers.streaming import PartFile
from airflow_provider_msghistory.transfers.to_storage import StorageTransferOperator
from airflow_provider_msghistory.utils.waits import (
    defer_wait,
    finished_event,
    wait_in_worker,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_msghistory.client.api import ExportClient

ON_EMPTY_CHOICES = ("write", "skip", "fail")


class MsgHistoryExportToStorageOperator(StorageTransferOperator):
    """Download a completed export to one CSV file on local disk or object storage.

    One CSV per export, whatever the vendor delivers: a single pre-signed link (Qlara) is streamed byte for
    byte; a job with several files (8x8) is downloaded part by part, each part unpacked when it is gzip or
    zip (detected by magic bytes), and merged in order with the header once (parts with differing headers
    fail, writing nothing). When the export id carries a window (vendors whose bounds are not exact, see
    :class:`~airflow_provider_msghistory.client.refs.ExportRef`), only rows whose time lies in
    ``[start, end)`` are kept, streaming; quoted fields pass through byte for byte. A bare vendor job id
    (no window) of such a vendor is transferred unfiltered, with a warning.

    Gets fresh links just before downloading: an expired Qlara export is regenerated and waited for (in the
    triggerer when ``deferrable``, else in the worker); links past their expiry on a vendor that cannot
    regenerate (8x8) fail with a message that a new export is needed. A broken or truncated body is resumed
    with ``Range`` where the server allows it, else restarted; attempts are bounded. Credentials go only to
    the API's own origin.

    Bytes go to a hidden temporary name beside the destination (``.<name>.part-<uuid>``), moved into place
    only once complete; on any failure it (or the multipart upload) is discarded, so a failed task never
    leaves a partial file at the destination.

    An export that finished with no rows (``empty``) is not a failure: ``on_empty="write"`` stores the
    vendor's documented header alone (8x8 SMS) or an empty file, ``"skip"`` stores nothing, ``"fail"``
    fails the task.

    Returns (XCom) ``{"path", "export_id", "bytes", "rows", "sha256", "sha256_of": "csv", "compression",
    "stored_bytes", "skipped", "parts", "dropped_rows", "empty"}``: ``bytes``, ``rows`` (data rows, header
    excluded) and ``sha256`` describe the CSV written, before any storage compression; ``parts`` how many
    files it was made of; ``dropped_rows`` the rows left out as outside the window; ``stored_bytes`` the
    size written at ``path``.

    With the ``[openlineage]`` extra installed, the OpenLineage listener reports the export as the task's
    input and the file as its output (:mod:`~airflow_provider_msghistory.transfers.lineage`).

    :param export_id: the export to download, usually
        ``"{{ ti.xcom_pull(task_ids='export')['export_id'] }}"``. Templated.
    :param destination: file URL (``file:///…``, ``s3://bucket/key``, any scheme Airflow's ObjectStoragePath
        knows) or an ObjectStoragePath. Templated.
    :param storage_conn_id: Airflow connection used to reach the store (e.g. an ``aws`` connection).
    :param if_exists: ``"fail"`` (default), ``"replace"`` or ``"skip"`` (keep the file, download nothing).
    :param compression: ``None`` (the CSV) or ``"gzip"``.
    :param on_empty: ``"write"`` (default: header-only or empty file), ``"skip"`` or ``"fail"``.
    :param msghistory_conn_id: Airflow connection of the API.
    :param deferrable: wait for a not-yet-ready export in the triggerer instead of the worker.
    :param poll_interval: seconds between status polls while waiting for the export.
    :param timeout: seconds to wait for the export before failing.
    :param max_attempts: failed download attempts allowed per file (expired link, broken stream).
    :param max_regenerations: how many times an expired export may be regenerated (where it can).
    :param max_part_bytes: the most one downloaded part (one zip member) may unpack to; more fails the task
        as a compression bomb (default 16 GiB).
    :param partition_by: ``"day"`` or ``"hour"``: write one file per partition of the export's window,
        each row placed by its send time (the vendor's column, :attr:`Dialect.row_time_column`); the
        destination holds ``{partition}``, e.g. ``s3://lake/sms/date={partition}/messages.csv``. Every
        partition the window covers is written (header-only when empty), each replaced atomically and only
        by a later snapshot, with ``<file name>.manifest.json`` beside it. ``None`` (default): one file.
        The XCom adds ``partitions`` (per partition: ``partition``, ``path``, ``manifest``, ``snapshot``,
        ``rows``, ``bytes``, ``stored_bytes``, ``sha256``, ``statuses``, ``replaced``). See
        ``docs/settled-history.md``.
        An empty export (``on_empty="write"``) writes every partition header-only.
    :param partition_timezone: IANA zone whose days (hours) the partitions are (default ``"UTC"``).
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
        on_empty: str = "write",
        msghistory_conn_id: str = "msghistory_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10,
        timeout: float = 3600,
        max_attempts: int = 5,
        max_regenerations: int = 3,
        max_part_bytes: int = MAX_PART_BYTES,
        partition_by: str | None = None,
        partition_timezone: str = "UTC",
        **kwargs: Any,
    ) -> None:
        if on_empty not in ON_EMPTY_CHOICES:
            raise ValueError(f"on_empty: expected one of {', '.join(ON_EMPTY_CHOICES)}; got {on_empty!r}")
        self.on_empty = on_empty
        self.poll_interval = positive_seconds(poll_interval, "poll_interval", "10")
        self.timeout = positive_seconds(timeout, "timeout", "3600")
        self.max_attempts = count(max_attempts, "max_attempts", "5", minimum=1)
        self.max_regenerations = count(max_regenerations, "max_regenerations", "3", minimum=0)
        self.max_part_bytes = count(max_part_bytes, "max_part_bytes", str(MAX_PART_BYTES), minimum=1)
        if not is_templated(export_id):
            checked_export_id(export_id)
        super().__init__(
            destination=destination,
            storage_conn_id=storage_conn_id,
            if_exists=if_exists,
            compression=compression,
            msghistory_conn_id=msghistory_conn_id,
            partition_by=partition_by,
            partition_timezone=partition_timezone,
            **kwargs,
        )
        self.export_id = export_id
        self.deferrable = deferrable
        # What the finished transfer read and wrote, for OpenLineage: (base URL, vendor, export id, file).
        self._lineage: tuple[str, str, str, Destination] | None = None

    # -- execution ----------------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        export_id, dest = self._rendered()
        client = self.hook.get_client()
        check_export_origin(self, context, export_id, self.msghistory_conn_id, client.dialect.name)
        if client.caps.delivery == "email":
            raise AirflowFailException(
                f"connection {self.msghistory_conn_id!r}: {client.dialect.name} e-mails its exports; "
                "there is no file to download. Load its message log with "
                "MsgHistoryMessagesToStorageOperator instead"
            )
        fs = dest.filesystem()
        if self._store_has(dest, fs) and self.if_exists == "skip":
            return self._skipped(export_id, dest)
        waiter = self._waiter(client, export_id)
        step = waiter.poke(client, self.log)
        if step.action == "fail":
            raise AirflowException(step.message)
        job = step.job
        if step.action != "done" or job is None:
            if self.deferrable:
                defer_wait(self, waiter, self.msghistory_conn_id)
            job = wait_in_worker(client, waiter, self.log)
        return self._transfer(client, export_id, job, dest, fs, waiter)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger saw the export ready: download it."""
        done = finished_event(event)
        export_id, dest = self._rendered()
        fs = dest.filesystem()
        if self._store_has(dest, fs) and self.if_exists == "skip":
            return self._skipped(export_id, dest)
        client = self.hook.get_client()
        waiter = self._waiter(client, export_id, page_hint=done.page_hint, regenerations=done.regenerations)
        job = None
        if client.caps.links_in_job:
            # The files are read again: this look goes through the wait's own decision, so a job that is
            # now cancelled, queued, expired or without its files fails instead of passing for empty.
            job = client.get_export(export_id)
            step = waiter.step(job)
            if step.action != "done":
                raise AirflowException(
                    f"export {export_id} was ready when the wait ended, but is no longer: {step.reason}"
                )
        return self._transfer(client, export_id, job, dest, fs, waiter)

    def check_before_export(self, context: Any) -> None:
        """The destination's checks, run by the upstream export operator before it submits the export
        (a file already there with ``if_exists='fail'``, a missing bucket, no credentials), so they fail in
        seconds rather than after the export's wait. A destination that does not render yet is checked at
        this task's own start instead.

        :raises ValueError: or ``PermissionError``, naming ``destination``.
        """
        destination = self.destination
        if is_templated(destination):
            if not isinstance(destination, str):
                return
            try:
                destination = self.render_template(destination, context)
            except Exception:  # reads what only exists later (the export's XCom): this task checks it
                return
        dest = parse_destination(destination, self.storage_conn_id)
        self._store_has(dest, dest.filesystem())

    def _rendered(self) -> tuple[str, Destination]:
        """The export id and destination after rendering, validated before any request."""
        dest = self._rendered_destination()
        return checked_export_id(self.export_id), dest

    def _store_has(self, dest: Destination, fs: Any) -> bool:
        """The store checks of task start (a partitioned destination is a template: its bucket only)."""
        return check_destination_store(dest, fs, "replace" if self.partitioning else self.if_exists)

    def _waiter(self, client: ExportClient, export_id: str, **kwargs: Any) -> ExportWaiter:
        deadline = time.time() + self.timeout
        return ExportWaiter.for_client(
            client, export_id, self.poll_interval, deadline, self.max_regenerations, **kwargs
        )

    def _transfer(
        self,
        client: ExportClient,
        export_id: str,
        job: ExportJob | None,
        dest: Destination,
        fs: Any,
        waiter: ExportWaiter,
    ) -> dict[str, Any]:
        empty = job is not None and job.status is ExportStatus.EMPTY  # only the vendor's word makes it empty
        if self.partitioning is not None:
            return self._partitioned(client, export_id, job, dest, waiter, empty)
        if empty:
            assert job is not None
            return self._empty(client, export_id, job, dest, fs)
        ref = ExportRef.parse(export_id)
        if not client.caps.exact_bounds and ref.window is None:
            self.log.warning(
                "Export id %r carries no window: %s bounds are not exact, so its rows are stored unfiltered "
                "(pass the export task's XCom export_id to cut them to [start, end))",
                export_id,
                client.dialect.name,
            )
        part = self._opened_part(dest, fs)
        self.log.info("Downloading export %s to %s (temporary %s)", export_id, dest.url, part.path)

        def fill() -> dict[str, Any]:
            if client.caps.links_in_job or ref.window is not None:
                return self._merged(client, export_id, job, ref, part, waiter)
            return self._single(client, export_id, part, waiter)

        result, stored = self._fill_and_commit(dest, part, fill)
        self._lineage = (client.config.base_url, client.dialect.name, export_id, dest)
        self.log.info(
            "Stored export %s at %s: %s bytes, %s rows (%s parts, %s rows outside the window left out), "
            "sha256 %s",
            export_id,
            dest.url,
            f"{result['bytes']:,}",
            f"{result['rows']:,}",
            result["parts"],
            f"{result['dropped_rows']:,}",
            result["sha256"],
        )
        return self._xcom(export_id, dest, stored=stored, skipped=False, empty=False, **result)

    def _single(
        self, client: ExportClient, export_id: str, part: PartFile, waiter: ExportWaiter
    ) -> dict[str, Any]:
        """One pre-signed link, streamed byte for byte (its digest is the served file's)."""
        links = _FreshLinks(client, waiter, self.timeout, self.log)
        stats = ResumableDownload(
            client, links, part, label=f"export {export_id}", max_attempts=self.max_attempts, log=self.log
        ).run()
        if stats.total is None:
            self.log.warning(
                "The server sent no Content-Length for export %s: its size is unchecked", export_id
            )
        digest = stats.digest
        return {
            "bytes": digest.size,
            "rows": digest.rows,
            "sha256": digest.sha256,
            "parts": 1,
            "dropped_rows": 0,
        }

    def _merged(
        self,
        client: ExportClient,
        export_id: str,
        job: ExportJob | None,
        ref: ExportRef,
        part: PartFile,
        waiter: ExportWaiter,
    ) -> dict[str, Any]:
        """The job's files, unpacked, merged with one header and cut to the export's window."""
        window, dialect = ref.window, client.dialect
        asked = dialect.asked_window(window) if window is not None else None
        if client.caps.links_in_job:
            if job is None or not job.files:  # a job the wait called done lists its files
                raise AirflowException(f"export {export_id}: the job lists no files to download")
            files = job.files
            links: list[Any] = [JobFileLinks(client, export_id, files, i) for i in range(len(files))]
        else:
            links = [_FreshLinks(client, waiter, self.timeout, self.log)]

        def merge(stream: bool) -> CsvMerger:
            merger = CsvMerger(part.write, window, dialect.row_time_column, asked)
            download_parts(
                client,
                links,
                merger,
                label=f"export {export_id}",
                max_attempts=self.max_attempts,
                max_part_bytes=self.max_part_bytes,
                log=self.log,
                stream=stream,
            )
            return merger

        # Plain parts are merged as they arrive. One that must start over from byte 0 spoils the merged
        # file: it is begun again once, every part then complete on local disk before it is merged.
        try:
            merger = merge(stream=True)
        except MergeStartOver as why:
            self.log.warning(
                "Export %s: %s; starting the merged file over, each part downloaded in full first",
                export_id,
                why,
            )
            part.restart()
            merger = merge(stream=False)
        stats = merger.finish()
        if stats.unreadable_times:
            self.log.warning(
                "Export %s: %s rows had a time that could not be read; they were kept",
                export_id,
                f"{stats.unreadable_times:,}",
            )
        if stats.dropped_rows and not stats.rows:
            self.log.warning(
                "Export %s: all %s rows read lie outside the window %s by their %r, so none was kept; if "
                "rows were expected, check the time column's format in the files",
                export_id,
                f"{stats.dropped_rows:,}",
                ref.window.encode() if ref.window else "",
                client.dialect.row_time_column,
            )
        return {
            "bytes": stats.bytes,
            "rows": stats.rows,
            "sha256": stats.sha256,
            "parts": len(links),
            "dropped_rows": stats.dropped_rows,
        }

    def _partitioned(
        self,
        client: ExportClient,
        export_id: str,
        job: ExportJob | None,
        template: Destination,
        waiter: ExportWaiter,
        empty: bool,
    ) -> dict[str, Any]:
        """The export's rows into one file per partition of its window (see ``partition_by``)."""
        assert self.partitioning is not None
        dialect = client.dialect
        if dialect.row_time_column is None:
            raise AirflowFailException(
                f"partition_by: {dialect.name} export files carry no send time to partition by; "
                "leave partition_by unset"
            )
        if empty and self.on_empty == "fail":
            raise AirflowException(f"export {export_id} finished with no rows and on_empty='fail'")
        if empty and self.on_empty == "skip":
            self.log.info("Export %s finished with no rows and on_empty='skip': nothing stored", export_id)
            skipped = self._xcom(export_id, template, stored=None, skipped=True, empty=True)
            return {**skipped, "partitions": []}
        ref = ExportRef.parse(export_id)
        if ref.window is None:
            self.log.warning(
                "Export id %r carries no window: only the partitions holding rows are written (pass the "
                "export task's XCom export_id, with restate_days on the export operator, to write every "
                "partition of the window, header-only ones included)",
                export_id,
            )
        if ref.window is not None:
            try:
                self.partitioning.check_start(ref.window, "export_id")
            except ValueError as error:
                raise BadArgumentError(str(error)) from None
        snapshot = self._snapshot(ref, job)
        label = f"export {export_id}"
        router = CsvPartitioner(
            self.partitioning, ref.window, dialect.row_time_column, dialect.status_column,
            stager(template, self.compression), label,
        )  # fmt: skip
        try:
            parts = 0
            if not empty:
                if client.caps.links_in_job:
                    files = job.files if job is not None else client.get_export(export_id).files
                    links: list[Any] = [JobFileLinks(client, export_id, files, i) for i in range(len(files))]
                else:
                    links = [_FreshLinks(client, waiter, self.timeout, self.log)]
                # The partitioner takes the parts as a merger does (header once), cutting to the window.
                download_parts(
                    client, links, router, label=label, max_attempts=self.max_attempts, log=self.log  # type: ignore[arg-type]
                )
                parts = len(links)
            kind = ExportKind.parse(job.kind) if job and job.kind else ExportKind.MESSAGE_HISTORY
            staged = router.finish(dialect.empty_csv_header(kind))
            manifest = {
                "vendor": dialect.name,
                "export_ids": [export_id],
                "window": _window_of(ref),
                "partition_by": self.partitioning.by,
                "partition_timezone": self.partitioning.timezone,
                "sha256_of": "csv",
                "compression": self.compression,
            }
            written = publish(staged, template, manifest, snapshot, self.log)
        finally:
            router.close()
        self.log.info(
            "Export %s: %s rows in %d partitions (%s rows outside the window left out)",
            export_id,
            f"{router.rows:,}",
            len(written),
            f"{router.dropped_rows:,}",
        )
        result = self._xcom(
            export_id,
            template,
            stored=sum(p["stored_bytes"] for p in written),
            skipped=False,
            empty=empty,
            bytes=sum(p["bytes"] for p in written),
            rows=router.rows,
            sha256=None,
            parts=parts,
            dropped_rows=router.dropped_rows,
        )
        return {**result, "snapshot": iso_utc(snapshot), "window": _window_of(ref), "partitions": written}

    def _snapshot(self, ref: ExportRef, job: ExportJob | None) -> datetime:
        """When the vendor was asked: carried by the export id, else the job's creation time, else now
        (a bound that errs late: say so)."""
        if ref.asked is not None:
            return ref.asked
        created = parse_vendor_time(job.created_at) if job is not None and job.created_at else None
        if created is not None:
            return created
        self.log.warning(
            "Export id carries no snapshot time and the vendor gave no creation time: using the transfer's "
            "start, so an older export finishing later may replace a newer partition (pass the export "
            "task's XCom export_id with restate_days to order them)"
        )
        return datetime.now(timezone.utc)

    def _empty(
        self, client: ExportClient, export_id: str, job: ExportJob, dest: Destination, fs: Any
    ) -> dict[str, Any]:
        """An export that finished with no rows: header-only or empty file, skip, or fail."""
        if self.on_empty == "fail":
            raise AirflowException(f"export {export_id} finished with no rows and on_empty='fail'")
        if self.on_empty == "skip":
            self.log.info("Export %s finished with no rows and on_empty='skip': nothing stored", export_id)
            return {**self._skipped(export_id, dest), "empty": True}
        kind = ExportKind.parse(job.kind) if job.kind else ExportKind.MESSAGE_HISTORY
        header = client.dialect.empty_csv_header(kind) or b""
        part = self._opened_part(dest, fs)

        def fill() -> MergeStats:
            merger = CsvMerger(part.write, None, None)
            if header:
                merger.add(iter((header,)), "documented header")
            return merger.finish()

        stats, stored = self._fill_and_commit(dest, part, fill)
        self._lineage = (client.config.base_url, client.dialect.name, export_id, dest)
        what = "the documented header alone" if header else "an empty file (no documented header)"
        self.log.info("Export %s finished with no rows: stored %s at %s", export_id, what, dest.url)
        return self._xcom(
            export_id,
            dest,
            bytes=stats.bytes,
            rows=0,
            sha256=stats.sha256,
            parts=0,
            dropped_rows=0,
            stored=stored,
            skipped=False,
            empty=True,
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """OpenLineage: the vendor export as input, the file written as output (nothing when skipped).

        Called by the OpenLineage listener (``[openlineage]`` extra) after the task finished.
        """
        if self._lineage is None:
            from airflow.providers.openlineage.extractors import OperatorLineage

            return OperatorLineage()
        return export_lineage(*self._lineage)

    def _xcom(
        self,
        export_id: str,
        dest: Destination,
        *,
        stored: int | None,
        skipped: bool,
        empty: bool,
        **result: Any,
    ) -> dict[str, Any]:
        return {
            "path": dest.url,
            "export_id": export_id,
            "bytes": result.get("bytes"),
            "rows": result.get("rows"),
            "sha256": result.get("sha256"),
            "sha256_of": "csv",
            "compression": self.compression,
            "stored_bytes": stored,
            "skipped": skipped,
            "parts": result.get("parts"),
            "dropped_rows": result.get("dropped_rows"),
            "empty": empty,
        }

    def _skipped(self, export_id: str, dest: Destination) -> dict[str, Any]:
        self.log.info("%s already exists and if_exists='skip': nothing downloaded", dest.url)
        return self._xcom(export_id, dest, stored=None, skipped=True, empty=False)


class _FreshLinks:
    """Issues an export's one download link; an expired export is regenerated and waited for in the worker.

    (Mid-download there is a part file in flight, so the wait cannot be handed to the triggerer.)
    """

    def __init__(self, client: ExportClient, waiter: ExportWaiter, timeout: float, log: Any) -> None:
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
            if not self.client.caps.regenerate or self.waiter.regenerations >= self.waiter.max_regenerations:
                raise
            self.log.warning("Export %s expired mid-transfer; regenerating it and waiting", export_id)
            self.client.regenerate_download_link(export_id)
            self.waiter.regenerated()
            self.generation += 1
            self.waiter.deadline = max(self.waiter.deadline, time.time() + self.timeout)
            wait_in_worker(self.client, self.waiter, self.log)
            return self._link(export_id)

    def _link(self, export_id: str) -> Link:
        from airflow_provider_msghistory.hooks.msghistory import mask_link_query

        url = self.client.get_download_link(export_id).url
        mask_link_query(url)
        return Link(url, self.generation)


def _window_of(ref: ExportRef) -> dict[str, str] | None:
    """The half-open window an export id carries, for manifests and the XCom."""
    if ref.window is None:
        return None
    return {"start": iso_utc(ref.window.start), "end": iso_utc(ref.window.end)}
