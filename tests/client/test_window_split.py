"""``Window.split``: a window longer than a vendor's cap becomes contiguous, non-overlapping pieces."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_msghistory.client.windows import MS, Window

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
CAP = timedelta(days=92)


@pytest.mark.parametrize(
    ("length", "pieces"),
    [
        (timedelta(days=1), 1),
        (CAP, 1),
        (CAP + MS, 2),
        (timedelta(days=184), 2),
        (timedelta(days=200), 3),
        (timedelta(days=366, microseconds=250), 4),
    ],
)
def test_pieces_tile_the_window_and_none_exceeds_the_cap(length: timedelta, pieces: int) -> None:
    window = Window(START, START + length)
    split = window.split(CAP)
    assert len(split) == pieces
    assert split[0].start == window.start and split[-1].end == window.end
    for before, after in itertools.pairwise(split):
        assert before.end == after.start  # half-open: contiguous, no overlap
        # on the wire (inclusive ms) the next piece starts 1 ms after the previous one ends
        assert after.inclusive_ms()[0] == before.inclusive_ms()[1] + MS
    assert all(piece.end - piece.start <= CAP for piece in split)


def test_an_offset_window_keeps_its_instants() -> None:
    plus_two = timezone(timedelta(hours=2))
    window = Window(datetime(2025, 3, 1, tzinfo=plus_two), datetime(2025, 9, 1, tzinfo=plus_two))
    split = window.split(CAP)
    assert split[0].start == window.start and split[-1].end == window.end


def test_a_cap_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="longest"):
        Window(START, START + CAP).split(timedelta(0))
