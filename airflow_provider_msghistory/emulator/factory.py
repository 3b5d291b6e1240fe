"""``create_emulator(vendor=..., **options)``: builds the vendor's :class:`~.server.Emulator` subclass.

Each vendor is a package of its own here (``qlara/``, ``eightxeight/``, ``messangi/``) whose
``__init__.py`` declares ``VENDOR`` (a :class:`~.spec.VendorSpec`); every subpackage is a vendor, found by
:mod:`pkgutil`, so adding one changes nothing here. Only the declarations are read up front; a vendor's
servers load on first use, so a Qlara emulator never imports the others.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .server import Emulator
from .spec import VendorSpec

#: the vendor of ``create_emulator()`` and the CLI without ``vendor``
DEFAULT_VENDOR = "qlara"


def discover_vendors(package: str = __package__) -> dict[str, VendorSpec]:
    """``{vendor: spec}`` of every subpackage of ``package``, the default vendor first, then by name."""
    found: dict[str, VendorSpec] = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        spec = getattr(module, "VENDOR", None)
        if not isinstance(spec, VendorSpec):
            raise TypeError(f"{module.__name__} declares no VENDOR: each emulator subpackage is a vendor "
                            "and its __init__.py sets VENDOR = VendorSpec(...)")  # fmt: skip
        if spec.name in found:
            raise TypeError(f"vendor {spec.name!r} is declared twice: by {found[spec.name].package} and "
                            f"{module.__name__}")  # fmt: skip
        found[spec.name] = spec
    return {name: found[name] for name in sorted(found, key=lambda name: (name != DEFAULT_VENDOR, name))}


SPECS = discover_vendors()
VENDORS = tuple(SPECS)


def vendor_spec(vendor: str) -> VendorSpec:
    """The declaration of ``vendor`` (``ValueError`` naming the known ones otherwise)."""
    try:
        return SPECS[vendor.lower()]
    except KeyError:
        raise ValueError(
            f"unknown vendor {vendor!r}; one of {', '.join(VENDORS)}, e.g. vendor={VENDORS[0]!r}"
        ) from None


def emulator_class(vendor: str) -> type[Emulator]:
    """The :class:`Emulator` subclass of ``vendor`` (``ValueError`` naming the known ones otherwise)."""
    spec = vendor_spec(vendor)
    module_name, class_name = spec.emulator.split(":")
    cls: type[Emulator] = getattr(importlib.import_module(f"{spec.package}.{module_name}"), class_name)
    return cls


def create_emulator(vendor: str = DEFAULT_VENDOR, **options: Any) -> Emulator:
    """A (not yet started) emulator of ``vendor`` with its ``options``; use it as a context manager."""
    return emulator_class(vendor)(**options)
