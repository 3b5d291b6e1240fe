"""Checks of operator arguments shared by the operators, sensor and transfer (below all of them)."""

from __future__ import annotations


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
