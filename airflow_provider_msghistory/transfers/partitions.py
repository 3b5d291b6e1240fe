"""Date partitions: which partition a row's send time falls in, and the routers that stage each partition.

A partitioned transfer writes one file per day (or hour) of ``partition_timezone`` that its window covers,
header-only when no message was sent in it, each row placed by its send time as the vendor's dialect names
the column (:attr:`Dialect.row_time_column`; the message list's ``time_fields``). Rows are staged in local
files (constant memory, compressed as they will be stored; on local disk each partition's own part file),
then each partition is committed on its own, atomically and never over a later snapshot
(:mod:`airflow_provider_msghistory.transfers.partition_store`).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import IO, Any

from airflow_provider_msghistory.arguments import time_zone
from airflow_provider_msghistory.client.datetimes import parse_vendor_time
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.transfers.merge import MergeError, _canonical, _Records
from airflow_provider_msghistory.transfers.records import writer_for

PARTITION_BY = ("day", "hour")
PLACEHOLDER = "{partition}"
EXAMPLE_PARTITIONED = "s3://lake/msghistory/sms/date={partition}/messages.csv"
# Every zone's offset is a whole number of quarter hours: a partition boundary never falls inside one.
_QUARTER = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}
_FAR = datetime(9999, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Partitioning:
    """How rows are split into files.

    :param by: ``"day"`` or ``"hour"``.
    :param timezone: IANA name of the zone whose days (hours) the partitions are; DST days are 23 or 25 h.
    """

    by: str
    timezone: str
    tz: tzinfo = field(compare=False, repr=False)

    def label(self, when: datetime) -> str:
        """The partition of an instant: ``2025-03-01`` (day) or ``2025-03-01T13`` (hour), local time."""
        return when.astimezone(self.tz).strftime(_FORMATS[self.by])

    def bounds(self, when: datetime) -> tuple[datetime, datetime]:
        """The half-open span ``[start, end)`` of the partition holding ``when`` (UTC)."""
        name = self.label(when)
        step = _EPOCH + ((when.astimezone(timezone.utc) - _EPOCH) // _QUARTER) * _QUARTER
        start = step
        while self.label(start - _QUARTER) == name:  # walk back to the partition's first quarter hour
            start -= _QUARTER
        end = step + _QUARTER
        while self.label(end) == name:
            end += _QUARTER
        return start, end

    def check_start(self, window: Window, param: str) -> None:
        """``ValueError`` when ``window`` starts inside a partition: that partition would be replaced by a
        part of itself (its earlier rows lost). An end inside one is fine: the partition is completed by
        the next run, with a later snapshot."""
        start = window.utc().start
        if self.label(start - timedelta(microseconds=1)) == self.label(start):
            raise ValueError(
                f"{param}: the window starts at {start.isoformat()}, inside the {self.by} "
                f"{self.label(start)} of {self.timezone}; writing it would replace that partition with part "
                f"of it. Start the window at a {self.by}'s start in {self.timezone} (a DAG in that time "
                "zone, and the same partition_timezone on the export operator for restate_days)"
            )

    def labels(self, window: Window) -> list[str]:
        """Every partition ``[start, end)`` touches, in order (a quarter-hour walk: exact in any zone)."""
        start, end = window.utc().start, window.utc().end
        labels: dict[str, None] = {}
        step = start
        while step < end:
            labels[self.label(step)] = None
            step = _EPOCH + ((step - _EPOCH) // _QUARTER + 1) * _QUARTER
        return list(labels)


def partitioning(
    partition_by: object, partition_timezone: object, if_exists: str | None = None
) -> Partitioning | None:
    """The validated arguments (``None``: an unpartitioned transfer); ``ValueError`` naming the argument."""
    if partition_by is None:
        if partition_timezone not in (None, "UTC"):
            raise ValueError(
                "partition_timezone: only used with partition_by; pass partition_by='day' as well, or drop it"
            )
        return None
    if partition_by not in PARTITION_BY:
        raise ValueError(f"partition_by: {partition_by!r} is not one of 'day', 'hour' (or None); e.g. 'day'")
    name = "UTC" if partition_timezone is None else partition_timezone
    tz = time_zone(name, "partition_timezone")
    if if_exists == "skip":
        raise ValueError(
            "if_exists: 'skip' does not apply to partitions, which a later snapshot always replaces; "
            "leave if_exists unset"
        )
    return Partitioning(str(partition_by), str(name).strip(), tz)


def check_template(destination: str, scheme: Partitioning | None) -> None:
    """The destination holds ``{partition}`` exactly when the transfer is partitioned."""
    if scheme is not None and PLACEHOLDER not in destination:
        raise ValueError(
            f"destination: {destination!r} has no {PLACEHOLDER} placeholder, which partition_by needs; "
            f"e.g. {EXAMPLE_PARTITIONED!r}"
        )
    if scheme is None and PLACEHOLDER in destination:
        raise ValueError(
            f"destination: {destination!r} holds {PLACEHOLDER} but partition_by is not set; pass "
            "partition_by='day' (or 'hour'), or a plain file name"
        )


class Staged:
    """One partition's bytes in a local file, as they will be stored, with their figures.

    ``sha256`` and ``bytes`` describe the file before compression (what a reader gets back), ``stored``
    what is written at the destination.

    :param label: the partition.
    :param compression: ``None`` or ``"gzip"``.
    :param path: where to write: the partition's own part file on local disk (committed by a rename,
        no copy); ``None``: an anonymous temporary file (uploaded at commit).
    """

    def __init__(self, label: str, compression: str | None, path: str | None = None) -> None:
        self.label = label
        self.path = path
        # Closed (and a named one deleted unless moved into place) by close().
        self.file: IO[bytes] = (
            open(path, "w+b")  # noqa: SIM115
            if path is not None
            else tempfile.TemporaryFile(prefix="msghistory-partition-")  # noqa: SIM115
        )
        self._out: Any = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self.file, compresslevel=6, mtime=0)
            if compression == "gzip"
            else self.file
        )
        self._sha = hashlib.sha256()
        self.bytes = 0
        self.rows = 0
        self.statuses: Counter[str] = Counter()
        self.stored = 0

    def write(self, data: bytes) -> None:
        if data:
            self._out.write(data)
            self._sha.update(data)
            self.bytes += len(data)

    def finish(self) -> None:
        if self._out is not self.file:
            self._out.close()  # the gzip trailer; leaves the temporary file open
        self.file.flush()
        self.stored = self.file.tell()
        self.file.seek(0)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def close(self) -> None:
        self.file.close()
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):  # gone: moved into place
                os.unlink(self.path)


#: a partition's label -> its staged file (see :func:`~.partition_store.stager`)
Stager = Callable[[str], Staged]


class CsvPartitioner:
    """An export's CSV parts (header first in each, as :class:`CsvMerger` takes them) to one staged file
    per partition, in one pass: the header once, every later part's header checked against it.

    Records are split outside quoted fields (a quoted body passes byte for byte); only the send-time and
    status columns are read. Rows outside ``window`` are dropped (counted); a row whose time cannot be read
    fails the transfer, naming it: it could land in no partition.

    :param scheme: the partitioning.
    :param window: the half-open window asked; every partition it touches is written. ``None`` (an export
        whose id carries no window): every row is kept and only the partitions holding rows are written.
    :param time_column: header name of the send time (case-insensitive).
    :param status_column: header name of the delivery status, counted per partition (``None``: not counted).
    :param stage: makes a partition's staged file.
    :param label: what the stream is, for errors.
    """

    def __init__(
        self,
        scheme: Partitioning,
        window: Window | None,
        time_column: str,
        status_column: str | None,
        stage: Stager,
        label: str,
    ) -> None:
        self.scheme = scheme
        self.time_column = time_column
        self.status_column = status_column
        self.label = label
        self.stage = stage
        self.staged = {name: stage(name) for name in scheme.labels(window)} if window else {}
        utc = window.utc() if window else Window(_EPOCH, _FAR)
        self._start, self._end = utc.start, utc.end
        self._start_key, self._end_key = _canonical(utc.start), _canonical(utc.end)
        # Sub-millisecond bounds make the byte comparison inexact: compare parsed times then.
        self._exact_keys = utc.start.microsecond % 1000 == 0 and utc.end.microsecond % 1000 == 0
        self._newline = b"\n"
        self._header: bytes | None = None
        self._time_index = self._status_index = 0
        self._last_index = 0
        self._current = (b"", b"", "")  # the partition last placed in: (low, high) canonical times, label
        self._bounds: dict[str, tuple[bytes, bytes]] = {}
        self.rows = 0
        self.dropped_rows = 0

    def add(self, chunks: Iterator[bytes], label: str) -> None:
        """One downloaded part's CSV stream (what ``download_parts`` hands a merger): its header is the
        first part's (checked, as :class:`CsvMerger` checks it), its rows are routed."""
        records = _Records(label)
        header_seen = False
        for chunk in chunks:
            batch = records.feed(chunk)
            if not header_seen and batch:
                header_seen = True
                self._part_header(batch[0], label)
                batch = batch[1:]
            self._route(batch)
        rest = records.close()
        if rest and not header_seen:
            self._part_header(rest + self._newline, label)  # a header with no newline and no rows
        elif rest:
            self._route([rest + self._newline])

    def _part_header(self, header: bytes, label: str) -> None:
        if self._header is None:
            self._set_header(header)
            self._newline = b"\r\n" if header.endswith(b"\r\n") else b"\n"
        elif header.rstrip(b"\r\n") != self._header.rstrip(b"\r\n"):
            raise MergeError(
                f"{label} has a different header than the first part; the parts cannot make one CSV, so "
                f"nothing was written. First: {self._header[:200]!r}; this one: {header[:200]!r}"
            )

    def finish(self, documented_header: bytes | None = None) -> dict[str, Staged]:
        """Each staged file gets the header (``documented_header`` when no part had one) and its rows.
        Returns the partitions by label, in order."""
        header = self._header if self._header is not None else (documented_header or b"")
        for staged in self.staged.values():
            if staged.bytes == 0:
                staged.write(header)  # a partition without rows: header only
            staged.finish()
        return self.staged

    def close(self) -> None:
        for staged in self.staged.values():
            staged.close()

    def _route(self, records: list[bytes]) -> None:
        if not records:
            return
        # The hot loop (every row): locals and bound methods, no call on the usual row. Rows come mostly
        # in time order: the partition of the previous row, as a range of canonical times clipped to the
        # window, places the next one with two byte comparisons.
        batches: dict[str, tuple[list[bytes], list[bytes]]] = {}  # name -> its rows, their statuses
        time_index, last = self._time_index, self._last_index
        status_index = self._status_index  # the time column when there is no status (not counted)
        cut = last + 1
        exact = self._exact_keys
        low, high, current = self._current
        rows, statuses = batches.setdefault(current, ([], []))
        add_row, add_status = rows.append, statuses.append
        for record in records:
            fields = record.split(b",", cut)
            if len(fields) <= last or (
                b'"' in record
                and record.find(b'"', 0, len(record) - len(fields[cut]) if len(fields) > cut else len(record))
                != -1
            ):
                fields = self._parsed(record)  # a quoted field before the columns read
            value = fields[time_index]
            if (
                low <= value < high
                and exact
                and len(value) == 24
                and value[23] == 0x5A
                and value[19] == 0x2E
                and value[10] == 0x54
            ):
                add_row(record)  # ...Thh:mm:ss.mmmZ in the current partition: the usual row (any other
                # spelling, a space or a "t" for the "T", does not order as bytes: it is parsed)
                add_status(fields[status_index])
                continue
            name = self._place(value.rstrip(b"\r\n"), record)
            if name is None:
                self.dropped_rows += 1
                continue
            low, high, current = self._current
            rows, statuses = batches.setdefault(name, ([], []))
            add_row, add_status = rows.append, statuses.append
            add_row(record)
            add_status(fields[status_index])
        for name, (rows, statuses) in batches.items():
            if not rows:
                continue
            staged = self.staged.get(name)
            if staged is None:  # no window: partitions appear with their first row
                staged = self.staged[name] = self.stage(name)
            if staged.bytes == 0:
                staged.write(self._header or b"")
            staged.write(b"".join(rows))
            staged.rows += len(rows)
            self.rows += len(rows)
            if self.status_column:
                for raw, number in Counter(statuses).items():  # counted in C
                    staged.statuses[raw.rstrip(b"\r\n").decode("utf-8", "replace")] += number

    def _set_header(self, header: bytes) -> None:
        self._header = header
        names = [n.strip().lower() for n in next(csv.reader([header.decode("utf-8", "replace")]), [])]
        try:
            self._time_index = names.index(self.time_column.lower())
        except ValueError:
            raise MergeError(
                f"{self.label}: no {self.time_column!r} column to place rows in partitions; header: "
                f"{header[:200]!r}"
            ) from None
        wanted = (self.status_column or "").lower()
        if wanted in names:
            self._status_index = names.index(wanted)
        else:
            self.status_column = None  # a file without statuses (contacts): nothing to count
            self._status_index = self._time_index
        self._last_index = max(self._time_index, self._status_index)

    def _parsed(self, record: bytes) -> list[bytes]:
        """The fields of a record with a quoted field before the columns read (newline="" keeps quoted
        CR/LF)."""
        row = next(csv.reader(io.StringIO(record.decode("utf-8", "replace"), newline="")), [])
        if len(row) <= self._last_index:
            raise MergeError(f"{self.label}: a row has no {self.time_column!r} value: {record[:200]!r}")
        return [cell.encode() for cell in row]

    def _place(self, value: bytes, record: bytes) -> str | None:
        """The partition of a row's time (``None``: outside the window); it becomes the current one."""
        when = parse_vendor_time(value)
        if when is None:
            raise MergeError(
                f"{self.label}: a row's {self.time_column!r} value {value[:40]!r} is not a time; it cannot "
                f"be placed in a partition: {record[:200]!r}"
            )
        if not self._start <= when < self._end:
            return None
        name = self.scheme.label(when)
        bounds = self._bounds.get(name)
        if bounds is None:
            first, after = self.scheme.bounds(when)
            bounds = self._bounds[name] = (
                max(_canonical(first), self._start_key),
                min(_canonical(after), self._end_key),
            )
        self._current = (*bounds, name)
        return name


