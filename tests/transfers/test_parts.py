"""A part's first bytes decide whether it is merged as it arrives (plain CSV) or spooled to local disk
first (gzip, zip), however the network splits them."""

from __future__ import annotations

import gzip
import io
import tempfile
import zipfile

import pytest

from airflow_provider_msghistory.transfers.merge import MAX_PART_BYTES, CsvMerger
from airflow_provider_msghistory.transfers.parts import MergeStartOver, _PartSink

CSV = b'id,body\n1,"a\nb"\n2,c\n'


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("part.csv", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "packed"),
    [(CSV, False), (b"id", False), (gzip.compress(CSV), True), (zipped(CSV), True)],
    ids=["plain", "shorter-than-magic", "gzip", "zip"],
)
@pytest.mark.parametrize("step", [1, 3, 1 << 20])
def test_the_first_bytes_decide_however_they_are_split(data: bytes, packed: bool, step: int) -> None:
    out = io.BytesIO()
    merger = CsvMerger(out.write, None, None)
    with tempfile.TemporaryFile() as file:
        sink = _PartSink(merger, "part 1", file, stream=True)
        for at in range(0, len(data), step):
            sink.write(data[at : at + step])
        sink.close(MAX_PART_BYTES)
        assert file.seek(0, 2) == (len(data) if packed else 0)
    wanted = b"id\n" if data == b"id" else CSV
    assert out.getvalue() == wanted
    assert merger.finish().rows == wanted.count(b"\n") - 1 - (wanted == CSV)  # "a\nb" is one row


def test_a_streamed_part_cannot_start_over_but_a_spooled_one_can() -> None:
    merger = CsvMerger(io.BytesIO().write, None, None)
    with tempfile.TemporaryFile() as file:
        spooled = _PartSink(merger, "part 1", file, stream=True)
        spooled.write(gzip.compress(CSV)[:10])
        spooled.restart()  # the temporary file is emptied; nothing reached the merger
        assert file.seek(0, 2) == 0
    with tempfile.TemporaryFile() as file:
        streamed = _PartSink(merger, "part 2", file, stream=True)
        streamed.restart()  # nothing fed yet: still free to start over
        streamed.write(CSV[:5])
        with pytest.raises(MergeStartOver, match="part 2 had to start over from byte 0"):
            streamed.restart()
