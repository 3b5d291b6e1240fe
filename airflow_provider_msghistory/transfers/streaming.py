"""Streaming pieces of a transfer: a digest of the CSV as served, a temporary part file, a progress log.

Everything works chunk by chunk, so memory stays flat whatever the export's size.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from airflow_provider_msghistory.transfers.destination import Destination


class CsvDigest:
    """Size, SHA-256 and record count of a CSV byte stream, fed chunk by chunk.

    Records are counted like a CSV reader would: a newline inside a quoted field does not end a record
    (quote parity is carried across chunks; ``""`` escapes toggle twice, so they cancel out).

    :meth:`update` does both halves; a pipeline may instead call :meth:`hash_chunk` and :meth:`count_chunk`
    from two threads (each half keeps its own state), as long as each sees every chunk in order.
    """

    def __init__(self) -> None:
        self.size = 0
        self._sha = hashlib.sha256()
        self._records = 0
        self._in_quotes = False
        self._last_byte = b"\n"

    def update(self, chunk: bytes) -> None:
        self.hash_chunk(chunk)
        self.count_chunk(chunk)

    def hash_chunk(self, chunk: bytes) -> None:
        """The SHA-256 half (releases the GIL for large chunks)."""
        self._sha.update(chunk)

    def count_chunk(self, chunk: bytes) -> None:
        """The size and record-count half."""
        if not chunk:
            return
        self.size += len(chunk)
        self._last_byte = chunk[-1:]
        if not self._in_quotes and b'"' not in chunk:
            self._records += chunk.count(b"\n")
            return
        for i, piece in enumerate(chunk.split(b'"')):
            if i:
                self._in_quotes = not self._in_quotes
            if not self._in_quotes:
                self._records += piece.count(b"\n")

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def ends_with_newline(self) -> bool:
        """Whether the last byte counted is a newline (or nothing was counted)."""
        return self._last_byte == b"\n"

    @property
    def rows(self) -> int:
        """Data rows: records minus the header line (a last line without a newline still counts)."""
        records = self._records + (0 if self._last_byte == b"\n" else 1)
        return max(records - 1, 0)


class PartFile:
    """A hidden temporary file beside the destination, moved into place only once complete.

    On any failure :meth:`abort` discards it: a multipart upload is aborted (nothing is committed) and any
    object or file already written under the temporary name is deleted.

    :param dest: the validated destination.
    :param fs: its filesystem.
    :param compression: ``None`` or ``"gzip"`` (the stored bytes; the digest always sees the plain CSV).
    """

    def __init__(self, dest: Destination, fs: AbstractFileSystem, compression: str | None) -> None:
        self.dest = dest
        self.fs = fs
        self.compression = compression
        self.path = dest.part_path(uuid.uuid4().hex)
        self._raw: Any = None
        self._counted: _CountingWriter | None = None
        self._out: Any = None

    def open(self) -> None:
        if self.dest.is_local:
            self.fs.makedirs(self.dest.parent, exist_ok=True)
        self._raw = self.fs.open(self.path, "wb")
        self._counted = _CountingWriter(self._raw)
        # mtime=0 keeps the gzip output a pure function of the CSV (same export, same bytes).
        self._out = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._counted, compresslevel=6, mtime=0)
            if self.compression == "gzip"
            else self._counted
        )

    def write(self, chunk: bytes) -> None:
        assert self._out is not None, "PartFile.open() first"
        self._out.write(chunk)

    def restart(self) -> None:
        """Throw away what was written and start an empty part file (a download starting over)."""
        self.abort()
        self.path = self.dest.part_path(uuid.uuid4().hex)
        self.open()

    def finish(self) -> int:
        """Close (committing the upload under the temporary name); return the stored size, checked
        against the bytes written."""
        assert self._counted is not None, "PartFile.open() first"
        if self._out is not self._counted:
            self._out.close()  # writes the gzip trailer; leaves the raw file open
        raw, written = self._raw, self._counted.count
        self._raw = self._counted = self._out = None
        raw.close()
        stored = int(self.fs.size(self.path))
        if stored != written:
            raise OSError(f"{self.path} holds {stored:,} bytes after writing {written:,}")
        return stored

    def commit(self, replace: bool) -> None:
        """Move the finished part file onto the destination (a copy + delete on object stores)."""
        self.fs.invalidate_cache()  # a listing cached before the download may be stale
        if not replace and self.fs.exists(self.dest.path):
            raise FileExistsError(
                f"destination {self.dest.url!r} appeared during the download and if_exists='fail'"
            )
        # Locally a rename within one directory (atomic, replaces); on object stores a copy + delete.
        self.fs.mv(self.path, self.dest.path)

    def abort(self) -> None:
        """Discard the part file; never raises (it runs while another error propagates)."""
        raw = self._raw
        self._raw = self._counted = self._out = None
        if raw is not None:
            try:
                discard = getattr(raw, "discard", None)
                if callable(discard) and not self.dest.is_local:
                    discard()  # abort the multipart upload, so close() commits nothing
                    raw.closed = True
                else:
                    raw.close()
            except Exception:
                _log.warning("Could not discard part file %s", self.path, exc_info=True)
        try:
            if self.fs.exists(self.path):
                self.fs.rm(self.path)
        except Exception:
            _log.warning("Could not delete part file %s", self.path, exc_info=True)


class _CountingWriter:
    """Forwards writes to the store's file object and counts the bytes (after any compression)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class ProgressLog:
    """Logs bytes, percent (when the size is known) and throughput at most every ``interval`` seconds.

    :param log: where to log.
    :param label: what is being downloaded, e.g. ``"export exp_1"``.
    :param interval: seconds between lines.
    """

    def __init__(self, log: logging.Logger, label: str, interval: float = 5.0) -> None:
        self.log = log
        self.label = label
        self.interval = interval
        self.total: int | None = None
        self._start = time.monotonic()
        self._next = self._start + interval

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self.log.info("Downloading %s: %s", self.label, self.describe(done, now))

    def describe(self, done: int, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._start, 1e-6)
        rate = done / elapsed / 1e6
        if self.total:
            return f"{done:,} of {self.total:,} bytes ({100 * done / self.total:.1f}%), {rate:.1f} MB/s"
        return f"{done:,} bytes, {rate:.1f} MB/s"
