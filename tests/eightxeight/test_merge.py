"""The merger on its own: records split on unquoted newlines, rows cut to [start, end) by their time column,
parts unpacked by magic bytes, hostile input refused clearly."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import datetime, timezone

import pytest

from airflow_provider_msghistory.client.windows import Window
from airflow_provider_msghistory.transfers import merge
from airflow_provider_msghistory.transfers.merge import CsvMerger, MergeError, part_streams

HEADER = b"umid,status_errormessage,createdat,body\r\n"
ROWS = [
    b'1,,2025-01-01T23:59:59.999Z,"plain"\r\n',
    b'2,"Invalid destination, ""blocked"" range",2025-01-02T00:00:00.000Z,'
    b'"Line one\r\nLine ""two"", three"\r\n',
    b'3,"x",2025-01-02T12:00:00.000+00:00,"a\nb"\r\n',
    b"4,,2025-01-02T23:59:59.999Z,\r\n",
    b'5,"y",2025-01-03T00:00:00.000Z,"late\r\n"\r\n',
]
DAY = Window(datetime(2025, 1, 2, tzinfo=timezone.utc), datetime(2025, 1, 3, tzinfo=timezone.utc))


def merged(parts: list[bytes], window: Window | None = DAY, chunk: int = 7) -> tuple[bytes, CsvMerger]:
    out = io.BytesIO()
    merger = CsvMerger(out.write, window, "CreatedAt")
    for number, data in enumerate(parts, 1):
        for label, stream in part_streams(io.BytesIO(data), f"part {number}"):
            whole = b"".join(stream)
            merger.add(
                iter([whole[i : i + chunk] for i in range(0, len(whole), chunk)]), label
            )  # tiny chunks
    merger.finish()
    return out.getvalue(), merger


def test_rows_are_cut_to_the_window_byte_for_byte_whatever_the_quoting() -> None:
    data, merger = merged([HEADER + b"".join(ROWS)])
    assert data == HEADER + ROWS[1] + ROWS[2] + ROWS[3]  # .999 of the day before and .000 after: out
    assert (merger.stats.rows, merger.stats.dropped_rows, merger.stats.unreadable_times) == (3, 2, 0)


def test_parts_gzip_multi_member_and_zip_merge_with_one_header() -> None:
    gz = gzip.compress(HEADER + ROWS[0] + ROWS[1]) + gzip.compress(ROWS[2])  # two gzip members
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("logs.csv", HEADER + ROWS[3])
    plain = HEADER + ROWS[4].rstrip(b"\r\n")  # a last record without its newline
    data, merger = merged([gz, buffer.getvalue(), plain], window=None)
    assert data == HEADER + b"".join(ROWS[:4]) + ROWS[4].rstrip(b"\r\n") + b"\r\n"
    assert merger.stats.parts == 3 and merger.stats.rows == 5


def test_a_different_header_is_refused() -> None:
    other = b"umid,status_errormessage,createdat,text\r\n"
    with pytest.raises(MergeError, match="part 2 has a different header"):
        merged([HEADER + ROWS[1], other + ROWS[2]])


def test_no_time_column_and_runaway_quotes_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MergeError, match="no 'CreatedAt' column"):
        merged([b"a,b\r\n1,2\r\n"])
    monkeypatch.setattr(merge, "MAX_RECORD", 64)
    with pytest.raises(MergeError, match="unbalanced quote"):
        merged([HEADER + b'9,"never closed,2025-01-02T00:00:00.000Z,x\r\n' + b"y\r\n" * 40])
    with pytest.raises(MergeError, match="broken gzip"):
        merged([b"\x1f\x8b" + b"not gzip at all"])
