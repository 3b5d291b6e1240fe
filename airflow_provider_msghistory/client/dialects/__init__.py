"""Dialect registry: one entry per vendor; adding a vendor touches only this package."""

from __future__ import annotations

from airflow_provider_msghistory.client.dialects.base import ApiRequest, Dialect
from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect

DIALECTS: dict[str, type[Dialect]] = {"qlara": QlaraDialect}


def get_dialect(name: str) -> Dialect:
    """A dialect instance for vendor ``name`` (case-insensitive); ``ValueError`` lists the known ones."""
    key = (name or "").strip().lower()
    try:
        return DIALECTS[key]()
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"vendor: unknown vendor {name!r}; supported: {known}") from None


__all__ = ["DIALECTS", "ApiRequest", "Dialect", "QlaraDialect", "get_dialect"]
