"""What a long wait for an export says in the log: a line when its status changes, a sparse heartbeat else.

A deferred export that logs one "PENDING" line and then nothing for half an hour looks hung. A line per poll
would, with a thousand waits in one triggerer, flood its log. So each wait logs when what it sees changes,
and otherwise a heartbeat (elapsed time, polls, next check) whose spacing doubles from
``FIRST_HEARTBEAT`` up to ``MAX_HEARTBEAT_GAP``: seven heartbeats in the first hour of an unchanged wait,
then four an hour. Pure: time is passed in, nothing is logged here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Seconds of unchanged status before the first heartbeat; each later one waits twice as long as the one
# before, up to the cap.
FIRST_HEARTBEAT = 60.0
MAX_HEARTBEAT_GAP = 900.0


def duration(seconds: float) -> str:
    """``seconds`` as ``45s``, ``4m05s`` or ``1h02m``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class WaitProgress:
    """Decides which looks at one export are worth a log line. Call :meth:`poll` after every look.

    :param export_id: the export waited for (named in every line).
    :param started: epoch seconds when this wait began (elapsed time counts from here).
    :param first_heartbeat: seconds of unchanged status before the first heartbeat.
    :param max_gap: the longest gap between two heartbeats.
    """

    export_id: str
    started: float
    first_heartbeat: float = FIRST_HEARTBEAT
    max_gap: float = MAX_HEARTBEAT_GAP
    polls: int = 0
    _status: str | None = None
    _gap: float = field(default=0.0, init=False)
    _next_beat: float = field(default=0.0, init=False)

    def poll(self, status: str, now: float, next_check: float | None = None) -> str | None:
        """Count one look at the export; return the line to log now, or ``None`` to stay quiet.

        :param status: what the look said, in words (a changed text is a status change).
        :param now: epoch seconds of the look.
        :param next_check: seconds until the next look (``None``: the wait is over).
        """
        self.polls += 1
        elapsed = duration(now - self.started)
        polls = f"{self.polls} poll{'s' if self.polls != 1 else ''}"
        if status != self._status:
            self._status = status
            self._gap = self.first_heartbeat  # a change restarts the spacing: the wait is moving
            self._next_beat = now + self._gap
            return f"Export {self.export_id}: {status} (after {elapsed}, {polls})"
        if now < self._next_beat:
            return None
        self._gap = min(self._gap * 2, self.max_gap)
        self._next_beat = now + self._gap
        nxt = "" if next_check is None else f", next check in {duration(next_check)}"
        return f"Export {self.export_id} still waiting after {elapsed} ({polls}{nxt}): {status}"