class RecordPartitioner:
    """Message records to one file per partition, each written by its own format writer.

    :param scheme: the partitioning.
    :param window: the half-open window asked; every partition it touches is written.
    :param fmt: ``"jsonl"`` or ``"csv"`` (each partition's CSV has its own header, once).
    :param known_fields: the CSV columns that come first.
    :param time_of: a record's send time (``None`` when it has no readable one: the transfer fails).
    :param status_field: the record field of the delivery status, counted per partition.
    :param stage: makes a partition's staged file.
    """

    def __init__(
        self,
        scheme: Partitioning,
        window: Window,
        fmt: str,
        known_fields: Iterable[str],
        time_of: Callable[[Mapping[str, Any]], datetime | None],
        status_field: str | None,
        stage: Stager,
    ) -> None:
        self.scheme = scheme
        self.time_of = time_of
        self.status_field = status_field
        self.staged = {name: stage(name) for name in scheme.labels(window)}
        known = tuple(known_fields)
        self.writers = {name: writer_for(fmt, s.write, known) for name, s in self.staged.items()}
        self.records = 0

    def add(self, record: Mapping[str, Any]) -> None:
        when = self.time_of(record)
        if when is None:
            raise ValueError(
                f"a message has no readable send time, so it cannot be placed in a partition: "
                f"{str(dict(record))[:200]}"
            )
        name = self.scheme.label(when)
        staged = self.staged.get(name)
        if staged is None:  # the client keeps only rows inside the window: this is a bug, never a skip
            raise ValueError(f"a message sent at {when.isoformat()} lies outside every partition written")
        self.writers[name].add(record)
        staged.rows += 1
        if self.status_field:
            staged.statuses[str(record.get(self.status_field))] += 1
        self.records += 1

    def finish(self) -> dict[str, Staged]:
        for name, writer in self.writers.items():
            writer.finish()
            self.staged[name].finish()
        return self.staged

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        for staged in self.staged.values():
            staged.close()
