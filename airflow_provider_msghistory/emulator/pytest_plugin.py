"""Pytest plugin for the emulator (filled in by the emulator work)."""
