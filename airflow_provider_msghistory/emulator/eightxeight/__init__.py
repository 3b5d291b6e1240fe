"""8x8 CPaaS log exports: ``data`` (the SMS / Chat Apps log rows and the CSV files), ``jobs`` (export jobs,
their parts and lifecycle, without HTTP), ``app`` (routes and handlers), ``emulator``
(:class:`~.emulator.EightByEightEmulator`: knobs and test helpers), ``cli`` (its flags)."""

from ..spec import VendorSpec

# The documented ceiling: 1,800 requests a second per sub-account.
VENDOR = VendorSpec(
    name="8x8", title="8x8", package=__name__, emulator="emulator:EightByEightEmulator",
    port=8767, conn_id="msghistory_8x8", rate_limit=(1800 * 60, 1800),
    test_defaults={"export_delay": 0.2, "rate_limit": None},  # fast jobs in tests
)  # fmt: skip
