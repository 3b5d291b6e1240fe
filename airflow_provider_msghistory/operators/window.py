"""Turn the operator's half-open window ``[start, end)`` into the API's inclusive millisecond bounds."""

from __future__ import annotations

from datetime import datetime, timedelta

_MS = timedelta(milliseconds=1)

EMPTY_WINDOW_HELP = (
    "the export window [start_datetime, end_datetime) is empty: start {start} is not before end {end}. "
    "Airflow 3's CronTriggerTimetable (what schedule='@daily' gives) makes data_interval_start equal to "
    "data_interval_end; use a data-interval timetable, e.g. "
    "schedule=CronDataIntervalTimetable('@daily', timezone='UTC'), or pass explicit start_datetime and "
    "end_datetime such as '2025-01-01T00:00:00+00:00' and '2025-01-02T00:00:00+00:00'"
)


def _ceil_ms(value: datetime) -> datetime:
    """Round up to the next whole millisecond (the API's precision)."""
    extra = value.microsecond % 1000
    return value + timedelta(microseconds=1000 - extra) if extra else value


def api_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Inclusive API bounds covering exactly the half-open window ``[start, end)`` at ms precision.

    Sends ``start`` and ``end - 1 ms`` (both rounded up to the millisecond first), so consecutive windows
    sharing a boundary neither overlap nor leave a gap. Raises ``ValueError`` for an empty or inverted
    window.

    :param start: aware window start (included).
    :param end: aware window end (excluded).
    """
    first, stop = _ceil_ms(start), _ceil_ms(end)
    if first >= stop:
        raise ValueError(
            "start_datetime: " + EMPTY_WINDOW_HELP.format(start=start.isoformat(), end=end.isoformat())
        )
    return first, stop - _MS
