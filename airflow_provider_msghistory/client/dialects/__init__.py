"""Dialect registry: the vendors are the modules of this package, found by convention.

Each module here but ``base`` (and private ``_helpers``) is one vendor and declares ``DIALECT``, its
:class:`Dialect` subclass; adding a vendor is adding its module, nothing here changes. Order (the form's
drop-down, error texts): the default vendor first, then by name.
"""

from __future__ import annotations

import importlib
import pkgutil

from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects.base import Capabilities, Dialect
from airflow_provider_msghistory.client.options import COMMON_OPTIONS, ConnectionOption
from airflow_provider_msghistory.client.wire import ApiRequest

#: the vendor of a connection without a ``vendor`` extra
DEFAULT_VENDOR = "qlara"


def discover_dialects(package: str = __name__) -> dict[str, type[Dialect]]:
    """``{vendor: dialect}`` of every vendor module in ``package``, the default vendor first, then by name.

    Imports only those modules (no network, nothing above ``client/``): cheap at DAG parse.
    """
    found: dict[str, type[Dialect]] = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        cls = getattr(module, "DIALECT", None)
        if not (isinstance(cls, type) and issubclass(cls, Dialect)):
            raise TypeError(
                f"{module.__name__} declares no DIALECT: end a vendor module with DIALECT = <its Dialect "
                "subclass>, or name a helper module with a leading underscore"
            )
        if cls.name in found:
            twice = f"{found[cls.name].__module__} and {module.__name__}"
            raise TypeError(f"vendor {cls.name!r} is declared twice: by {twice}")
        found[cls.name] = cls
    return {name: found[name] for name in sorted(found, key=lambda name: (name != DEFAULT_VENDOR, name))}


DIALECTS: dict[str, type[Dialect]] = discover_dialects()


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
    "connection_options",
    "credential_forms",
    "dialect_class",
    "discover_dialects",
    "make_dialect",
    "parse_time_dialect",
]
