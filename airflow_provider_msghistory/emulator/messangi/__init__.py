"""Messangi Reporting API v3 (provisional wire): ``data`` (the message log), ``space`` (login keys, logins
and report requests, without HTTP), ``app`` (routes and handlers), ``emulator``
(:class:`~.emulator.MessangiEmulator`: knobs and test helpers), ``cli`` (its flags)."""

from ..spec import VendorSpec

# No published rate limit; reports are e-mailed, nothing is downloaded.
VENDOR = VendorSpec(
    name="messangi", title="Messangi", package=__name__, emulator="emulator:MessangiEmulator",
    port=8768, conn_id="msghistory_messangi", storage_note="none (reports are e-mailed)",
)  # fmt: skip
