"""Messangi Reporting API v3 (provisional wire): ``data`` (the message log), ``space`` (login keys, logins
and report requests, without HTTP), ``app`` (routes and handlers), ``emulator``
(:class:`~.emulator.MessangiEmulator`: knobs and test helpers)."""
