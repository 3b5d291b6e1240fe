"""Pytest fixtures for the emulator (registered through the ``pytest11`` entry point, as moto does)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .factory import create_emulator
from .server import Emulator

# Fast job turnaround and no rate limit unless a test asks; Messangi has no job to wait for.
FAST_DEFAULTS: dict[str, dict[str, Any]] = {
    "qlara": {"export_delay": 0.2, "rate_limit": None},
    "8x8": {"export_delay": 0.2, "rate_limit": None},
    "messangi": {"rate_limit": None},
}


@pytest.fixture
def msghistory_emulator() -> Iterator[Emulator]:
    """A fresh Qlara emulator per test: free ports, exports complete after 0.2 s, no rate limit."""
    with create_emulator(**FAST_DEFAULTS["qlara"]) as emulator:
        yield emulator


@pytest.fixture
def msghistory_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """``factory(vendor="qlara", **options)`` starts an emulator of that vendor with its options (fast
    defaults underneath); all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(vendor: str = "qlara", **options: Any) -> Emulator:
        defaults = FAST_DEFAULTS.get(vendor.lower(), {})
        emulator = create_emulator(vendor, **{**defaults, **options}).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in reversed(started):
        emulator.stop()
