"""Delivery statuses that settle over time, read against the emulator's data clock.

A message is SENT at its send time and reaches its generated (final) status through the chain of its
channel, e.g. SENT -> DELIVERED -> READ; the last event falls between one minute and three days after the
send time (log-uniform, from a hash of the seed and the message id: deterministic, no random draw, so the
generated data is the same as without a history), and the events in between are spread evenly. Every
export and list call reads the data as of the clock's now: a message not yet sent is not there, one not
yet settled shows the status it had then.

The clock is the wall clock unless set (``Emulator.set_clock``, the ``clock=`` option): with the default
datasets in the past, every message shows its final status, as before.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import datetime

from .timeutil import to_epoch_ms

SETTLE_MIN_MS = 60_000
SETTLE_MAX_MS = 3 * 86_400_000


class DataClock:
    """The instant the emulated vendor's data is read at.

    :param at: a fixed instant (aware datetime or OffsetDateTime string), or ``None`` for the wall clock.
    """

    def __init__(self, at: datetime | str | None = None) -> None:
        self._fixed_ms: int | None = None
        self.set(at)

    def set(self, at: datetime | str | None) -> None:
        """Move the clock to ``at`` (``None``: follow the wall clock again)."""
        self._fixed_ms = None if at is None else to_epoch_ms(at)

    def now_ms(self) -> int:
        return self._fixed_ms if self._fixed_ms is not None else int(time.time() * 1000)


def settle_after_ms(seed: int, message_id: str) -> int:
    """How long after its send time a message reaches its final status (1 min .. 3 days)."""
    digest = hashlib.blake2b(f"{seed}:{message_id}".encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return int(SETTLE_MIN_MS * (SETTLE_MAX_MS / SETTLE_MIN_MS) ** fraction)


def step_at(chain: Sequence[object], send_ms: int, settle_ms: int, now_ms: int) -> int:
    """Index in ``chain`` of the status a message shows at ``now_ms`` (``-1``: not sent yet)."""
    if now_ms < send_ms:
        return -1
    last = len(chain) - 1
    if last <= 0 or now_ms >= send_ms + settle_ms:
        return last
    return min(last, (now_ms - send_ms) * last // settle_ms)


def chain_to(
    final: str, sent: str = "SENT", delivered: str = "DELIVERED", read: Sequence[str] = ()
) -> tuple[str, ...]:
    """The statuses a message passes through to ``final``: sent first, delivered before a read status."""
    if final == sent:
        return (sent,)
    if final in read:
        return (sent, delivered, final)
    return (sent, final)
