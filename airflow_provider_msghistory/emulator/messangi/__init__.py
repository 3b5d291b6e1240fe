"""Messangi Reporting API v3 (provisional wire): ``data`` (the message log), ``app`` (routes and handlers,
with the login keys and report requests they keep), ``emulator`` (:class:`~.emulator.MessangiEmulator`:
knobs and test helpers)."""
