"""N downloaded parts -> one CSV: unpack by magic bytes, header once, rows cut to a half-open window.

Streams in constant memory. Records are split on newlines outside quoted fields (RFC 4180), so a quoted
``body`` with commas, quotes and newlines passes through byte for byte; only the time column of a row is
read, and only when there is a window to cut to. No Airflow here (the benchmark drives it directly).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import lzma
import operator
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from airflow_provider_msghistory.client.datetimes import MS, ceil_to, floor_to, parse_vendor_time, zulu_ms
from airflow_provider_msghistory.client.errors import MsgHistoryError
from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.transfers.bytesearch import find_all
from airflow_provider_msghistory.transfers.streaming import CsvDigest, quotes_and_newlines

CHUNK = 1 << 20
# One record (a row with its quoted newlines) read into memory at most: an unbalanced quote in a hostile
# file must fail clearly, not swallow the rest of the file.
MAX_RECORD = 16 << 20
#: Default cap of what one part (one zip member) unpacks to: far above a real log file, far below a disk.
MAX_PART_BYTES = 16 << 30
MINUTE = timedelta(minutes=1)
#: What the merger writes: slices of a chunk as memoryviews (not copied) or bytes.
Buffer = bytes | memoryview
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


class _Block:
    """Complete CSV records, ``data[start:end]``. Offsets instead of slices: a megabyte copied less per
    chunk. Its :attr:`shadow` (the same bytes with the commas and newlines inside quoted fields blanked,
    so the shadow's lines are the records and its commas the field separators) is made only when asked."""

    def __init__(self, data: bytes, start: int, end: int, count: int | None = None) -> None:
        self.data = data
        self.start = start
        self.end = end
        if count is not None:
            self.count = count

    @functools.cached_property
    def shadow(self) -> bytes:
        # Quote parity starts at ``start``: an odd number of quotes before it (the end of a record that
        # began in the previous chunk) would flip inside and outside, so one more quote evens it.
        if self.data.count(b'"', 0, self.start) & 1:
            return _shadow(b'"' + self.data)[1:]
        return _shadow(self.data)

    @functools.cached_property
    def count(self) -> int:
        return _count_records(quotes_and_newlines(self.data[self.start : self.end]))

    def view(self) -> memoryview:
        return memoryview(self.data)[self.start : self.end]

    def split_first(self) -> tuple[bytes, _Block]:
        """The first record and the block of the others (the block must hold a record)."""
        first = _record_end(self.data, self.start, self.data.find(b"\n", self.start))
        return self.data[self.start : first], _Block(self.data, first, self.end)

    def records(self) -> list[bytes]:
        lengths = map(len, _LINES.findall(self.shadow, self.start, self.end))
        ends = list(itertools.accumulate(lengths, initial=self.start))
        return list(map(self.data.__getitem__, map(slice, ends, ends[1:])))


_LINES = re.compile(rb"[^\n]*\n")
_BLANK_QUOTED = bytes.maketrans(b",\n", b"  ")


def _shadow(data: bytes) -> bytes:
    # A record ends at a newline after an even number of quotes (RFC 4180: "" escapes count twice), so
    # the pieces between quotes alternate outside / inside quoted fields: blank the inside ones, in C.
    if b'"' not in data:
        return data
    pieces = data.split(b'"')
    pieces[1::2] = b'"'.join(pieces[1::2]).translate(_BLANK_QUOTED).split(b'"')
    return b'"'.join(pieces)


def _count_records(reduced: bytes) -> int:
    """Newlines outside quoted fields, from :func:`quotes_and_newlines` of records starting outside one:
    with adjacent quote pairs dropped, the pieces between quotes alternate outside / inside, and the
    inside ones hold only quoted newlines."""
    if b'"' not in reduced:
        return len(reduced)
    reduced = reduced.replace(b'""', b"")
    return reduced.count(b"\n") - sum(map(len, reduced.split(b'"')[1::2]))


def _record_end(data: bytes, start: int, newline: int, quotes: int = 0) -> int:
    """Just past the first newline at or after ``newline`` that lies outside quoted fields, counting quotes
    from ``start`` (a record's start, after ``quotes`` more); 0 when there is none."""
    quotes += data.count(b'"', start, newline) if newline >= 0 else 0
    while newline >= 0:
        if not quotes & 1:
            return newline + 1
        after = data.find(b"\n", newline + 1)
        quotes += data.count(b'"', newline, after) if after >= 0 else 0
        newline = after
    return 0


def _last_record_end(data: bytes, start: int, end: int, quotes: int | None = None) -> int:
    """Just past the last newline of ``data[start:end]`` outside quoted fields (``start`` is a record's
    start; ``quotes``: how many it holds, if known); ``start`` if none. Quote parity from the end: a few
    short counts, no pass of Python per line."""
    if quotes is None:
        quotes = data.count(b'"', start, end)
    newline, after = data.rfind(b"\n", start, end), end
    while newline >= 0:
        quotes -= data.count(b'"', newline, after)
        if not quotes & 1:
            return newline + 1
        newline, after = data.rfind(b"\n", start, newline), newline
    return start


class _Records:
    """Splits a byte stream into CSV records (each ending with its newline), honouring quotes.

    :meth:`block` works a chunk at a time with whole-chunk byte operations (no Python step per line),
    :meth:`feed` line by line; either way what follows the last complete record waits for the next chunk.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._rest = b""  # the start of the record the next chunk completes

    def blocks(self, chunk: bytes) -> list[_Block]:
        """The records ``chunk`` completes: the one the previous chunk left open (joined alone, so the
        chunk itself is never copied), then the chunk's own."""
        rest = self._rest
        if not rest:
            return [self._own(chunk, 0)]
        joined = _record_end(chunk, 0, chunk.find(b"\n"), rest.count(b'"'))
        if not joined:  # the open record goes on past this chunk
            data = rest + chunk
            if len(data) > MAX_RECORD:  # a record this long may be runaway: split line by line, with limits
                done = b"".join(self._by_lines(data))
                return [_Block(done, 0, len(done))]
            return [self._own(data, 0)]
        first = rest + chunk[:joined]
        return [_Block(first, 0, len(first)), self._own(chunk, joined)]

    def _own(self, data: bytes, start: int) -> _Block:
        # One pass keeps the quotes and newlines of the whole chunk: the quote count finds the last
        # record's end, and the part before it counts the records.
        reduced = quotes_and_newlines(data)
        skip = len(quotes_and_newlines(data[:start])) if start else 0
        end = _last_record_end(data, start, len(data), reduced.count(b'"', skip))
        self._rest = data[end:]
        tail = len(quotes_and_newlines(self._rest)) if self._rest else 0
        return _Block(data, start, end, _count_records(reduced[skip : len(reduced) - tail]))

    def feed(self, chunk: bytes) -> list[bytes]:
        """The records ``chunk`` completes, one by one (split line by line: when every record is wanted
        on its own, cheaper than a block)."""
        return self._by_lines(self._rest + chunk if self._rest else chunk)

    def _by_lines(self, data: bytes) -> list[bytes]:
        lines = data.split(b"\n")
        tail = lines.pop()
        if len(tail) > MAX_RECORD:
            raise MergeError(f"{self.label}: a line longer than {MAX_RECORD:,} bytes")
        records: list[bytes] = []
        open_lines: list[bytes] = []
        open_size = 0
        in_quotes = False
        for line in lines:
            odd = line.count(b'"') & 1
            if not (in_quotes or odd):
                records.append(line + b"\n")
                continue
            open_lines.append(line)
            open_size += len(line) + 1
            if odd:
                in_quotes = not in_quotes
            if not in_quotes:
                records.append(b"\n".join(open_lines) + b"\n")
                open_lines, open_size = [], 0
            elif open_size > MAX_RECORD:
                raise MergeError(
                    f"{self.label}: a quoted field runs over {MAX_RECORD:,} bytes (an unbalanced quote?)"
                )
        self._rest = b"\n".join([*open_lines, tail])
        return records

    def close(self) -> bytes:
        """What is left: a last record without a newline (or an unterminated quoted one)."""
        rest, self._rest = self._rest, b""
        return rest


class _RowWindow:
    """Whether a row's time column lies in ``[start, end)``; counts rows it could not read.

    :meth:`cut` decides a block of records at once: one regular expression over the block's shadow reads
    the time column of every record where it is written canonically, and only the records it cannot vouch
    for (a time outside the window, an irregular quoted field before the time) are decided one by one by
    :meth:`keep`; a block with any record the expression does not read is decided record by record.

    :meth:`cut_edges` is the cheaper path once a part has shown its shape (see :class:`CsvMerger`): the
    vendor was asked for ``asked``, a covering window, so a row outside ``[start, end)`` lies in the
    slack between the two, a few minutes at most; only records holding such a minute anywhere (see
    :class:`_Edges`) are found (byte searches in C) and decided by :meth:`keep`, and the rest pass
    untouched.
    """

    def __init__(self, window: Window, column: int, asked: Window | None = None) -> None:
        utc = window.utc()
        self.start, self.end = utc.start, utc.end
        self.column = column
        # Times written as 2025-01-02T00:00:00.000Z compare as bytes (ms precision: round bounds up).
        self._start_key = _canonical(ceil_to(utc.start, MS))
        self._end_key = _canonical(ceil_to(utc.end, MS))
        self.unreadable = 0
        # Per line of the shadow: its fields up to the time column, the time canonical and filling its
        # field. Each match starts a line and ends one, so as many matches as lines means one per line.
        self._lines = re.compile(
            rb"^(" + rb"[^,]*," * column + _CANONICAL_TIME + rb")(?=,|\r?\n)[^\n]*\n", re.M
        )
        # Heads whose fields before the time CSV reads as the shadow's commas split them: each unquoted
        # without a quote or CR, or quoted whole (with "" escapes); one per line.
        field = rb'(?:(?:"[^"]*")+|[^",\r\n]*),'
        self._regular_heads = re.compile(rb"(?:" + field * column + rb".{24}\n)*")
        self.edges = _edges(utc, asked)
        self._asked_keys = (
            (_canonical(ceil_to(asked.utc().start, MS)), _canonical(ceil_to(asked.utc().end, MS)))
            if self.edges is not None and asked is not None
            else None
        )

    def cut(self, block: _Block) -> tuple[list[Buffer], int, bool]:
        """The records of ``block`` to keep (as pieces of its bytes, in order), how many there are, and
        whether every record's time was read canonically and lies inside the asked window (the shape
        :meth:`cut_edges` needs)."""
        if not block.count:
            return [], 0, True
        heads = self._lines.findall(block.shadow, block.start, block.end)
        if len(heads) != block.count:  # a record the expression does not read: each is decided alone
            kept = [record for record in block.records() if self.keep(record)]
            return list(kept), len(kept), False
        times = list(map(_TIME, heads))
        start, end = self._start_key, self._end_key
        doubtful: set[int] = set()
        quoted = [head for head in heads if b'"' in head]
        # Quoted fields before the time: if all are regular, CSV reads the time the expression read.
        if quoted and not self._regular_heads.fullmatch(b"\n".join(quoted) + b"\n"):
            doubtful.update(index for index, head in enumerate(heads) if b'"' in head)
        first_time, last_time = min(times), max(times)
        asked = self._asked_keys
        vouched = not doubtful and asked is not None and asked[0] <= first_time and last_time < asked[1]
        if not doubtful and start <= first_time and last_time < end:
            return [block.view()], block.count, vouched
        doubtful.update(itertools.compress(itertools.count(), map(end.__le__, times)))
        doubtful.update(itertools.compress(itertools.count(), map(start.__gt__, times)))
        # A doubtful record's line is the first after the previous one's that starts with its fields up to
        # the time: a line that does has the same head and time, so it is doubtful too.
        data, shadow = memoryview(block.data), block.shadow
        pieces: list[Buffer] = []
        done, kept, first = block.start, block.count, block.start
        for index in sorted(doubtful):
            if index:
                first = shadow.find(b"\n" + heads[index], first, block.end) + 1
            after = shadow.find(b"\n", first) + 1
            if not self.keep(bytes(data[first:after])):
                pieces.append(data[done:first])
                done = after
                kept -= 1
        pieces.append(data[done : block.end])
        return pieces, kept, vouched

    def cut_edges(self, block: _Block) -> tuple[list[Buffer], int]:
        """Like :meth:`cut`, for a part whose rows are known to be canonical and inside the asked window:
        only the records holding a slack minute are decided (by :meth:`keep`)."""
        data, end = block.data, block.end
        hits = self.edges.hits(data, block.start, end) if self.edges is not None else []
        if not hits:
            return [block.view()], block.count
        view = memoryview(data)
        pieces: list[Buffer] = []
        done, dropped, record = block.start, 0, block.start
        for at in sorted(hits):
            if at < record:  # inside the record just decided
                continue
            # Whole records hold an even number of quotes, so the quotes from the hit to the block's end
            # tell the parity as well as those since the last record start: count the shorter side.
            quotes = data.count(b'"', at, end) if end - at < at - record else None
            first = _last_record_end(data, record, at, quotes)
            record = _record_end(data, first, data.find(b"\n", at))
            if not self.keep(data[first:record]):
                pieces.append(view[done:first])
                done = record
                dropped += 1
        pieces.append(view[done:end])
        return pieces, block.count - dropped

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


#: Records of a part read one by one, all canonical and inside the asked window, before the edge search.
VOUCH_RECORDS = 4096
#: Edge search only for windows this long at least (shorter ones: most rows would be near an edge).
EDGE_MIN_WINDOW = timedelta(hours=1)
#: At most this many slack minutes are searched for; a wider covering window is cut row by row.
MAX_EDGE_MINUTES = 8


@dataclass(frozen=True)
class _Edges:
    """What the edge search looks for: the ``HH:MM:`` of each slack minute, or, when no slack minute lies on
    a date the window covers (a window from midnight to midnight UTC), the slack minutes' ``YYYY-MM-DD``
    dates, a hit counting only where one of the ``minutes`` follows the date and one separator: a longer
    needle, searched faster, that rows of the window's own dates never hold in their time."""

    needles: tuple[bytes, ...]
    minutes: frozenset[bytes] | None = None

    def hits(self, data: bytes, start: int, end: int) -> list[int]:
        """Where in ``data[start:end]`` a time in the slack may be written."""
        hits = []
        for needle in self.needles:
            found = find_all(data, needle, start, end)
            if self.minutes is not None:
                minutes = self.minutes
                found = [at for at in found if data[at + 11 : at + 17] in minutes]
            hits += found
        return hits


def _edges(window: Window, asked: Window | None) -> _Edges | None:
    """The slack minutes between ``window`` and the covering ``asked`` one (UTC), or ``None`` when the edge
    search does not apply. Whatever separates date and time, whatever the fraction, a UTC time in the
    slack holds one of them."""
    if asked is None or window.end - window.start < EDGE_MIN_WINDOW:
        return None
    outer = asked.utc()
    if outer.start > window.start or outer.end < window.end:
        return None  # not a covering window
    if (outer.start, outer.end) == (window.start, window.end):
        return None  # exact bounds: no row is expected outside, so each is checked (a safety net)
    slack: set[datetime] = set()
    for low, high in ((outer.start, window.start), (window.end, outer.end)):
        minute = floor_to(low, MINUTE)
        while minute < high:
            slack.add(minute)
            minute += MINUTE
            if len(slack) > MAX_EDGE_MINUTES:
                return None
    minutes = tuple(sorted({minute.strftime("%H:%M:").encode() for minute in slack}))
    first_day, last_day = window.start.date(), (window.end - timedelta.resolution).date()
    if any(first_day <= minute.date() <= last_day for minute in slack):
        return _Edges(minutes)
    dates = tuple(sorted({minute.strftime("%Y-%m-%d").encode() for minute in slack}))
    return _Edges(dates, frozenset(minutes))


# The one shape whose byte order is time order; any other spelling (a space or a "t" for the "T", another
# fraction length, an offset) is parsed.
_CANONICAL_TIME = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
_CANONICAL = re.compile(_CANONICAL_TIME).fullmatch
_TIME = operator.itemgetter(slice(-24, None))  # a canonical time's 24 bytes, at the end of a head


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

    Each part's rows are first read record by record (every time column located and compared). Once
    :data:`VOUCH_RECORDS` of them in a row have shown canonical UTC times inside ``asked``, the window the
    vendor was asked for, the rest of the part is searched only for the slack minutes between ``asked``
    and ``window`` (:meth:`_RowWindow.cut_edges`): the vendor's own bound keeps every other row inside
    the window, and that is what makes the cut about as cheap as a bare record count. A part that shows
    anything else (another time shape, a row outside ``asked``) is read record by record to its end.

    :param write: where the merged bytes go.
    :param window: the half-open window to keep rows of, or ``None`` (every row).
    :param time_column: the header name of the rows' time (case-insensitive), needed with a window.
    :param asked: the covering window the vendor was asked for (``None``: rows are always read one by one).
    """

    def __init__(
        self,
        write: Callable[[bytes], None],
        window: Window | None,
        time_column: str | None,
        asked: Window | None = None,
    ) -> None:
        self._write = write
        self.window = window
        self.time_column = time_column
        self.asked = asked
        self._vouched: int | None = 0  # this part's records shown canonical and asked-for (None: not so)
        self.header: bytes | None = None
        self._newline = b"\n"
        self._filter: _RowWindow | None = None
        self._sha = hashlib.sha256()
        self.stats = MergeStats()

    def _out(self, data: Buffer) -> None:
        if size := len(data):  # pieces are bytes or memoryviews of bytes: len() counts bytes
            self._write(data)  # type: ignore[arg-type]  # every sink takes a buffer
            self._sha.update(data)
            self.stats.bytes += size

    def add(self, chunks: Iterator[bytes], label: str) -> None:
        """Append one part's CSV stream."""
        feed = self.feed(label)
        for chunk in chunks:
            feed.write(chunk)
        feed.close()

    def feed(self, label: str) -> PartFeed:
        """Append one part's CSV stream chunk by chunk, as it arrives (:meth:`PartFeed.write`, then
        :meth:`PartFeed.close`); parts are fed one after the other."""
        self._vouched = 0
        return PartFeed(self, label)

    def _header(self, header: bytes, label: str) -> None:
        self.stats.parts += 1
        if self.header is None:
            self.header = header
            self._newline = b"\r\n" if header.endswith(b"\r\n") else b"\n"
            self._out(header)
            if self.window is not None:
                self._filter = _RowWindow(self.window, self._time_index(header, label), self.asked)
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

    def _block(self, block: _Block) -> None:
        if not block.count:
            return
        row_window = self._filter
        if row_window is None:
            pieces, kept = [block.view()], block.count
        elif self._vouched is not None and self._vouched >= VOUCH_RECORDS:
            pieces, kept = row_window.cut_edges(block)
        else:
            pieces, kept, vouched = row_window.cut(block)
            if self._vouched is not None and row_window.edges is not None:
                self._vouched = self._vouched + block.count if vouched else None
        if row_window is not None:
            self.stats.dropped_rows += block.count - kept
        self.stats.rows += kept
        for piece in pieces:
            self._out(piece)

    def _rows(self, batch: list[bytes]) -> None:
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


class PartFeed:
    """One part's bytes on their way into a :class:`CsvMerger` (from :meth:`CsvMerger.feed`)."""

    def __init__(self, merger: CsvMerger, label: str) -> None:
        self._merger = merger
        self.label = label
        self._records = _Records(label)
        self._header: bytes | None = None
        # Without a window, the bytes after the header pass through untouched, only counted.
        self._raw: CsvDigest | None = None

    def write(self, chunk: bytes) -> None:
        merger = self._merger
        if self._raw is not None:
            merger._out(chunk)
            self._raw.count_chunk(chunk)
            return
        for block in self._records.blocks(chunk):
            if self._header is None and block.count:
                self._header, block = block.split_first()
                merger._header(self._header, self.label)
            merger._block(block)
        if self._header is not None and merger.window is None:
            # The splitter may hold the start of a record: hand it on first. Records are counted from
            # this record boundary on, quotes included.
            self._raw = CsvDigest()
            self.write(self._records.close())

    def close(self) -> None:
        """The part's last bytes are in."""
        merger, last = self._merger, self._records.close()
        if self._raw is not None:
            if self._raw.size:
                merger.stats.rows += self._raw.rows + 1  # CsvDigest.rows leaves out a header: none here
                if not self._raw.ends_with_newline:
                    merger._out(merger._newline)
        elif self._header is None:
            if last:
                merger._header(last + merger._newline, self.label)  # a header with no newline, no rows
        elif last:
            merger._rows([last + merger._newline])


def _shown(header: bytes) -> str:
    text = header.rstrip(b"\r\n").decode("utf-8", "replace")
    return repr(text if len(text) <= 200 else text[:200] + "...")
