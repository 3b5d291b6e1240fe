"""Every time the provider parses, rounds or writes: users' datetimes (strict), vendors' (lenient), the
provider's own stored ones (exact round trip), the wire forms and the ms/s grid.

Three parsers, on purpose: a user's value must carry an offset and gets advice (``parse_aware``); a vendor's
is read in any spelling and never raises (``parse_vendor_time``); the provider's own (``parse_utc``) is read
back exactly as ``iso_utc`` wrote it."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

EXAMPLE = "2025-01-01T00:00:00+01:00"
MS = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)
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


def zulu_ms(value: datetime) -> str:
    """``value`` in UTC as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (sub-millisecond digits dropped)."""
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def zulu_seconds(value: datetime) -> str:
    """``value`` in UTC as ``YYYY-MM-DDTHH:MM:SSZ`` (the fraction dropped)."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc(value: datetime) -> str:
    """``value`` in UTC, microseconds, ``Z``: how the provider stores a time (export refs, manifests)."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """A time :func:`iso_utc` wrote, in UTC; ``ValueError`` when it is not one."""
    normalised = text[:-1] + "+00:00" if text.endswith("Z") else text
    parsed = datetime.fromisoformat(normalised)
    if parsed.tzinfo is None:
        raise ValueError(f"window: {text[:40]!r} has no offset")
    return parsed.astimezone(timezone.utc)


def ceil_to(value: datetime, step: timedelta) -> datetime:
    """``value`` rounded up to a whole ``step`` (ms or s) of its own clock."""
    micros = step // timedelta(microseconds=1)
    extra = (value.second * 1_000_000 + value.microsecond) % micros if micros > 1 else 0
    return value + timedelta(microseconds=micros - extra) if extra else value


def floor_to(value: datetime, step: timedelta) -> datetime:
    """``value`` rounded down to a whole ``step`` (ms or s) of its own clock."""
    micros = step // timedelta(microseconds=1)
    return value - timedelta(microseconds=(value.second * 1_000_000 + value.microsecond) % micros)


# A vendor's time: date, ``T``/``t``/space, time with any fraction (Python 3.10's fromisoformat takes only 3
# or 6 digits; 8x8 writes 2), then ``Z``/``z``, an offset or nothing (UTC).
_VENDOR_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r" ?(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?"
)
_EPOCH_MS = 1e11  # a number above this is epoch milliseconds (1e11 seconds is the year 5138)


def parse_vendor_time(value: object, naive_is_utc: bool = True) -> datetime | None:
    """A time a vendor wrote (a row's time, a link's expiry) as an aware datetime; ``None`` if unreadable.

    One parser for every time read off the wire: ISO 8601 with ``T``, ``t`` or a space, any number of
    fraction digits, ``Z``/``z``/an offset (a time without one is UTC unless ``naive_is_utc`` is False,
    then it is unreadable), or epoch seconds/milliseconds as a number or a string of digits. Never raises
    (an absurd value is unreadable, not an ``OverflowError``).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str):
        text = value.strip().strip('"').strip()[:64]
        if text.isdigit():
            return _epoch(int(text))
        match = _VENDOR_TIME.fullmatch(text)
        if match is None:
            return None
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            if offset >= timedelta(days=1):
                return None
            zone = timezone(-offset if sign == "-" else offset)
        elif zulu or naive_is_utc:
            zone = timezone.utc
        else:
            return None
        try:
            return datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone,
            )  # fmt: skip
        except ValueError:  # month 13, hour 25 ...
            return None
    if isinstance(value, (int, float)):
        return _epoch(value)
    return None


def _epoch(number: float) -> datetime | None:
    try:  # 1e20, NaN, inf: unreadable
        return datetime.fromtimestamp(number / 1000 if number > _EPOCH_MS else number, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
