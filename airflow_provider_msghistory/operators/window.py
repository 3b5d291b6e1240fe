"""Turn the operator's half-open window ``[start, end)`` into the API's inclusive millisecond bounds."""

from __future__ import annotations

from datetime import datetime, timedelta

_MS = timedelta(milliseconds=1)

# The operators' default window: the run's data interval. A run without a logical date (Airflow 3 allows
# one, e.g. `airflow dags trigger` with no date) has none, and its context lacks these keys: rendered with
# ``default``, they come out empty instead of failing with Jinja's UndefinedError before the task starts,
# so the operator can say what to pass instead (:func:`check_run_interval`).
RUN_INTERVAL_START = "{{ data_interval_start | default('', true) }}"
RUN_INTERVAL_END = "{{ data_interval_end | default('', true) }}"

NO_RUN_INTERVAL_HELP = (
    "start_datetime: this run has no data interval (a manual run without a logical date, which Airflow 3 "
    "allows), so the default window [data_interval_start, data_interval_end) is undefined. Give the run a "
    "logical date (a backfill: `airflow backfill create --dag-id <dag> --from-date <first day> "
    "--to-date <last day>`, or the UI's trigger form or the REST API with a logical date; the CLI's "
    "`airflow dags trigger -l` takes the interval from the current time, not from the date), or pass "
    "explicit start_datetime and end_datetime such as '2025-01-01T00:00:00+00:00' and "
    "'2025-01-02T00:00:00+00:00' (templated from params, e.g. start_datetime='{{ params.start }}')"
)

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


def check_run_interval(start: object, end: object) -> None:
    """Raise the advice of :data:`NO_RUN_INTERVAL_HELP` when the default window rendered empty.

    :param start: the rendered ``RUN_INTERVAL_START``.
    :param end: the rendered ``RUN_INTERVAL_END``.
    """
    if start in (None, "") or end in (None, ""):
        raise ValueError(NO_RUN_INTERVAL_HELP)
