"""Page a vendor's message list over one exact window into one file on any storage ObjectStoragePath knows."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_msghistory.arguments import (
    RUN_INTERVAL_END,
    RUN_INTERVAL_START,
    BadArgumentError,
    check_run_interval,
    count,
    is_templated,
    positive_seconds,
    with_interval_advice,
)
from airflow_provider_msghistory.client.datetimes import format_api, iso_utc, parse_aware
from airflow_provider_msghistory.client.history import HistoryPage, message_list_of
from airflow_provider_msghistory.client.windows import Window, restated_start
from airflow_provider_msghistory.transfers.destination import (
    Destination,
    check_destination_store,
)
from airflow_provider_msghistory.transfers.partition_store import publish, stager
from airflow_provider_msghistory.transfers.partitions import RecordPartitioner
from airflow_provider_msghistory.transfers.records import FORMATS, writer_for
from airflow_provider_msghistory.transfers.to_storage import StorageTransferOperator

if TYPE_CHECKING:
    from airflow_provider_msghistory.client.api import ExportClient
    from airflow_provider_msghistory.client.dialects.base import MessageListSpec

EXAMPLE_CHANNELS = "['SMS', 'WHATSAPP']"


class MsgHistoryMessagesToStorageOperator(StorageTransferOperator):
    """Page the vendor's message list for ``[start_datetime, end_datetime)`` into one JSONL or CSV file.

    The list (Qlara: ``GET /messages/history``) suits short windows, near-real-time loads and status
    filters; for large ranges the export (:class:`MsgHistoryExportOperator`) is cheaper. One series of pages
    is read per channel, each to the vendor's last-page rule, with the largest page the vendor serves.

    Exact windows: the window is half-open and defaults to the run's data interval, with the export
    operator's rules and errors; the vendor gets the bounds that cover it exactly (Qlara: inclusive
    milliseconds, ``end - 1 ms``) and records sent outside it are dropped, so consecutive runs give every
    message once.

    Paced, not bounced: every request takes a permit from the API key's limiter, shared by all clients of
    the key in the process (Qlara: 1,000/min, bursts of 50/s). A 429 holds every client of the key for the
    server's ``retryAfter``; ``X-RateLimit-Remaining: 0`` holds them until the reset; a page refused even
    after retries is asked again until the refusals have lasted 15 minutes. Across workers the key's limit
    is shared too: cap concurrent loads of one key with an Airflow pool (see the README).

    Nothing partial: the file is written through a hidden part file beside the destination and moved into
    place only once complete; any failure discards it. Memory stays flat (records stream through; CSV is
    spooled to a local temporary file to learn its columns, then rewritten).

    Not resumable: a retry reads the window again from page 0. The pages already read would have to
    survive the failed try somewhere the next try (maybe on another worker) can read them, and the only such
    place is the destination store, where a partial object is exactly what this operator promises never to
    leave; a retry costs at most the window's pages again (an hour of 1,000-record pages is a few requests
    per thousand messages), and large windows belong to the export, which does resume.

    Not deferrable: the work is the paging itself, requests back to back at the rate limit; there is no
    wait to hand to the triggerer.

    Bad input (unknown channel or status for the vendor, naive datetime, inverted or empty window, ``format``
    not jsonl/csv, a vendor without a message list, a page size above the vendor's) fails at DAG parse for
    static values or at task start, before any request, naming the argument (a ``ValueError``; at task
    start one that fails the task without retries, since a retry would render the same).

    Returns (XCom) ``{"path", "records", "requests", "sha256", "bytes", "format", "compression",
    "stored_bytes", "window": {"start", "end"}, "channels", "status", "skipped", "duplicates"}``: ``sha256``
    and ``bytes`` describe the file before compression, ``stored_bytes`` what was written at ``path``,
    ``requests`` the pages read, ``window`` the half-open window loaded, ``duplicates`` the records left out
    as served twice in one channel's series (same vendor id: pages that overlap or shift under offset
    paging of a live list; the ids of the last 1,000,000 records of a series are kept, as 8-byte digests).

    :param destination: file URL (``file:///…``, ``s3://bucket/key``, any scheme Airflow's ObjectStoragePath
        knows) or an ObjectStoragePath. Templated.
    :param storage_conn_id: Airflow connection used to reach the store (e.g. an ``aws`` connection).
    :param if_exists: ``"fail"`` (default), ``"replace"`` or ``"skip"`` (keep the file, read nothing).
    :param compression: ``None`` or ``"gzip"``.
    :param msghistory_conn_id: Airflow connection of the API.
    :param start_datetime: aware window start (included); datetime or ISO-8601 string with offset.
        Templated; default the data interval's start.
    :param end_datetime: aware window end (excluded). Templated; default the data interval's end.
    :param channels: channels to read (default: every channel the vendor has; Qlara SMS, RCS, WHATSAPP).
        Templated.
    :param status: only messages in this delivery status (e.g. ``"DELIVERED"``). Templated.
    :param format: ``"jsonl"`` (default: one JSON object per record, the vendor's fields as served plus
        ``channel`` where a record lacks it) or ``"csv"`` (the known fields first, then the rest in
        first-seen order).
    :param page_size: records per page (default: the largest the vendor serves).
    :param progress_interval: seconds between progress lines.
    :param partition_by: ``"day"`` or ``"hour"``: one file per partition of the window, each record placed
        by its send time (the list's ``time_fields``); the destination holds ``{partition}``. Every
        partition the window covers is written (header-only, or empty for JSONL, when no message was sent
        in it), each replaced atomically and only by a later snapshot (when the first page was asked), with
        ``<file name>.manifest.json`` beside it; the XCom adds ``partitions``. ``None`` (default): one file.
    :param partition_timezone: IANA zone whose days (hours) the partitions are (default ``"UTC"``).
    :param restate_days: widen the window to ``[start - restate_days days, end)`` (default 0; calendar days
        of ``partition_timezone``), so each run rewrites the trailing days with their settled statuses. See
        ``docs/settled-history.md``.
    """

    template_fields: Sequence[str] = ("destination", "start_datetime", "end_datetime", "channels", "status")
    ui_color = "#e6f5e9"

    def __init__(
        self,
        *,
        destination: Any,
        storage_conn_id: str | None = None,
        if_exists: str = "fail",
        compression: str | None = None,
        msghistory_conn_id: str = "msghistory_default",
        start_datetime: datetime | str = RUN_INTERVAL_START,
        end_datetime: datetime | str = RUN_INTERVAL_END,
        channels: Sequence[str] | str | None = None,
        status: str | None = None,
        format: str = "jsonl",
        page_size: int | None = None,
        progress_interval: float = 10.0,
        partition_by: str | None = None,
        partition_timezone: str = "UTC",
        restate_days: int = 0,
        **kwargs: Any,
    ) -> None:
        self.restate_days = count(restate_days, "restate_days", "3", minimum=0)
        if format not in FORMATS:
            raise ValueError(f"format: {format!r} is not one of 'jsonl', 'csv'; e.g. format='csv'")
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1
        ):
            raise ValueError(
                f"page_size: expected a positive integer such as 1000, or None for the "
                f"largest the vendor serves; got {page_size!r}"
            )
        positive_seconds(progress_interval, "progress_interval", "10")
        if not is_templated(start_datetime) and not is_templated(end_datetime):
            _window(start_datetime, end_datetime)
        if not is_templated(channels):
            _channel_list(channels)
        if not is_templated(status):
            _status(status)
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
        # Whether the window is the run's data interval, which a run without a logical date lacks.
        self._window_from_run = start_datetime == RUN_INTERVAL_START and end_datetime == RUN_INTERVAL_END
        self._window_templated = is_templated(start_datetime) or is_templated(end_datetime)
        self.start_datetime = start_datetime
        self.end_datetime = end_datetime
        self.channels = channels
        self.status = status
        self.format = format
        self.page_size = page_size
        self.progress_interval = float(progress_interval)

    # -- execution ----------------------------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        # Everything is checked before the first request: arguments, vendor, then the store.
        try:
            dest = self._rendered_destination()
            if self._window_from_run:
                check_run_interval(self.start_datetime, self.end_datetime)
            try:
                start, end = _window(self.start_datetime, self.end_datetime)
            except ValueError as error:
                raise with_interval_advice(error, self._window_templated) from None
            zone = self.partitioning.tz if self.partitioning else timezone.utc
            start = restated_start(start, self.restate_days, zone)
            if self.partitioning is not None:
                self.partitioning.check_start(Window(start, end), "start_datetime")
            status = _status(self.status)
            client = self.hook.get_client()
            spec = _message_list(client)
            channels = self._channels(spec)
            series = self._series(client, spec, channels, start, end, status)
        except ValueError as error:
            # Rendered arguments stay wrong on a retry: fail at once, as the export operator does.
            raise BadArgumentError(str(error)) from error
        fs = dest.filesystem()
        if self.partitioning is not None:
            check_destination_store(dest, fs, "replace")  # a template: its bucket only
            return self._load_partitions(client, dest, spec, series, start, end, channels, status)
        if check_destination_store(dest, fs, self.if_exists) and self.if_exists == "skip":
            self.log.info("%s already exists and if_exists='skip': nothing read", dest.url)
            return self._result(dest, start, end, channels, status, None, skipped=True)
        return self._load(dest, fs, spec, series, start, end, channels, status)

    def _load_partitions(
        self,
        client: ExportClient,
        template: Destination,
        spec: MessageListSpec,
        series: list[Iterator[HistoryPage]],
        start: datetime,
        end: datetime,
        channels: list[str | None],
        status: str | None,
    ) -> dict[str, Any]:
        """The list into one file per partition of ``[start, end)`` (see ``partition_by``)."""
        assert self.partitioning is not None
        dialect = client.dialect
        known = _known_fields(spec)
        router = RecordPartitioner(
            self.partitioning, Window(start, end), self.format, known, dialect.message_time,
            dialect.status_column, stager(template, self.compression),
        )  # fmt: skip
        # The snapshot: the vendor's view is read from the first page on, so its time is the earliest.
        snapshot = datetime.now(timezone.utc)
        self.log.info(
            "Loading the message list of %s .. %s (channels %s%s) into %s partitions of %s",
            format_api(start),
            format_api(end),
            channels,
            f", status {status}" if status else "",
            len(router.staged),
            template.url,
        )
        progress = _Progress(self.log, self.progress_interval)
        try:
            for pages in series:
                for page in pages:
                    for message in page.messages:
                        router.add(message)
                    progress.page(page, router.records)
            staged = router.finish()
            manifest = {
                "vendor": dialect.name,
                "export_ids": [],
                "source": "message_list",
                "channels": channels,
                "status_filter": status.upper() if status else None,
                "window": {"start": iso_utc(start), "end": iso_utc(end)},
                "partition_by": self.partitioning.by,
                "partition_timezone": self.partitioning.timezone,
                "sha256_of": self.format,
                "compression": self.compression,
            }
            written = publish(staged, template, manifest, snapshot, self.log)
        finally:
            router.close()
        result = self._result(template, start, end, channels, status, progress.requests)
        result.update(
            records=router.records,
            bytes=sum(p["bytes"] for p in written),
            stored_bytes=sum(p["stored_bytes"] for p in written),
            snapshot=iso_utc(snapshot),
            partitions=written,
        )
        return result

    def _channels(self, spec: MessageListSpec) -> list[str | None]:
        wanted = _channel_list(self.channels)
        if wanted is None:
            return list(spec.channels) or [None]
        if not spec.channels:
            raise ValueError("channels: this vendor's message list has no channels; leave channels unset")
        names = [spec.aliases.get(c.upper(), c.upper()) for c in wanted]
        unknown = [c for c, name in zip(wanted, names, strict=True) if name not in spec.channels]
        if unknown:
            others = f" (or {', '.join(spec.aliases)})" if spec.aliases else ""
            raise ValueError(
                f"channels: {unknown} not among this vendor's channels "
                f"{list(spec.channels)}{others}; e.g. channels={list(spec.channels[:2])}"
            )
        return list(dict.fromkeys(names))

    def _series(
        self,
        client: ExportClient,
        spec: MessageListSpec,
        channels: list[str | None],
        start: datetime,
        end: datetime,
        status: str | None,
    ) -> list[Iterator[HistoryPage]]:
        """One lazy page series per channel and window piece (a vendor capping one request's span gets
        the window in pieces under the cap); building them validates status and page size."""
        if status is not None and spec.statuses and status.upper() not in spec.statuses:
            raise ValueError(
                f"status: {status!r} is not one of this vendor's statuses "
                f"{list(spec.statuses)}; e.g. status={spec.statuses[0]!r}"
            )
        page_size = self.page_size or spec.max_page_size
        if page_size > spec.max_page_size:
            raise ValueError(
                f"page_size: {page_size} is more than this vendor serves "
                f"({spec.max_page_size}); pass at most {spec.max_page_size} or None"
            )
        cap = client.caps.max_window
        pieces = Window(start, end).split(cap) if cap is not None else [Window(start, end)]
        return [
            client.iter_history_pages(channel, piece.start, piece.end, status, page_size)
            for channel in channels
            for piece in pieces
        ]

    def _load(
        self,
        dest: Destination,
        fs: Any,
        spec: MessageListSpec,
        series: list[Iterator[HistoryPage]],
        start: datetime,
        end: datetime,
        channels: list[str | None],
        status: str | None,
    ) -> dict[str, Any]:
        part = self._opened_part(dest, fs)
        known = _known_fields(spec)
        self.log.info(
            "Loading the message list of %s .. %s (channels %s%s) to %s (temporary %s)",
            format_api(start),
            format_api(end),
            channels,
            f", status {status}" if status else "",
            dest.url,
            part.path,
        )
        writer = writer_for(self.format, part.write, known)
        progress = _Progress(self.log, self.progress_interval)

        def fill() -> None:
            for pages in series:
                for page in pages:
                    for message in page.messages:
                        writer.add(message)
                    progress.page(page, writer.records)
            writer.finish()

        _, stored = self._fill_and_commit(dest, part, fill, cleanup=writer.close)
        self.log.info(
            "Stored %s records at %s: %s bytes, %d requests (%.1f/s), sha256 %s",
            f"{writer.records:,}",
            dest.url,
            f"{writer.bytes:,}",
            progress.requests,
            progress.rate(),
            writer.sha256,
        )
        if progress.duplicates:
            self.log.warning(
                "Left out %s records the server sent twice (same id; pages overlapped or moved)",
                f"{progress.duplicates:,}",
            )
        result = self._result(dest, start, end, channels, status, progress.requests)
        result.update(
            records=writer.records,
            sha256=writer.sha256,
            bytes=writer.bytes,
            stored_bytes=stored,
            duplicates=progress.duplicates,
        )
        return result

    def _result(
        self,
        dest: Destination,
        start: datetime,
        end: datetime,
        channels: list[str | None],
        status: str | None,
        requests: int | None,
        skipped: bool = False,
    ) -> dict[str, Any]:
        return {
            "path": dest.url,
            "records": None,
            "requests": requests,
            "sha256": None,
            "bytes": None,
            "format": self.format,
            "compression": self.compression,
            "stored_bytes": None,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "channels": channels,
            "status": status.upper() if status else None,
            "skipped": skipped,
            "duplicates": None,
        }


class _Progress:
    """Logs records, pages and the request rate at most every ``interval`` seconds."""

    def __init__(self, log: Any, interval: float) -> None:
        self.log = log
        self.interval = interval
        self.requests = 0
        self.duplicates = 0  # records served twice in their series, left out
        self._start = time.monotonic()
        self._next = self._start + interval

    def page(self, page: HistoryPage, records: int) -> None:
        self.requests += 1
        self.duplicates += page.duplicates
        now = time.monotonic()
        if now >= self._next or page.last:
            self._next = now + self.interval
            self.log.info(
                "Message list: %s records so far; channel %s page %d%s; %d requests, %.1f/s",
                f"{records:,}",
                page.channel,
                page.page,
                " (its last)" if page.last else "",
                self.requests,
                self.rate(now),
            )

    def rate(self, now: float | None = None) -> float:
        return self.requests / max((now or time.monotonic()) - self._start, 1e-6)


def _message_list(client: ExportClient) -> MessageListSpec:
    try:
        return message_list_of(client.dialect)
    except ValueError as error:
        raise ValueError(f"msghistory_conn_id: the connection's {error}") from None


def _window(start: object, end: object) -> tuple[datetime, datetime]:
    start_dt, end_dt = parse_aware(start, "start_datetime"), parse_aware(end, "end_datetime")
    Window(start_dt, end_dt).check_not_empty()  # the export operator's rules and errors (empty, inverted)
    return start_dt, end_dt


def _known_fields(spec: MessageListSpec) -> tuple[str, ...]:
    """The CSV columns that come first: the vendor's record fields, then the channel each record was read
    for (added when the vendor's records do not carry it)."""
    return (*spec.fields, *(() if "channel" in spec.fields else ("channel",)))


def _channel_list(value: object) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, (list, tuple))
        or not items
        or not all(isinstance(c, str) and c.strip() for c in items)
    ):
        raise ValueError(
            f"channels: expected a list of channel names such as {EXAMPLE_CHANNELS}, or None "
            f"for every channel; got {value!r}"
        )
    return [c.strip() for c in items]


def _status(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"status: expected a delivery status such as 'DELIVERED', or None; got {value!r}")
    return value.strip().upper()
