"""Stdlib-only Qlara Partner Gateway emulator: a real HTTP server on loopback for tests, demos and benchmarks.

It imports nothing from the provider's client package: it is written from the API reference alone, so the
client is tested against an independent implementation.
"""

from __future__ import annotations

from .exports import Export
from .faults import Faults
from .requestlog import LoggedRequest
from .server import Emulator
from .shapes import Shape

__all__ = ["Emulator", "Export", "Faults", "LoggedRequest", "Shape"]
