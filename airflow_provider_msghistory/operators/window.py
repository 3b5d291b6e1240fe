"""The operators' default window: the run's data interval, and what to say when a run has none."""

from __future__ import annotations

# A run without a logical date (Airflow 3 allows one, e.g. `airflow dags trigger` with no date) has no data
# interval, and its context lacks these keys: rendered with ``default``, they come out empty instead of
# failing with Jinja's UndefinedError before the task starts, so the operator can say what to pass instead
# (:func:`check_run_interval`).
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


def check_run_interval(start: object, end: object) -> None:
    """Raise the advice of :data:`NO_RUN_INTERVAL_HELP` when the default window rendered empty.

    :param start: the rendered ``RUN_INTERVAL_START``.
    :param end: the rendered ``RUN_INTERVAL_END``.
    """
    if start in (None, "") or end in (None, ""):
        raise ValueError(NO_RUN_INTERVAL_HELP)
