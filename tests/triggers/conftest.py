"""Fixtures of the triggers tests."""

from triggers.helpers import use_emulator

__all__ = ["use_emulator"]
