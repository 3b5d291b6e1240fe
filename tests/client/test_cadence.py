"""The look schedule of job waits: spread over the interval, sparser while a job is young, bounded."""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_msghistory.client.cadence import (
    MAX_LEARNED_FACTOR,
    YOUNG_MAX_GAP,
    JobCadence,
    first_look_offset,
)


def test_first_looks_of_many_waits_spread_over_the_interval() -> None:
    offsets = [first_look_offset(f"job-{n}", 5.0) for n in range(10_000)]
    assert all(0 <= offset < 5.0 for offset in offsets)
    per_second = [sum(1 for o in offsets if s <= o < s + 1) for s in range(5)]
    assert min(per_second) > 1_700  # about 2,000 each: no burst
    assert first_look_offset("job-1", 5.0) == first_look_offset("job-1", 5.0)  # a restart keeps its place


def looks_until(cadence: JobCadence, done_at: float, interval: float, first: float = 0.0) -> list[float]:
    """When a wait looks at a job that finishes at ``done_at`` (seconds after the wait started)."""
    ages = [first]
    while ages[-1] < done_at:
        ages.append(ages[-1] + cadence.delay(ages[-1], interval))
    return ages


@pytest.mark.parametrize("done_at", [0.5, 3.0, 9.0, 17.0, 29.0, 30.0, 45.0, 300.0])
def test_a_job_is_seen_within_two_intervals_and_within_one_once_past_its_typical_age(done_at: float) -> None:
    cadence = JobCadence(30.0)
    ages = looks_until(cadence, done_at, 5.0)
    late = ages[-1] - done_at
    assert late <= YOUNG_MAX_GAP * 5.0
    if done_at >= 30.0:
        assert late <= 5.0
    assert all(b - a >= 5.0 for a, b in itertools.pairwise(ages))  # never faster than the interval


def test_young_jobs_cost_fewer_looks() -> None:
    young = looks_until(JobCadence(30.0), 30.0, 5.0)
    every_interval = looks_until(JobCadence(None), 30.0, 5.0)
    assert len(every_interval) == 7 and len(young) == 6


def test_the_typical_age_is_learned_from_jobs_seen_finishing_and_bounded() -> None:
    cadence = JobCadence(30.0)
    cadence.finished(8.0)
    assert cadence.typical == 8.0  # a faster job than declared: look sooner
    fast = JobCadence(30.0)
    slow = JobCadence(30.0)
    for _ in range(40):
        slow.finished(10_000.0)
        fast.finished(1.0)
    assert slow.typical == MAX_LEARNED_FACTOR * 30.0
    assert fast.typical == 1.0 and fast.delay(2.0, 5.0) == 5.0
    assert JobCadence(None).delay(0.0, 5.0) == 5.0  # nothing declared: every interval
