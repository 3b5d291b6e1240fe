"""N downloaded parts -> one CSV: unpack by magic bytes, header once, rows cut to a half-open window.

Streams in constant memory. Records are split on newlines outside quoted fields (RFC 4180), so a quoted
``body`` with commas, quotes and newlines passes through byte for byte; only the time column of a row is
read, and only when there is a window to cut to. No Airflow here (the benchmark drives it directly).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from airflow_provider_msghistory.client.datetimes import MS, ceil_to, parse_vendor_time, zulu_ms
from airflow_provider_msghistory.client.errors import MsgHistoryError
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.transfers.streaming import CsvDigest

CHUNK = 1 << 20
# One record (a row with its quoted newlines) read into memory at most: an unbalanced quote in a hostile
# file must fail clearly, not swallow the rest of the file.
MAX_RECORD = 16 << 20
#: Default cap of what one part (one zip member) unpacks to: far above a real log file, far below a disk.
MAX_PART_BYTES = 16 << 30
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


class MergeError(MsgHistoryError):
    """The parts cannot make one CSV (different headers, an unreadable archive, a runaway record)."""


# What unreadable archive content raises from zipfile and the codecs beneath it.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError,
    LookupError, lzma.LZMAError, RecursionError,
)  # fmt: skip


def part_streams(
    file: IO[bytes], label: str, max_bytes: int = MAX_PART_BYTES
) -> Iterator[tuple[str, Iterator[bytes]]]:
    """The CSV byte streams a downloaded part holds, by its magic bytes: gzip (any number of members),
    zip (one stream per file member, in archive order) or plain, whatever the Content-Type said.

    Unpacking is bounded: at most :data:`CHUNK` bytes come out per step, and a part (each zip member) that
    unpacks to more than ``max_bytes`` fails, so a bomb fills neither memory nor disk. A gzip member must
    end with its trailer (CRC and size checked) and a zip member's CRC must match: a cut part fails. Any
    unreadable content raises :class:`MergeError` naming the part.
    """
    file.seek(0)
    head = file.read(4)
    file.seek(0)
    if head.startswith(ZIP_MAGIC):
        yield from _unzip(file, label, max_bytes)
    elif head.startswith(GZIP_MAGIC):
        yield label, _capped(_gunzip(file, label), label, max_bytes)
    else:
        yield label, iter(lambda: file.read(CHUNK), b"")


def _unzip(file: IO[bytes], label: str, max_bytes: int) -> Iterator[tuple[str, Iterator[bytes]]]:
    try:
        archive = zipfile.ZipFile(file)
        members = [info for info in archive.infolist() if not info.is_dir()]
    except _ARCHIVE_ERRORS as error:
        raise MergeError(f"{label}: not a readable zip archive ({_why(error)})") from None
    with archive:
        for info in members:
            member_label = f"{label} ({info.filename[:200]})"
            yield member_label, _capped(_member(archive, info, member_label), member_label, max_bytes)


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Iterator[bytes]:
    # zipfile checks the member's CRC when its last byte is read; a cut or altered member raises there.
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK):
                yield chunk
    except _ARCHIVE_ERRORS as error:
        raise MergeError(f"{label}: unreadable zip member ({_why(error)})") from None


def _gunzip(file: IO[bytes], label: str) -> Iterator[bytes]:
    decoder = zlib.decompressobj(wbits=31)
    fed = False  # the current member has had input (so it must reach its trailer)
    while data := file.read(CHUNK):
        pending = True
        while pending:
            fed = True
            try:
                out = decoder.decompress(data, CHUNK)  # bounded output per step, whatever the ratio
            except zlib.error as error:
                raise MergeError(f"{label}: broken gzip data ({error})") from None
            if out:
                yield out
            if decoder.eof:  # a member ended, its CRC and size checked: the next one starts on the rest
                data, decoder = decoder.unused_data, zlib.decompressobj(wbits=31)
                fed = pending = bool(data)
            else:  # a full step may leave output pending even when all input was taken
                data = decoder.unconsumed_tail
                pending = bool(data) or len(out) == CHUNK
    if fed:
        raise MergeError(
            f"{label}: the gzip data ends before its trailer (CRC and size): the part is cut short"
        )


def _capped(chunks: Iterator[bytes], label: str, max_bytes: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise MergeError(
                f"{label}: unpacks to more than {max_bytes:,} bytes (max_part_bytes); a compression bomb, "
                "or raise max_part_bytes"
            )
        yield chunk


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


class _Records:
    """Splits a byte stream into CSV records (each ending with its newline), honouring quotes."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._tail = b""
        self._open: list[bytes] = []
        self._open_size = 0
        self._in_quotes = False

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._tail + chunk if self._tail else chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_RECORD:
            raise MergeError(f"{self.label}: a line longer than {MAX_RECORD:,} bytes")
        records = []
        for line in lines:
            odd = line.count(b'"') & 1
            if not (self._in_quotes or odd):
                records.append(line + b"\n")
                continue
            self._open.append(line)
            self._open_size += len(line) + 1
            if odd:
                self._in_quotes = not self._in_quotes
            if not self._in_quotes:
                records.append(b"\n".join(self._open) + b"\n")
                self._open, self._open_size = [], 0
            elif self._open_size > MAX_RECORD:
                raise MergeError(
                    f"{self.label}: a quoted field runs over {MAX_RECORD:,} bytes (an unbalanced quote?)"
                )
        return records

    def close(self) -> bytes:
        """What is left: a last record without a newline (or an unterminated quoted one)."""
        rest = b"\n".join([*self._open, self._tail]) if self._open else self._tail
        self._tail, self._open = b"", []
        return rest


