"""Parse and validate the datetimes users pass, and write them in the API's OffsetDateTime form."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

EXAMPLE = "2025-01-01T00:00:00+01:00"
MIN_YEAR, MAX_YEAR = 1900, 9998
_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def parse_aware(value: object, param: str) -> datetime:
    """Return ``value`` as an aware datetime, or raise ``ValueError`` naming ``param``.

    Accepts an aware ``datetime`` (pendulum's ``DateTime`` is one) or an ISO-8601 string with an offset.
    Rejects naive datetimes, dates, date-only strings, offset-less strings and anything unparseable,
    because the API reads an offset-less time in an unknown zone.

    :param value: the user's value.
    :param param: the parameter name to show in the error.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        raise ValueError(f"{param}: a date has no time and no offset; pass a datetime like {EXAMPLE!r}")
    elif isinstance(value, str):
        parsed = _parse_string(value.strip(), param)
    else:
        raise ValueError(
            f"{param}: expected an aware datetime or an ISO-8601 string like {EXAMPLE!r}, "
            f"got {type(value).__name__}"
        )
    offset = parsed.utcoffset()
    if offset is None:
        raise ValueError(f"{param}: datetime has no UTC offset; pass an aware one like {EXAMPLE!r}")
    if offset % timedelta(minutes=1):
        raise ValueError(f"{param}: the API takes offsets in whole minutes, like {EXAMPLE!r}")
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        # Rounding to the millisecond or converting the offset would overflow near datetime's limits.
        raise ValueError(
            f"{param}: year {parsed.year} is out of range; pass a datetime in years "
            f"{MIN_YEAR}-{MAX_YEAR}, like {EXAMPLE!r}"
        )
    return parsed


def _parse_string(text: str, param: str) -> datetime:
    shown = text if len(text) <= 40 else text[:40] + "..."
    if _DATE_ONLY.match(text):
        raise ValueError(f"{param}: {shown!r} is a date only; pass a datetime with offset like {EXAMPLE!r}")
    normalised = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError:
        message = f"{param}: {shown!r} is not an ISO-8601 datetime; pass one like {EXAMPLE!r}"
        raise ValueError(message) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{param}: {shown!r} has no UTC offset; pass one like {EXAMPLE!r}")
    return parsed


def format_api(value: datetime) -> str:
    """Write ``value`` as ``YYYY-MM-DDTHH:MM:SS.mmm+HH:MM``, keeping its own offset (``Z`` as ``+00:00``).

    Sub-millisecond digits are dropped (floor), which keeps an inclusive end bound inside its window.
    """
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware one like {EXAMPLE!r}")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
        f"{value.second:02d}.{value.microsecond // 1000:03d}{sign}{hours:02d}:{mins:02d}"
    )
