"""``create_emulator(vendor=..., **options)``: builds the vendor's :class:`~.server.Emulator` subclass.

Each vendor lives in its own folder (``qlara/``, ``eightxeight/``, ``messangi/``); a vendor's modules load
on first use, so a Qlara emulator never imports the others.
"""

from __future__ import annotations

import importlib
from typing import Any

from .server import Emulator

# vendor name -> (module, class)
_VENDORS = {
    "qlara": ("qlara.emulator", "QlaraEmulator"),
    "8x8": ("eightxeight.emulator", "EightByEightEmulator"),
    "messangi": ("messangi.emulator", "MessangiEmulator"),
}
VENDORS = tuple(_VENDORS)


def emulator_class(vendor: str) -> type[Emulator]:
    """The :class:`Emulator` subclass of ``vendor`` (``ValueError`` naming the known ones otherwise)."""
    try:
        module_name, class_name = _VENDORS[vendor.lower()]
    except KeyError:
        raise ValueError(
            f"unknown vendor {vendor!r}; one of {', '.join(VENDORS)}, e.g. vendor='8x8'"
        ) from None
    module = importlib.import_module(f"{__package__}.{module_name}")
    cls: type[Emulator] = getattr(module, class_name)
    return cls


def create_emulator(vendor: str = "qlara", **options: Any) -> Emulator:
    """A (not yet started) emulator of ``vendor`` with its ``options``; use it as a context manager."""
    return emulator_class(vendor)(**options)
