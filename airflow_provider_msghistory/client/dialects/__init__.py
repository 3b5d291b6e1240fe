"""Dialect registry: one entry per vendor; adding a vendor touches only this package."""

from __future__ import annotations

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.base import Capabilities, Dialect
from airflow_provider_msghistory.client.dialects.eightxeight import EightByEightDialect
from airflow_provider_msghistory.client.dialects.messangi import MessangiDialect
from airflow_provider_msghistory.client.dialects.qlara import QlaraDialect
from airflow_provider_msghistory.client.options import COMMON_OPTIONS, ConnectionOption
from airflow_provider_msghistory.client.wire import ApiRequest

DIALECTS: dict[str, type[Dialect]] = {
    "qlara": QlaraDialect,
    "8x8": EightByEightDialect,
    "messangi": MessangiDialect,
}
#: the vendor of a connection without a ``vendor`` extra
DEFAULT_VENDOR = "qlara"


def dialect_class(name: str) -> type[Dialect]:
    """The dialect of vendor ``name`` (case-insensitive); ``ValueError`` lists the known ones."""
    key = (name or "").strip().lower()
    try:
        return DIALECTS[key]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"vendor: unknown vendor {name!r}; supported: {known}") from None


def connection_options() -> tuple[ConnectionOption, ...]:
    """Every connection extra, in form order: the vendor, each vendor's own options, the common ones."""
    vendor = ConnectionOption(
        "vendor",
        "Vendor",
        default=DEFAULT_VENDOR,
        placeholder=DEFAULT_VENDOR,
        description=f"API dialect of the platform: {', '.join(DIALECTS)}.",
        choices=tuple(DIALECTS),
    )
    own = [option for cls in DIALECTS.values() for option in cls.connection_options]
    return (vendor, *own, *COMMON_OPTIONS)


def credential_forms() -> str:
    """What the connection's password holds, per vendor (the form's placeholder)."""
    return "; ".join(f"{name}: {' or '.join(cls.caps.auth_forms)}" for name, cls in DIALECTS.items())


def make_dialect(config: ClientConfig) -> Dialect:
    """The dialect of ``config.vendor``, built with (and validating) the config's options."""
    return dialect_class(config.vendor)(config)


def parse_time_dialect(vendor: str) -> Dialect:
    """A dialect of ``vendor`` for checking requests at DAG parse, when the connection is not at hand."""
    cls = dialect_class(vendor)
    placeholder = ClientConfig(api_key="parse-time", vendor=cls.name, options=cls.placeholder_options)
    return cls(placeholder)


__all__ = [
    "DEFAULT_VENDOR",
    "DIALECTS",
    "ApiRequest",
    "Capabilities",
    "Dialect",
    "EightByEightDialect",
    "MessangiDialect",
    "QlaraDialect",
    "connection_options",
    "credential_forms",
    "dialect_class",
    "make_dialect",
    "parse_time_dialect",
]
