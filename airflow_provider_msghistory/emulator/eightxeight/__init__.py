"""8x8 CPaaS log exports: ``data`` (the SMS / Chat Apps log rows and the CSV files), ``jobs`` (export jobs,
their parts and lifecycle, without HTTP), ``app`` (routes and handlers), ``emulator``
(:class:`~.emulator.EightByEightEmulator`: knobs and test helpers)."""
