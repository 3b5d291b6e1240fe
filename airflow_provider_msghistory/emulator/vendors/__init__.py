"""One module per vendor; ``emulator_class(name)`` picks the one ``Emulator(vendor=...)`` builds."""

from __future__ import annotations

import importlib

from ..server import Emulator

# vendor name -> (module, class); modules load on first use, so Qlara never imports the others.
_VENDORS = {
    "qlara": ("qlara", "QlaraEmulator"),
    "8x8": ("eightxeight", "EightByEightEmulator"),
    "messangi": ("messangi", "MessangiEmulator"),
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
    module = importlib.import_module(f"{__name__}.{module_name}")
    cls: type[Emulator] = getattr(module, class_name)
    return cls
