"""Qlara Partner Gateway: ``dataset`` (the account's messages, contacts, campaigns), ``exports`` (jobs and
their lifecycle), ``links`` (pre-signed downloads), ``content`` (the CSV files), ``shapes`` (response
variants), ``app`` (routes and handlers of both servers), ``emulator``
(:class:`~.emulator.QlaraEmulator`: knobs and test helpers), ``cli`` (its flags)."""

from ..spec import VendorSpec

# The documented ceiling: 1,000 requests a minute with bursts of 50 a second per key.
VENDOR = VendorSpec(
    name="qlara", title="Qlara", package=__name__, emulator="emulator:QlaraEmulator",
    port=8765, conn_id="msghistory_default", rate_limit=(1000, 50),
    test_defaults={"export_delay": 0.2, "rate_limit": None},  # fast jobs in tests
)  # fmt: skip