class _RowWindow:
    """Whether a row's time column lies in ``[start, end)``; counts rows it could not read."""

    def __init__(self, window: Window, column: int) -> None:
        utc = window.utc()
        self.start, self.end = utc.start, utc.end
        self.column = column
        # Times written as 2025-01-02T00:00:00.000Z compare as bytes (ms precision: round bounds up).
        self._start_key = _canonical(ceil_to(utc.start, MS))
        self._end_key = _canonical(ceil_to(utc.end, MS))
        self.unreadable = 0

    def keep(self, record: bytes) -> bool:
        value = self._value(record)
        if _CANONICAL(value):  # "YYYY-MM-DDTHH:MM:SS.mmmZ" exactly: ordered as bytes
            return self._start_key <= value < self._end_key
        when = parse_vendor_time(value)
        if when is None:
            self.unreadable += 1
            return True  # never lose a row over its timestamp: keep it and say so
        return self.start <= when < self.end

    def _value(self, record: bytes) -> bytes:
        index = self.column
        fields = record.split(b",", index + 1)
        if len(fields) > index:
            rest = len(record) - len(fields[index + 1]) if len(fields) > index + 1 else len(record)
            if record.find(b'"', 0, rest) == -1:  # the usual row: nothing quoted up to the time column
                return fields[index].rstrip(b"\r\n")
        # A quoted field before the time column: read the record as CSV (newline="" keeps quoted CR/LF).
        row = next(csv.reader(io.StringIO(record.decode("utf-8", "replace"), newline="")), [])
        return row[index].encode() if len(row) > index else b""


# The one shape whose byte order is time order; any other spelling (a space or a "t" for the "T", another
# fraction length, an offset) is parsed.
_CANONICAL = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z").fullmatch


def _canonical(value: datetime) -> bytes:
    return zulu_ms(value).encode()


@dataclass
class MergeStats:
    """What the merged CSV holds.

    :param parts: CSV streams merged (a zip part may hold several).
    :param rows: data rows written (header excluded).
    :param dropped_rows: rows outside the window, left out.
    :param unreadable_times: rows kept although their time could not be read.
    :param bytes: size of the merged CSV.
    :param sha256: its SHA-256.
    """

    parts: int = 0
    rows: int = 0
    dropped_rows: int = 0
    unreadable_times: int = 0
    bytes: int = 0
    sha256: str = ""


