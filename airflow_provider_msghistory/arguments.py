"""Checks of operator arguments shared by the operators, sensor and transfers (below all of them), and the
default window every windowed operator takes: the run's data interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow.providers.common.compat.sdk import AirflowFailException


class BadArgumentError(AirflowFailException, ValueError):
    """A rendered argument (or the run's missing data interval) is wrong: a ``ValueError`` naming it, that
    fails the task without retries, since a retry would render it the same."""


def is_templated(value: object) -> bool:
    """True when ``value`` (a string, or an ObjectStoragePath, whose path Airflow also renders) still holds
    Jinja markup, so it can only be checked after rendering at task start."""
    text = value if isinstance(value, str) else str(getattr(value, "path", ""))
    return "{{" in text or "{%" in text


def positive_seconds(value: object, param: str, example: str) -> float:
    """``value`` as seconds > 0, or ``ValueError`` naming ``param``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{param}: expected a number of seconds > 0, e.g. {example}; got {value!r}")
    return float(value)


def count(value: object, param: str, example: str, minimum: int) -> int:
    """``value`` as an integer >= ``minimum``, or ``ValueError`` naming ``param``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{param}: expected an integer >= {minimum}, e.g. {example}; got {value!r}")
    return value


def checked_export_id(value: object) -> str:
    """``value`` as an export id (an id or a number, blanks dropped); else ``ValueError`` naming it."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text or text in ("None", ".", ".."):
        raise ValueError(
            f"export_id: expected an export id such as 'exp_123' (usually "
            f"\"{{{{ ti.xcom_pull(task_ids='export')['export_id'] }}}}\"); got {value!r}"
        )
    return text


def time_zone(value: object, param: str) -> tzinfo:
    """The IANA zone ``value`` names, or ``ValueError`` naming ``param``."""
    try:
        if not isinstance(value, str) or not value.strip():
            raise ValueError
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{param}: {value!r} is not an IANA time zone, e.g. 'UTC', 'Europe/Rome'") from None


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


# Said only of a window that was rendered from templates (the run's data interval, or a template of it):
# explicit dates that make an empty window are a typo, not a timetable's doing.
EMPTY_RUN_INTERVAL_HELP = (
    ". A templated window that renders empty is usually the run's data interval under Airflow 3's "
    "CronTriggerTimetable (what schedule='@daily' gives), which makes data_interval_start equal to "
    "data_interval_end; use a data-interval timetable, e.g. "
    "schedule=CronDataIntervalTimetable('@daily', timezone='UTC'), or pass explicit start_datetime and "
    "end_datetime such as '2025-01-01T00:00:00+00:00' and '2025-01-02T00:00:00+00:00'"
)


def with_interval_advice(error: ValueError, templated: bool) -> ValueError:
    """``error`` of an empty window, with the timetable advice when the window was ``templated`` and
    rendered with start equal to end (what a timetable without data intervals renders)."""
    if templated and "is not before end" in str(error):
        return ValueError(str(error) + EMPTY_RUN_INTERVAL_HELP)
    return error


def check_run_interval(start: object, end: object) -> None:
    """Raise the advice of :data:`NO_RUN_INTERVAL_HELP` when the default window rendered empty.

    :param start: the rendered ``RUN_INTERVAL_START``.
    :param end: the rendered ``RUN_INTERVAL_END``.
    """
    if start in (None, "") or end in (None, ""):
        raise ValueError(NO_RUN_INTERVAL_HELP)


def check_export_origin(task: Any, context: Any, export_id: str, conn_id: str, vendor: str) -> None:
    """Refuse an export id that an upstream export task made on another connection (or vendor) than
    ``conn_id``: its XCom says where it was made, and the id means nothing on another account.

    :param task: the task reading the export (its upstream tasks are searched).
    :param context: the task's context (without a task instance, nothing is checked).
    :param export_id: the rendered export id.
    :param conn_id: the task's own ``msghistory_conn_id``.
    :param vendor: that connection's vendor.
    :raises BadArgumentError: naming ``export_id`` and the connection the export was made on.
    """
    ti = context.get("ti") if isinstance(context, Mapping) else None
    if ti is None or not task.has_dag():
        return
    for upstream in task.upstream_list:
        if not hasattr(upstream, "msghistory_conn_id"):  # not one of this provider's tasks
            continue
        pulled = ti.xcom_pull(task_ids=upstream.task_id)
        results = pulled if isinstance(pulled, Sequence) and not isinstance(pulled, str) else [pulled]
        for made in results:
            if not isinstance(made, Mapping) or str(made.get("export_id")) != export_id:
                continue
            made_on, made_by = made.get("msghistory_conn_id"), made.get("vendor")
            if made_on not in (None, conn_id) or made_by not in (None, vendor):
                raise BadArgumentError(
                    f"export_id: this export id was made on connection {made_on!r} ({made_by}) by task "
                    f"{upstream.task_id!r}, but this task reads connection {conn_id!r} ({vendor}), where it "
                    f"means nothing; pass msghistory_conn_id={made_on!r}"
                )
