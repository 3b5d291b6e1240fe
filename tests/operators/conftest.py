"""Fixtures of the operators tests."""

from triggers.helpers import use_emulator

__all__ = ["use_emulator"]
