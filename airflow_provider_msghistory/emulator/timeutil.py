"""Strict OffsetDateTime parsing and millisecond formatting, as the Qlara API does them."""

from __future__ import annotations

import functools
import re
import time
from datetime import datetime, timedelta, timezone

# Java's ISO_OFFSET_DATE_TIME: seconds optional, fraction up to 9 digits, offset mandatory (Z or +hh:mm).
_OFFSET_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EXAMPLE = "2025-01-01T00:00:00.000+01:00"
DAY_MS = 86_400_000


def parse_offset_datetime(value: object, field: str) -> int:
    """Epoch milliseconds of an ISO-8601 OffsetDateTime; ``ValueError`` names ``field`` otherwise.

    Sub-millisecond digits are truncated: the API's bounds have millisecond resolution.
    """
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be an ISO-8601 date-time with offset, e.g. {EXAMPLE}")
    match = _OFFSET_DATETIME.fullmatch(value)
    if match is None:
        raise ValueError(
            f"'{field}' is not an ISO-8601 date-time with offset (got {value!r}); expected e.g. {EXAMPLE}"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError as exc:
        raise ValueError(f"'{field}' is not a valid date-time ({value!r}): {exc}") from None
    if offset == "Z":
        delta = timedelta(0)
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 18 or minutes > 59:
            raise ValueError(f"'{field}' has an invalid offset {offset!r}; expected e.g. {EXAMPLE}")
        delta = timedelta(hours=hours, minutes=minutes) * (1 if offset[0] == "+" else -1)
    aware = naive.replace(tzinfo=timezone(delta))
    millis = int((fraction or "0").ljust(3, "0")[:3])
    return (aware - _EPOCH) // timedelta(milliseconds=1) + millis


def to_epoch_ms(value: datetime | str) -> int:
    """Epoch milliseconds of an aware datetime or an OffsetDateTime string (for test helpers)."""
    if isinstance(value, str):
        return parse_offset_datetime(value, "value")
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware, e.g. datetime(2025, 1, 1, tzinfo=timezone.utc)")
    return (value - _EPOCH) // timedelta(milliseconds=1)


def format_ms(epoch_ms: int) -> str:
    """``2025-01-03T10:11:12.345Z`` for an epoch-milliseconds instant (hot: every served record calls it)."""
    days, millis = divmod(epoch_ms, 86_400_000)
    seconds, millis = divmod(millis, 1000)
    minutes, second = divmod(seconds, 60)
    return f"{_date(days)}T{minutes // 60:02d}:{minutes % 60:02d}:{second:02d}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _date(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86_400))


def format_epoch(seconds: float) -> str:
    """Millisecond UTC timestamp of a wall-clock epoch-seconds value."""
    return format_ms(int(seconds * 1000))
