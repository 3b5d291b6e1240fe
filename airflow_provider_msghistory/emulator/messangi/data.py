"""Messangi message-log records over five channels: a seeded dataset in the provisional ``/v3/mlog`` shape.

Every day holds, per channel, a record at 00:00:00.000 and one at 23:59:59.999, so consecutive windows
that overlap or leave a gap by one millisecond show up in a test.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import random
import uuid
from dataclasses import dataclass
from typing import Any

from ..settling import SETTLE_MAX_MS, DataClock, chain_to, settle_after_ms, step_at
from ..timeutil import DAY_MS, format_ms

CHANNELS = ("S", "E", "P", "W", "R")  # SMS, Email, Push, WhatsApp, RCS
# [provisional] each channel has its own statuses; the vendor lists none publicly.
STATUSES = {
    "S": ("SENT", "DELIVERED", "UNDELIVERED", "EXPIRED", "REJECTED"),
    "E": ("SENT", "DELIVERED", "OPENED", "BOUNCED"),
    "P": ("SENT", "DELIVERED", "OPENED", "FAILED"),
    "W": ("SENT", "DELIVERED", "READ", "FAILED"),
    "R": ("SENT", "DELIVERED", "READ", "FAILED"),
}
_DESCRIPTIONS = {
    "SENT": "Sent to the provider",
    "DELIVERED": "Delivered",
    "UNDELIVERED": "Not delivered: absent subscriber",
    "EXPIRED": "Validity period expired",
    "REJECTED": "Rejected by the carrier",
    "OPENED": "Opened by the recipient",
    "BOUNCED": "Bounced: mailbox unavailable",
    "READ": "Read by the recipient",
    "FAILED": "Failed: device not registered",
}
SENDERS = {
    "S": ("ACME", "+15005550006"),
    "E": ("news@acme.example", "alerts@acme.example"),
    "P": ("com.acme.app",),
    "W": ("+15005550010",),
    "R": ("acme_rbm_agent",),
}
CAMPAIGNS = ("cmp-1001", "cmp-1002", "cmp-1003")
# Final statuses reached through DELIVERED (the recipient opened or read it).
_READ_STATUSES = ("OPENED", "READ")


@dataclass(frozen=True, slots=True)
class MlogRecord:
    """One message-log record."""

    record_id: str
    channel: str
    direction: str
    sender: str
    recipient: str
    status: str
    campaign_id: str | None
    created_ms: int
    updated_ms: int
    settle_ms: int = 0  # after created_ms, when the final status is reached (emulator.settling)

    def as_of(self, now_ms: int) -> MlogRecord | None:
        """The record as the log shows it at ``now_ms`` (``None``: not created yet)."""
        chain = chain_to(self.status, read=_READ_STATUSES)
        step = step_at(chain, self.created_ms, self.settle_ms, now_ms)
        if step < 0:
            return None
        if step == len(chain) - 1:
            return self
        return dataclasses.replace(self, status=chain[step], updated_ms=self.created_ms)

    def to_json(self) -> dict[str, Any]:
        """The ``/v3/mlog`` record [provisional field names]."""
        return {
            "id": self.record_id,
            "channel": self.channel,
            "direction": self.direction,
            "sender": self.sender,
            "recipient": self.recipient,
            "status": self.status,
            "statusDescription": _DESCRIPTIONS[self.status],
            "campaignId": self.campaign_id,
            "createdAt": format_ms(self.created_ms),
            "updatedAt": format_ms(self.updated_ms),
        }


class MlogDataset:
    """The space's message log, oldest first.

    :param messages: number of records (the boundary records count towards it).
    :param seed: seed of every random choice.
    :param start_ms: epoch milliseconds of the first day's midnight (UTC).
    :param days: number of days covered.
    :param clock: the instant the data is read at (statuses settle against it; default the wall clock).
    """

    def __init__(
        self, messages: int, seed: int, start_ms: int, days: int, clock: DataClock | None = None
    ) -> None:
        if messages < 0 or days < 1:
            raise ValueError("messages must be >= 0 and days >= 1, e.g. messages=2000, days=120")
        rng = random.Random(f"messangi-emulator:{seed}")
        instants = []
        for day in range(days):
            midnight = start_ms + day * DAY_MS
            for channel in CHANNELS:
                instants += [(midnight, channel), (midnight + DAY_MS - 1, channel)]
        instants = instants[:messages]
        instants += [
            (start_ms + rng.randrange(days * DAY_MS), rng.choice(CHANNELS))
            for _ in range(messages - len(instants))
        ]
        records = [self._record(rng, created, channel) for created, channel in instants]
        records.sort(key=lambda r: (r.created_ms, r.record_id))
        records = [dataclasses.replace(r, settle_ms=settle_after_ms(seed, r.record_id)) for r in records]
        self.clock = clock or DataClock()
        self._settled_from = (records[-1].created_ms if records else 0) + SETTLE_MAX_MS
        self.records: list[MlogRecord] = records
        self._by_channel = {ch: [r for r in records if r.channel == ch] for ch in CHANNELS}
        self._created: dict[str | None, list[int]] = {
            ch: [r.created_ms for r in rs] for ch, rs in self._by_channel.items()
        }
        self._created[None] = [r.created_ms for r in records]
        # Paging reads the same selection page after page: keep the last few (statuses are applied after).
        self._range = functools.lru_cache(maxsize=32)(self._in_range)

    @staticmethod
    def _record(rng: random.Random, created: int, channel: str) -> MlogRecord:
        if channel == "E":
            recipient = f"user{rng.randrange(10_000)}@example.com"
        elif channel == "P":
            recipient = f"device-{rng.getrandbits(48):012x}"
        else:
            recipient = f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}"
        return MlogRecord(
            record_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            channel=channel,
            direction="INBOUND" if rng.random() < 0.1 else "OUTBOUND",
            sender=rng.choice(SENDERS[channel]),
            recipient=recipient,
            status=rng.choice(STATUSES[channel]),
            campaign_id=rng.choice(CAMPAIGNS) if rng.random() < 0.3 else None,
            created_ms=created,
            updated_ms=created + rng.randrange(0, 600_000),
        )

    def select(
        self,
        start_ms: int,
        end_ms: int,
        channel: str | None = None,
        statuses: tuple[str, ...] | None = None,
        recipient: str | None = None,
        campaign_id: str | None = None,
        sender: str | None = None,
    ) -> list[MlogRecord]:
        """Records created in ``[start_ms, end_ms)`` matching every given filter, oldest first, as the
        clock's now shows them."""
        pool = self._range(start_ms, end_ms, channel)
        now = self.clock.now_ms()
        if now < self._settled_from:
            shown = (r if now >= r.created_ms + r.settle_ms else r.as_of(now) for r in pool)
            pool = [r for r in shown if r is not None]
        if statuses is None and recipient is None and campaign_id is None and sender is None:
            return pool
        return [
            r
            for r in pool
            if (statuses is None or r.status in statuses)
            and (recipient is None or r.recipient == recipient)
            and (campaign_id is None or r.campaign_id == campaign_id)
            and (sender is None or r.sender == sender)
        ]

    def _in_range(self, start_ms: int, end_ms: int, channel: str | None) -> list[MlogRecord]:
        created = self._created[channel]
        lo, hi = bisect.bisect_left(created, start_ms), bisect.bisect_left(created, end_ms)
        return (self.records if channel is None else self._by_channel[channel])[lo:hi]
