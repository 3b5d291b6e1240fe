"""Stdlib-only emulators of the vendors' APIs (Qlara, 8x8, Messangi): real HTTP servers on loopback for
tests, demos and benchmarks.

They import nothing from the provider's client package: each is written from the vendor's API reference
alone, so the client is tested against an independent implementation.
"""

from __future__ import annotations

from .factory import VENDORS, create_emulator
from .faults import Faults
from .qlara.exports import Export
from .qlara.shapes import Shape
from .requestlog import LoggedRequest
from .server import Emulator

__all__ = ["VENDORS", "Emulator", "Export", "Faults", "LoggedRequest", "Shape", "create_emulator"]
