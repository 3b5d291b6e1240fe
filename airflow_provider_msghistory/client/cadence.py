"""How often a wait on a job-tracked vendor (8x8) looks at its job: spread over the poll interval, and
sparser while the job is young.

A triggerer may start thousands of job waits in the same second (a backfill, a restart). Looked at all at
once, and every interval after, their requests come in bursts the API and the triggerer's loop pay for;
:func:`first_look_offset` spreads each wait's looks over the interval instead, by its export id (the same
wait restarted keeps its place).

A job cannot be done long before the vendor's typical duration (``Dialect.typical_export_seconds``, a
declaration of the dialect). While a job is younger than that, :meth:`JobCadence.delay` looks at it half
way to the typical age each time, at least one poll interval and at most :data:`YOUNG_MAX_GAP` intervals
apart; from one interval before the typical age on, every interval. A job that finishes early is seen at
most ``YOUNG_MAX_GAP`` intervals late; one that finishes at or after the typical age, within an interval.
The typical age is learned per connection (adaptive): the shortest duration among the last
:data:`LEARNED` jobs the waits saw finish, bounded by :data:`MAX_LEARNED_FACTOR` times the declared one.
Jobs are aged from when their wait started (a restarted wait looks sooner, never later). A dialect that
declares nothing is looked at every interval.
"""

from __future__ import annotations

import zlib
from collections import deque

#: The longest gap between two looks at a young job, in poll intervals: under two, so a job that finishes
#: early is still seen within two intervals once the look's own round trip (and queue) is counted.
YOUNG_MAX_GAP = 1.5
#: How many recent job durations the learned typical age is taken from.
LEARNED = 32
#: The learned typical age never exceeds this many times the declared one.
MAX_LEARNED_FACTOR = 4.0


def first_look_offset(export_id: str, poll_interval: float) -> float:
    """Seconds after its start at which a wait first looks, in ``[0, poll_interval)``, fixed by the id."""
    return (zlib.crc32(export_id.encode()) % 1000) / 1000 * poll_interval


class JobCadence:
    """The look schedule of one connection's job waits, and what it learned of its jobs' durations.

    :param declared: the dialect's typical export duration in seconds (``None``: none declared).
    """

    def __init__(self, declared: float | None) -> None:
        self.declared = declared
        self._durations: deque[float] = deque(maxlen=LEARNED)

    @property
    def typical(self) -> float | None:
        """The age before which a job is taken to be still working (``None``: no young phase)."""
        if self.declared is None:
            return None
        if not self._durations:
            return self.declared
        return min(min(self._durations), MAX_LEARNED_FACTOR * self.declared)

    def finished(self, age: float) -> None:
        """A wait saw its job finish ``age`` seconds after the wait started."""
        self._durations.append(max(age, 0.0))

    def delay(self, age: float, poll_interval: float) -> float:
        """Seconds from a look at a job of ``age`` seconds to the next look."""
        typical = self.typical
        if typical is None or age + poll_interval >= typical:
            return poll_interval
        return min(max((typical - age) / 2, poll_interval), YOUNG_MAX_GAP * poll_interval)
