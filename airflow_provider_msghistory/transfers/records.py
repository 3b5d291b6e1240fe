"""Message records to file bytes, streaming: JSON Lines, or CSV with columns that stay stable.

Both writers hash and count what they write (the file before any compression) and hand it to a sink in
chunks, so memory stays flat however many records pass. CSV needs its header before the first row but the
full set of fields only after the last record: records are spooled to a local temporary JSON Lines file
while the columns are gathered, then rewritten as CSV in one streaming pass.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

FORMATS = ("jsonl", "csv")
#: distinct fields a CSV may gather before the records are deemed hostile
MAX_COLUMNS = 1000
_CHUNK = 1 << 20


class RecordWriter:
    """Bytes of one output format from records, counted and hashed (the base writes JSON Lines).

    :param sink: receives the bytes in chunks (e.g. :meth:`PartFile.write`).
    """

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._sha = hashlib.sha256()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self.records = 0
        self.bytes = 0

    def add(self, record: Mapping[str, Any]) -> None:
        """One record."""
        self.records += 1
        self._emit(_json_line(record))

    def finish(self) -> None:
        """Write what is buffered; the counts and :attr:`sha256` are final afterwards."""
        self._flush()

    def close(self) -> None:
        """Release temporary resources (safe to call more than once, also after a failure)."""

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def _emit(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        self._sha.update(chunk)
        self.bytes += len(chunk)
        self._sink(chunk)


class CsvRecordWriter(RecordWriter):
    """CSV with the known fields first (always, in their order), then others in first-seen order.

    Nested values are written as compact JSON, ``None`` as an empty cell, booleans as ``true``/``false``.

    :param sink: receives the CSV bytes in chunks.
    :param known_fields: the columns that come first.
    """

    def __init__(self, sink: Callable[[bytes], None], known_fields: Iterable[str]) -> None:
        super().__init__(sink)
        self.columns: dict[str, None] = dict.fromkeys(known_fields)
        # Closed by finish() or close() (the operator calls close() on failure).
        self._spool: IO[bytes] | None = tempfile.TemporaryFile(prefix="msghistory-spool-")  # noqa: SIM115

    def add(self, record: Mapping[str, Any]) -> None:
        assert self._spool is not None, "add() after finish()"
        for key in record:
            if key not in self.columns:
                if len(self.columns) >= MAX_COLUMNS:
                    raise ValueError(
                        f"the records carry more than {MAX_COLUMNS} distinct fields; "
                        "write format='jsonl' instead"
                    )
                self.columns[str(key)] = None
        self._spool.write(_json_line(record))
        self.records += 1

    def finish(self) -> None:
        assert self._spool is not None, "finish() twice"
        spool, columns = self._spool, list(self.columns)
        spool.seek(0)
        text = io.StringIO()
        rows = csv.writer(text, lineterminator="\n")
        rows.writerow(columns)
        for line in spool:
            record = json.loads(line)
            rows.writerow([_cell(record.get(column)) for column in columns])
            if text.tell() >= _CHUNK:
                self._emit(_utf8(text.getvalue()))
                text.seek(0)
                text.truncate()
        self._emit(_utf8(text.getvalue()))
        self._flush()
        self.close()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


def writer_for(fmt: str, sink: Callable[[bytes], None], known_fields: Iterable[str]) -> RecordWriter:
    """The writer of ``fmt`` (``"jsonl"`` or ``"csv"``)."""
    if fmt == "csv":
        return CsvRecordWriter(sink, known_fields)
    return RecordWriter(sink)


def _json_line(record: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or Infinity (JSON has no such tokens): written as the strings
        record = _finite(record)
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        return (text + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate (valid JSON, not UTF-8): written \u-escaped
        return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _utf8(text: str) -> bytes:
    # A lone surrogate in a field cannot be UTF-8: written as its escape (\udc80), never failing the load.
    return text.encode("utf-8", "backslashreplace")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
