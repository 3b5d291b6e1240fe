"""Qlara's export files, streamed in chunks: never the whole file in memory.

``RowsContent`` renders dataset records on the fly. ``SyntheticCsv`` serves a message-history CSV of an
exact byte size (1 GiB, 4 GiB, ...) for benchmarks: one block of rows is rendered once with a placeholder
in every message id, and each block of the stream is ``block_number.join(segments)``, a C-speed copy that
still makes every row unique and the bytes deterministic.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..timeutil import format_ms
from .dataset import CHANNELS, SENDERS, STATUS_WEIGHTS, STATUSES, Contact, Message

HISTORY_COLUMNS = (
    "messageId",
    "channel",
    "destination",
    "sender",
    "deliveryStatus",
    "deliveryStatusDescription",
    "sendDate",
    "deliveryDate",
    "customerMessageId",
    "campaignId",
)
DELIVERY_REPORT_COLUMNS = (
    "messageId",
    "campaignId",
    "channel",
    "destination",
    "sender",
    "deliveryStatus",
    "deliveryStatusDescription",
    "sendDate",
    "deliveryDate",
)
CONTACT_COLUMNS = ("contactId", "listIds", "phone", "firstName", "lastName", "email")
_ROWS_PER_CHUNK = 2000


def _opt_ms(value: int | None) -> str:
    return format_ms(value) if value is not None else ""


def history_row(m: Message) -> tuple[Any, ...]:
    return (
        m.message_id, m.channel, m.destination, m.sender, m.status, m.status_description,
        format_ms(m.send_ms), _opt_ms(m.delivery_ms), m.customer_message_id or "",
        "" if m.campaign_id is None else m.campaign_id,
    )  # fmt: skip


def delivery_report_row(m: Message) -> tuple[Any, ...]:
    return (
        m.message_id, "" if m.campaign_id is None else m.campaign_id, m.channel, m.destination, m.sender,
        m.status, m.status_description, format_ms(m.send_ms), _opt_ms(m.delivery_ms),
    )  # fmt: skip


def contact_row(c: Contact) -> tuple[Any, ...]:
    return (c.contact_id, ";".join(map(str, c.list_ids)), c.phone, c.first_name, c.last_name, c.email)


class RowsContent:
    """A CSV rendered chunk by chunk from records; size and SHA-256 computed by streaming, then cached.

    :param columns: header row.
    :param records: the rows' source records.
    :param to_row: record -> tuple of cell values.
    """

    def __init__(
        self, columns: Sequence[str], records: Sequence[Any], to_row: Callable[[Any], tuple[Any, ...]]
    ) -> None:
        self._header = (",".join(columns) + "\n").encode()
        self._records = records
        self._to_row = to_row
        self._size: int | None = None

    def chunks(self) -> Iterator[bytes]:
        yield self._header
        for i in range(0, len(self._records), _ROWS_PER_CHUNK):
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(
                self._to_row(r) for r in self._records[i : i + _ROWS_PER_CHUNK]
            )
            yield buf.getvalue().encode()

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = sum(len(chunk) for chunk in self.chunks())
        return self._size

    def iter_from(self, offset: int) -> Iterator[bytes]:
        return _skip(self.chunks(), offset)


def _skip(chunks: Iterator[bytes], offset: int) -> Iterator[bytes]:
    for chunk in chunks:
        if offset >= len(chunk):
            offset -= len(chunk)
            continue
        yield chunk[offset:] if offset else chunk
        offset = 0


_PLACEHOLDER = b"\x00"
MIN_SYNTHETIC_SIZE = 4096
_SYNTHETIC_DESCRIPTIONS = {
    "DELIVERED": "Message delivered to handset",
    "SENT": "Message sent to carrier",
    "RECEIVED": "Message read by recipient",
    "ERROR": "Delivery failed: unknown subscriber",
    "EXPIRED": "Validity period expired before delivery",
    "UNKNOWN": "Delivery status not reported by carrier",
}


class SyntheticCsv:
    """Exactly ``size`` bytes of message-history CSV, generated on the fly.

    :param size: total size in bytes, header included.
    :param seed: makes the bytes deterministic.
    :param start_ms: first send time of the rows.
    :param span_ms: the rows' send times spread over ``[start_ms, start_ms + span_ms)``.
    :param rows_per_block: rows rendered once and repeated with a new block number.
    """

    def __init__(self, size: int, seed: int, start_ms: int, span_ms: int, rows_per_block: int = 8192) -> None:
        self._header = (",".join(HISTORY_COLUMNS) + "\n").encode()
        if size < MIN_SYNTHETIC_SIZE:
            raise ValueError(f"size must be at least {MIN_SYNTHETIC_SIZE} bytes, e.g. 1073741824 (1 GiB)")
        self._size = size
        rng = random.Random(f"qlara-synthetic:{seed}")
        step = max(1, span_ms // rows_per_block)
        rows = []
        for j in range(rows_per_block):
            channel = CHANNELS[j % 3]
            status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
            send = start_ms + j * step
            delivery = format_ms(send + rng.randrange(500, 600_000)) if status != "SENT" else ""
            rows.append(
                f"syn\x00-{j:06d},{channel},+393{rng.randrange(10**8, 10**9)},{rng.choice(SENDERS[channel])},"
                f"{status},{_SYNTHETIC_DESCRIPTIONS[status]},{format_ms(send)},{delivery},cust-syn-{j:06d},\n"
            )
        template = "".join(rows).encode()
        self._segments = template.split(_PLACEHOLDER)
        self._block_size = len(template) + (len(self._segments) - 1) * 9  # 1 placeholder byte -> 10 digits
        self._tail: bytes | None = None
        self._tail_lock = threading.Lock()
        self._sha256: str | None = None
        body = size - len(self._header)
        self._full_blocks = max(0, body // self._block_size - 1)  # the last block goes into the tail
        self._tail_start = len(self._header) + self._full_blocks * self._block_size

    @property
    def size(self) -> int:
        return self._size

    def block(self, number: int) -> bytes:
        return (b"%010d" % number).join(self._segments)

    def _tail_bytes(self) -> bytes:
        """The last 1-2 blocks' worth of rows, the final row padded so the file is exactly ``size``."""
        with self._tail_lock:
            if self._tail is None:
                need = self._size - self._tail_start
                rows = (self.block(self._full_blocks) + self.block(self._full_blocks + 1)).splitlines(True)
                taken, used = [], 0
                for row in rows:
                    if used + len(row) > need:
                        break
                    taken.append(row)
                    used += len(row)
                pad = need - used
                cells = taken[-1].split(b",")  # MIN_SYNTHETIC_SIZE guarantees a row fits
                cells[5] += b" " * pad  # deliveryStatusDescription has room for trailing blanks
                taken[-1] = b",".join(cells)
                self._tail = b"".join(taken)
            return self._tail

    def iter_from(self, offset: int) -> Iterator[bytes]:
        if offset < len(self._header):
            yield self._header[offset:]
            offset = len(self._header)
        number, skip = divmod(offset - len(self._header), self._block_size)
        while number < self._full_blocks:
            block = self.block(number)
            yield memoryview(block)[skip:] if skip else block
            number, skip = number + 1, 0
        tail = self._tail_bytes()
        start = offset - self._tail_start
        yield tail[max(0, start) :]

    def sha256(self) -> str:
        """SHA-256 of the whole file, computed by streaming once and cached."""
        if self._sha256 is None:
            digest = hashlib.sha256()
            for chunk in self.iter_from(0):
                digest.update(chunk)
            self._sha256 = digest.hexdigest()
        return self._sha256
