"""Streaming pieces of a transfer: a digest of the CSV as served, a temporary part file, a progress log.

Everything works chunk by chunk, so memory stays flat whatever the export's size.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

_log = logging.getLogger(__name__)

_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


def quotes_and_newlines(data: bytes) -> bytes:
    """Only the quotes and newlines of ``data``, in order (one C pass): all that record bounds depend on."""
    return data.translate(None, _NOT_QUOTE_OR_NEWLINE)
#: A part file not written for this long is left by a dead writer, whichever host wrote it.
STALE_PART_AGE = 24 * 3600.0

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
        if not self._in_quotes and chunk.find(b'"') < 0:  # the common case: no quoted field here
            self._records += chunk.count(b"\n")
            return
        # Only quotes and newlines matter: keep those (one C pass), drop adjacent quote pairs (they change
        # no newline's side), then the pieces between quotes alternate outside / inside a quoted field,
        # and the inside ones hold nothing but the newlines of quoted fields. C-level passes throughout:
        # no Python work per row.
        reduced = quotes_and_newlines(chunk).replace(b'""', b"")
        if self._in_quotes:
            reduced = b'"' + reduced  # the field open at the end of the previous chunk
        pieces = reduced.split(b'"')
        self._records += reduced.count(b"\n") - sum(map(len, pieces[1::2]))
        self._in_quotes = len(pieces) % 2 == 0

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
        self.path = dest.part_path(_part_token())
        self._raw: Any = None
        self._counted: _CountingWriter | None = None
        self._out: Any = None

    def open(self) -> None:
        if self.dest.is_local:
            self.fs.makedirs(self.dest.parent, exist_ok=True)
        remove_stale_parts(self.dest, self.fs)
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
        self.path = self.dest.part_path(_part_token())
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
        """Move the finished part file onto the destination (a copy + delete on object stores).

        Without ``replace``, locally the check and the move are one step (a hard link fails when the
        destination exists, so of two concurrent transfers exactly one wins); an object store is checked
        just before its copy, so a writer landing in between can still be replaced.
        """
        self.fs.invalidate_cache()  # a listing cached before the download may be stale
        if self.dest.is_local:
            if replace:
                os.replace(self.path, self.dest.path)  # atomic within one directory
                return
            try:
                os.link(self.path, self.dest.path)
            except FileExistsError:
                raise self._appeared() from None
            os.unlink(self.path)
            return
        if not replace and self.fs.exists(self.dest.path):
            raise self._appeared()
        self.fs.mv(self.path, self.dest.path)

    def _appeared(self) -> FileExistsError:
        return FileExistsError(
            f"destination {self.dest.url!r} appeared during the download and if_exists='fail'"
        )

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


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", socket.gethostname()) or "host"


def _part_token() -> str:
    """``<host>-p<pid>-<random>``: tells the next attempt whether the writer of a part file is gone."""
    return f"{_host()}-p{os.getpid()}-{uuid.uuid4().hex[:16]}"


_TOKEN = re.compile(r"(?P<host>[A-Za-z0-9_]+)-p(?P<pid>\d+)-[0-9a-f]+")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_parts(dest: Destination, fs: AbstractFileSystem) -> list[str]:
    """Delete part files of ``dest`` left by dead writers (a SIGKILLed attempt leaves one); their paths.

    Dead means: written by a process of this host that no longer runs, or not modified for
    :data:`STALE_PART_AGE` (a writer elsewhere). A live writer's part file is never touched.
    """
    prefix = dest.part_prefix.rsplit("/", 1)[-1]
    try:
        fs.invalidate_cache()
        entries = fs.ls(dest.parent, detail=True)
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        path = str(entry["name"])
        name = path.rsplit("/", 1)[-1]
        if not name.startswith(prefix) or not _is_stale(name[len(prefix) :], entry):
            continue
        try:
            fs.rm(path)
        except FileNotFoundError:
            continue  # another attempt cleaned it first
        _log.warning("Removed %s, the part file of an attempt that did not finish", path)
        removed.append(path)
    return removed


def _is_stale(token: str, entry: dict[str, Any]) -> bool:
    match = _TOKEN.fullmatch(token)
    if match and match["host"] == _host():
        pid = int(match["pid"])
        return pid != os.getpid() and not _pid_alive(pid)
    modified = entry.get("mtime") or entry.get("LastModified") or entry.get("last_modified")
    if modified is None:
        return False
    seconds = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
    return time.time() - seconds > STALE_PART_AGE


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
