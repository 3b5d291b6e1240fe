"""Deterministic synthetic account data: sent messages, contacts in lists, campaigns.

Everything derives from ``seed`` so two emulators with the same options serve identical data. Besides the
random traffic, every day of the range holds one message per channel at exactly 00:00:00.000 and one at
23:59:59.999, so a gap or a duplicate between consecutive daily windows shows up in a test.
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

CHANNELS = ("SMS", "RCS", "WHATSAPP")
STATUSES = ("DELIVERED", "SENT", "RECEIVED", "ERROR", "EXPIRED", "UNKNOWN")
STATUS_WEIGHTS = (70, 8, 8, 7, 4, 3)
STATUS_DESCRIPTIONS = {
    "DELIVERED": ("Message delivered to handset",),
    "SENT": ("Message sent to carrier, awaiting delivery receipt",),
    "RECEIVED": ("Message read by recipient",),
    "ERROR": (
        "Delivery failed: unknown subscriber",
        "Delivery failed: absent subscriber",
        "Rejected by carrier",
    ),
    "EXPIRED": ("Validity period expired before delivery",),
    "UNKNOWN": ("Delivery status not reported by carrier",),
}
# A final status reached through DELIVERED (the recipient read it), as the settling history shows it.
_READ_STATUSES = ("RECEIVED",)
# Statuses whose final event has a timestamp (a delivery, a read, a failure or an expiry receipt).
_HAS_DELIVERY_DATE = frozenset({"DELIVERED", "RECEIVED", "ERROR", "EXPIRED"})
SENDERS = {
    "SMS": ("QlaraShop", "AcmeBank", "INFO", "+393331234567"),
    "RCS": ("qlara_shop_agent", "acme_bank_agent"),
    "WHATSAPP": ("+390212345678", "+390298765432"),
}
ORIGIN_API = "API"
ORIGIN_CONSOLE = "CONSOLE"
_FIRST_NAMES = ("Giulia", "Marco", "Sofia", "Luca", "Chiara", "Matteo", "Anna", "Paolo", "Elena", "Davide")
_LAST_NAMES = ("Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno", "Gallo", "Conti")
LIST_NAMES = {1: "Customers", 2: "Newsletter", 3: "VIP", 4: "Prospects", 5: "Staff"}


@dataclass(slots=True)
class Message:
    """One sent message (compact: 100k of them stay small)."""

    message_id: str
    customer_message_id: str | None
    channel: str
    destination: str
    sender: str
    status: str
    status_description: str
    send_ms: int
    delivery_ms: int | None
    origin: str
    campaign_id: int | None
    settle_ms: int = 0  # after send_ms, when the final status is reached (emulator.settling)

    def as_of(self, now_ms: int) -> Message | None:
        """The message as the vendor shows it at ``now_ms`` (``None``: not sent yet)."""
        chain = chain_to(self.status, read=_READ_STATUSES)
        step = step_at(chain, self.send_ms, self.settle_ms, now_ms)
        if step < 0:
            return None
        if step == len(chain) - 1:
            return self
        status = chain[step]
        return dataclasses.replace(
            self,
            status=status,
            status_description=STATUS_DESCRIPTIONS[status][0],
            delivery_ms=None if status == "SENT" else self.delivery_ms,
        )

    def to_json(self) -> dict[str, Any]:
        """The history list (B) representation: a DeliveryStatusResponse."""
        return {
            "messageId": self.message_id,
            "customerMessageId": self.customer_message_id,
            "channel": self.channel,
            "destination": self.destination,
            "sender": self.sender,
            "deliveryStatus": self.status,
            "deliveryStatusDescription": self.status_description,
            "sendDate": format_ms(self.send_ms),
            "deliveryDate": format_ms(self.delivery_ms) if self.delivery_ms is not None else None,
            "origin": self.origin,
            "campaignId": self.campaign_id,
        }


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact of the address book, member of zero or more lists."""

    contact_id: int
    list_ids: tuple[int, ...]
    phone: str
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign; its messages are what a delivery-reports export by ``campaignId`` returns."""

    campaign_id: int
    name: str


class Dataset:
    """The synthetic account: messages sorted by send time, contacts, lists and campaigns.

    :param messages: number of messages (the boundary messages count towards it).
    :param seed: seed of every random choice.
    :param start_ms: epoch milliseconds of the first day's midnight (UTC).
    :param days: number of days covered.
    :param clock: the instant the data is read at (statuses settle against it; default the wall clock).
    """

    def __init__(
        self, messages: int, seed: int, start_ms: int, days: int, clock: DataClock | None = None
    ) -> None:
        if messages < 0 or days < 1:
            raise ValueError("messages must be >= 0 and days >= 1, e.g. messages=2000, days=31")
        self.seed = seed
        self.start_ms = start_ms
        self.end_ms = start_ms + days * DAY_MS - 1
        rng = random.Random(f"qlara-emulator:{seed}")
        self.campaigns = [Campaign(1001 + i, f"Campaign {i + 1}") for i in range(8)]
        self.lists = dict(LIST_NAMES)
        self.contacts = self._make_contacts(rng, max(20, messages // 20))
        self.messages = self._make_messages(rng, messages, days)
        for message in self.messages:
            message.settle_ms = settle_after_ms(seed, message.message_id)
        self.clock = clock or DataClock()
        self._send_ms = [m.send_ms for m in self.messages]
        self._by_channel = {ch: [m for m in self.messages if m.channel == ch] for ch in CHANNELS}
        self._channel_send_ms = {ch: [m.send_ms for m in msgs] for ch, msgs in self._by_channel.items()}
        # Paging reads the same selection page after page: keep the last few (statuses are applied after).
        self._channel_list = functools.lru_cache(maxsize=32)(self._channel_list)  # type: ignore[method-assign]

    @staticmethod
    def _make_contacts(rng: random.Random, count: int) -> list[Contact]:
        contacts = []
        for i in range(1, count + 1):
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            lists = tuple(sorted(rng.sample(sorted(LIST_NAMES), rng.choice((0, 1, 1, 1, 2, 2, 3)))))
            phone = f"+393{rng.randrange(10**8, 10**9)}"
            contacts.append(Contact(i, lists, phone, first, last, f"{first}.{last}{i}@example.com".lower()))
        return contacts

    def _make_messages(self, rng: random.Random, count: int, days: int) -> list[Message]:
        instants = []
        for day in range(days):
            midnight = self.start_ms + day * DAY_MS
            for channel in CHANNELS:
                instants += [(midnight, channel), (midnight + DAY_MS - 1, channel)]
        boundary = instants[:count]
        span = days * DAY_MS
        boundary += [
            (self.start_ms + rng.randrange(span), rng.choice(CHANNELS)) for _ in range(count - len(boundary))
        ]
        phones = [c.phone for c in self.contacts]
        messages = []
        for index, (send_ms, channel) in enumerate(boundary):
            is_boundary = index < len(instants)
            origin = ORIGIN_API if is_boundary or rng.random() < 0.75 else ORIGIN_CONSOLE
            status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
            campaign_odds = 0.6 if origin == ORIGIN_CONSOLE else 0.1
            campaign = (
                rng.choice(self.campaigns).campaign_id
                if not is_boundary and rng.random() < campaign_odds
                else None
            )
            destination = rng.choice(phones) if rng.random() < 0.5 else f"+393{rng.randrange(10**8, 10**9)}"
            delivery = send_ms + rng.randrange(500, 600_000) if status in _HAS_DELIVERY_DATE else None
            message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            messages.append(
                Message(
                    message_id=message_id,
                    customer_message_id=f"cust-{index:07d}" if origin == ORIGIN_API else None,
                    channel=channel,
                    destination=destination,
                    sender=rng.choice(SENDERS[channel]),
                    status=status,
                    status_description=rng.choice(STATUS_DESCRIPTIONS[status]),
                    send_ms=send_ms,
                    delivery_ms=delivery,
                    origin=origin,
                    campaign_id=campaign,
                )
            )
        messages.sort(key=lambda m: (m.send_ms, m.message_id))
        return messages

    def in_range(self, start_ms: int, end_ms: int) -> list[Message]:
        """Messages sent within ``[start_ms, end_ms]`` (both inclusive), oldest first."""
        lo = bisect.bisect_left(self._send_ms, start_ms)
        hi = bisect.bisect_right(self._send_ms, end_ms)
        return self.messages[lo:hi]

    def channel_range(self, channel: str, start_ms: int, end_ms: int) -> list[Message]:
        """Messages of ``channel`` sent within ``[start_ms, end_ms]``, oldest first."""
        send_ms = self._channel_send_ms[channel]
        lo = bisect.bisect_left(send_ms, start_ms)
        hi = bisect.bisect_right(send_ms, end_ms)
        return self._by_channel[channel][lo:hi]

    def as_of_now(self, messages: list[Message]) -> list[Message]:
        """``messages`` as the clock's now shows them: statuses of then, none sent later."""
        now = self.clock.now_ms()
        if now >= self.end_ms + SETTLE_MAX_MS:
            return messages  # everything settled (the wall clock with a dataset in the past)
        shown = (m if now >= m.send_ms + m.settle_ms else m.as_of(now) for m in messages)
        return [m for m in shown if m is not None]

    def history_list(self, channel: str, start_ms: int, end_ms: int, status: str | None) -> list[Message]:
        """What the history list (B) pages through: ``channel``'s messages in the inclusive range, now."""
        matches = self.as_of_now(self._channel_list(channel, start_ms, end_ms))
        return matches if status is None else [m for m in matches if m.status == status]

    def _channel_list(self, channel: str, start_ms: int, end_ms: int) -> list[Message]:
        return self.channel_range(channel, start_ms, end_ms) if start_ms <= end_ms else []

    def history_export(
        self, start_ms: int, end_ms: int, sender: str | None = None, recipient: str | None = None
    ) -> list[Message]:
        """What a message-history export (A) contains: API-originated messages in the inclusive range."""
        return [
            m
            for m in self.as_of_now(self.in_range(start_ms, end_ms))
            if m.origin == ORIGIN_API
            and (sender is None or m.sender == sender)
            and (recipient is None or _same_number(m.destination, recipient))
        ]

    def delivery_reports(
        self, campaign_id: str | None, start_ms: int | None, end_ms: int | None
    ) -> list[Message]:
        """What a delivery-reports export (D) contains: a campaign's messages, or all in a send range."""
        if start_ms is not None and end_ms is not None:
            pool = self.in_range(start_ms, end_ms)
        else:
            pool = self.messages
        if campaign_id is not None:
            pool = [m for m in pool if str(m.campaign_id) == campaign_id]
        return self.as_of_now(pool)

    def contacts_export(self, list_ids: set[int] | None, contact_ids: set[int] | None) -> list[Contact]:
        """What a contacts export (C) contains: members of any of ``list_ids``, or the given contacts."""
        return [
            c
            for c in self.contacts
            if (list_ids is None or list_ids.intersection(c.list_ids))
            and (contact_ids is None or c.contact_id in contact_ids)
        ]


def _same_number(destination: str, wanted: str) -> bool:
    """Recipient filter: E.164 with or without the leading ``+`` (``00`` prefix too)."""
    wanted = wanted.strip()
    if wanted.startswith("00"):
        wanted = "+" + wanted[2:]
    return destination == wanted or destination == "+" + wanted
