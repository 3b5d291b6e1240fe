"""Qlara Partner Gateway: ``dataset`` (the account's messages, contacts, campaigns), ``exports`` (jobs and
their lifecycle), ``links`` (pre-signed downloads), ``content`` (the CSV files), ``shapes`` (response
variants), ``app`` (routes and handlers of both servers), ``emulator``
(:class:`~.emulator.QlaraEmulator`: knobs and test helpers)."""
