"""CsvDigest: size, SHA-256 and CSV record count, whatever the chunk boundaries."""

from __future__ import annotations

import csv
import hashlib
import io
import random

import pytest

from airflow_provider_msghistory.transfers.streaming import CsvDigest


def _feed(data: bytes, cuts: list[int]) -> CsvDigest:
    digest = CsvDigest()
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        digest.update(data[start:cut])
        start = cut
    return digest


def _csv(rows: list[list[str]], newline: str = "\r\n") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue().encode()


def test_counts_rows_like_a_csv_reader_across_any_chunking() -> None:
    rng = random.Random(7)
    rows = [["id", "text", "status"]]
    for i in range(300):
        text = rng.choice(["plain", 'has "quotes"', "multi\nline", 'both "a"\nand b', "", "comma, inside"])
        rows.append([str(i), text, "DELIVERED"])
    data = _csv(rows)
    expected_rows = sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline=""))) - 1
    assert expected_rows == 300
    for _ in range(50):
        cuts = rng.sample(range(1, len(data)), rng.randint(0, 40))
        digest = _feed(data, cuts)
        assert digest.rows == 300
        assert digest.size == len(data)
        assert digest.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        (b"", 0),
        (b"id,text\n", 0),
        (b"id,text", 0),
        (b"id,text\n1,a\n2,b\n", 2),
        (b"id,text\n1,a\n2,b", 2),  # no newline after the last row
        (b'id,text\n1,"a\nb"\n', 1),  # newline inside a quoted field
        (b'id,text\n1,"say ""hi""\n"\n2,x\n', 2),  # escaped quotes next to a quoted newline
    ],
)
def test_edge_cases(data: bytes, rows: int) -> None:
    assert _feed(data, []).rows == rows
    assert _feed(data, list(range(1, len(data)))).rows == rows  # one byte at a time
