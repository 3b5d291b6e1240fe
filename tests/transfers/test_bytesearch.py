"""find_all: the edge search's needle search, through the C library's memmem where there is one."""

from __future__ import annotations

import random

import pytest

from airflow_provider_msghistory.transfers import bytesearch
from airflow_provider_msghistory.transfers.bytesearch import find_all


def finds(data: bytes, needle: bytes, start: int, end: int) -> list[int]:
    """What repeated bytes.find gives: the reference."""
    hits, at = [], data.find(needle, start, end)
    while at >= 0:
        hits.append(at)
        at = data.find(needle, at + 1, end)
    return hits


@pytest.fixture(params=["memmem", "bytes.find"])
def search(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "bytes.find":  # a C library without memmem
        monkeypatch.setattr(bytesearch, "_memmem", lambda: None)
    return str(request.param)


def test_the_c_library_search_is_used_here() -> None:
    assert bytesearch._memmem() is not None


@pytest.mark.usefixtures("search")
@pytest.mark.parametrize(
    ("data", "needle", "start", "end"),
    [
        (b"aaaaa", b"aaa", 0, 5),  # overlapping
        (b"2025-01-02T00:00:01Z,2025-01-02T00:00:00Z\n", b"2025-01-02", 0, 43),
        (b"2025-01-02T00:00:01Z,2025-01-02T00:00:00Z\n", b"2025-01-02", 1, 43),  # first one starts before
        (b"2025-01-02T00:00:01Z,2025-01-02T00:00:00Z\n", b"2025-01-02", 0, 30),  # second one ends after
        (b"2025-01-02", b"2025-01-02", 0, 9),  # the range is shorter than the needle
        (b"abc", b"abcd", 0, 3),
        (b"abcabc", b"c", 0, 6),
        (b"", b"x", 0, 0),
        (b"xyz", b"x", -5, 99),  # bounds outside the data are clamped, as slicing does
        (b"xyzx", b"", 1, 3),  # an empty needle: found everywhere in range, as bytes.find says
    ],
)
def test_finds_what_bytes_find_finds(data: bytes, needle: bytes, start: int, end: int) -> None:
    assert find_all(data, needle, start, end) == finds(data, needle, max(start, 0), min(end, len(data)))


@pytest.mark.usefixtures("search")
def test_random_csv_like_text() -> None:
    rng = random.Random(18)
    alphabet = b'0123456789-:TZ.,"\n abrxy'
    for _ in range(300):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        needle = bytes(rng.choice(b"012-:") for _ in range(rng.randrange(1, 4)))
        start, end = sorted(rng.randrange(-3, len(data) + 4) for _ in range(2))
        expected = finds(data, needle, max(start, 0), min(end, len(data)))
        assert find_all(data, needle, start, end) == expected, (data, needle, start, end)


def test_a_large_buffer_with_hits_at_both_ends() -> None:
    data = b"2025-01-02" + b"2025-01-01T12:00:00.000Z," * 50_000 + b"2025-01-02"
    assert find_all(data, b"2025-01-02", 0, len(data)) == [0, len(data) - 10]
    assert find_all(data, b"2025-01-02", 1, len(data) - 1) == []


def test_a_bytearray_is_searched_too() -> None:
    data = bytearray(b"x2025-01-02y2025-01-02")
    assert find_all(data, b"2025-01-02", 0, len(data)) == [1, 12]
