"""Half-open export windows ``[start, end)`` and the two ways a vendor's bounds can cover one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from airflow_provider_msghistory.client.datetimes import MS, SECOND, ceil_to, floor_to, iso_utc, parse_utc


def restated_start(start: datetime, days: int, zone: tzinfo) -> datetime:
    """``start`` moved back ``days`` calendar days of ``zone`` (wall clock: across a DST change a day is 23
    or 25 hours, so a restated window still starts at a local midnight)."""
    return (start.astimezone(zone) - timedelta(days=days)).astimezone(timezone.utc) if days else start


@dataclass(frozen=True)
class Window:
    """The half-open window ``[start, end)`` an export must cover exactly (aware datetimes).

    :param start: first instant inside.
    :param end: first instant after.
    """

    start: datetime
    end: datetime

    def check_not_empty(self) -> None:
        """``ValueError`` (naming ``start_datetime``) when nothing lies inside, at millisecond precision."""
        start, end = self.start.isoformat(), self.end.isoformat()
        if self.end < self.start:
            raise ValueError(
                f"start_datetime: the window [start_datetime, end_datetime) is empty: end {end} is before "
                f"start {start}; pass an end_datetime after start_datetime (swapped?)"
            )
        if ceil_to(self.start, MS) >= ceil_to(self.end, MS):
            raise ValueError(
                f"start_datetime: the window [start_datetime, end_datetime) is empty: start {start} is not "
                f"before end {end} (at millisecond precision); pass an end_datetime after start_datetime"
            )

    def inclusive_ms(self) -> tuple[datetime, datetime]:
        """Inclusive millisecond bounds covering exactly this window: ``start`` and ``end - 1 ms``.

        Both are rounded up to the millisecond first, so consecutive windows sharing a boundary neither
        overlap nor leave a gap.
        """
        self.check_not_empty()
        return ceil_to(self.start, MS), ceil_to(self.end, MS) - MS

    def covering_seconds(self) -> tuple[datetime, datetime]:
        """Whole-second bounds that surely cover the window, whether the server's ``to`` is inclusive or
        not: ``floor(start)`` and ``ceil(end) + 1 s``. Rows outside are filtered afterwards."""
        self.check_not_empty()
        return floor_to(self.start, SECOND), ceil_to(self.end, SECOND) + SECOND

    def split(self, longest: timedelta) -> list[Window]:
        """Consecutive windows of at most ``longest`` tiling this one: contiguous, non-overlapping, in
        order (the last one may be shorter). A vendor capping one request's span (Messangi: 92 days)
        gets one request per piece; on millisecond bounds each ends 1 ms before the next starts.

        Inner boundaries sit on the millisecond grid (``floor_ms(start) + k * longest``), so bounds rounded
        out to the millisecond (a covering window) never make a piece longer than ``longest``."""
        if longest <= timedelta(0):
            raise ValueError(f"longest: must be a positive span, got {longest}")
        pieces: list[Window] = []
        start, anchor = self.start, floor_to(self.start, MS)
        while True:
            anchor += longest
            end = anchor
            if end >= self.end:
                pieces.append(Window(start, self.end))
                return pieces
            pieces.append(Window(start, end))
            start = end

    def utc(self) -> Window:
        return Window(self.start.astimezone(timezone.utc), self.end.astimezone(timezone.utc))

    def encode(self) -> str:
        """``<start>/<end>`` in UTC at microsecond precision (ISO 8601 interval), for an export reference."""
        utc = self.utc()
        return f"{iso_utc(utc.start)}/{iso_utc(utc.end)}"

    @classmethod
    def decode(cls, text: str) -> Window:
        """The window :meth:`encode` wrote; ``ValueError`` when ``text`` is not one."""
        start_text, sep, end_text = text.partition("/")
        if not sep:
            raise ValueError(f"window: {text[:60]!r} is not '<start>/<end>'")
        start, end = parse_utc(start_text), parse_utc(end_text)
        if end < start:
            raise ValueError(f"window: end {end_text!r} is before start {start_text!r}")
        return cls(start, end)