class CsvMerger:
    """Writes one CSV from part streams: the first header once, every later header checked against it,
    rows cut to ``window`` by ``time_column`` (when a window is given).

    :param write: where the merged bytes go.
    :param window: the half-open window to keep rows of, or ``None`` (every row).
    :param time_column: the header name of the rows' time (case-insensitive), needed with a window.
    """

    def __init__(
        self, write: Callable[[bytes], None], window: Window | None, time_column: str | None
    ) -> None:
        self._write = write
        self.window = window
        self.time_column = time_column
        self.header: bytes | None = None
        self._newline = b"\n"
        self._filter: _RowWindow | None = None
        self._sha = hashlib.sha256()
        self.stats = MergeStats()

    def _out(self, data: bytes) -> None:
        if data:
            self._write(data)
            self._sha.update(data)
            self.stats.bytes += len(data)

    def add(self, chunks: Iterator[bytes], label: str) -> None:
        """Append one part's CSV stream."""
        records = _Records(label)
        header: bytes | None = None
        for chunk in chunks:
            batch = records.feed(chunk)
            if header is None and batch:
                header, batch = batch[0], batch[1:]
                self._header(header, label)
            self._rows(batch)
            if header is not None and self.window is None:
                # No window: after the header the bytes pass through untouched (no record split).
                self._passthrough(records, chunks)
                return
        last = records.close()
        if header is None:
            if last:
                self._header(last + self._newline, label)  # a header with no newline and no rows
            return
        if last:
            self._rows([last + self._newline])

    def _passthrough(self, records: _Records, chunks: Iterator[bytes]) -> None:
        # The splitter may hold the start of a record: hand it on first, then the raw chunks. Records are
        # counted from this record boundary on, quotes included.
        counter = CsvDigest()
        for chunk in itertools.chain((records.close(),), chunks):
            self._out(chunk)
            counter.count_chunk(chunk)
        if counter.size:
            self.stats.rows += counter.rows + 1  # CsvDigest.rows leaves out a header: here there is none
            if not counter.ends_with_newline:
                self._out(self._newline)

    def _header(self, header: bytes, label: str) -> None:
        self.stats.parts += 1
        if self.header is None:
            self.header = header
            self._newline = b"\r\n" if header.endswith(b"\r\n") else b"\n"
            self._out(header)
            if self.window is not None:
                self._filter = _RowWindow(self.window, self._time_index(header, label))
            return
        if header.rstrip(b"\r\n") != self.header.rstrip(b"\r\n"):
            raise MergeError(
                f"{label} has a different header than the first part; the parts cannot make one CSV, so "
                f"nothing was written. First: {_shown(self.header)}; this one: {_shown(header)}"
            )

    def _time_index(self, header: bytes, label: str) -> int:
        names = next(csv.reader([header.decode("utf-8", "replace")]), [])
        wanted = (self.time_column or "").lower()
        for index, name in enumerate(names):
            if name.strip().lower() == wanted:
                return index
        raise MergeError(
            f"{label}: no {self.time_column!r} column to cut the rows to the export's window; header: "
            f"{_shown(header)}"
        )

    def _rows(self, batch: list[bytes]) -> None:
        if not batch:
            return
        if self._filter is not None:
            keep = self._filter.keep
            kept = [record for record in batch if keep(record)]
            self.stats.dropped_rows += len(batch) - len(kept)
            batch = kept
        self.stats.rows += len(batch)
        self._out(b"".join(batch))

    def finish(self) -> MergeStats:
        """The totals (call once every part was added)."""
        self.stats.sha256 = self._sha.hexdigest()
        if self._filter is not None:
            self.stats.unreadable_times = self._filter.unreadable
        return self.stats


def _shown(header: bytes) -> str:
    text = header.rstrip(b"\r\n").decode("utf-8", "replace")
    return repr(text if len(text) <= 200 else text[:200] + "...")
