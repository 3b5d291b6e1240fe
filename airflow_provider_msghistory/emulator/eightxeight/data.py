"""8x8 SMS and Chat Apps logs: a seeded dataset in the documented columns, and the CSV files a job serves.

``createdat`` (Chat Apps: ``createdAt``) is written ``2025-01-02T00:00:00.000Z`` (UTC, milliseconds). Every
day holds messages at 00:00:00.000, 00:00:00.500, 23:59:59.000 and 23:59:59.999, so a window that is off by a
second or by one millisecond, or a seconds-precision ``to`` read the wrong way, shows up in a test. Bodies
carry commas, quotes, CRLF and LF line breaks and non-ASCII text inside RFC 4180 quoted fields.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import gzip
import io
import random
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..settling import SETTLE_MAX_MS, DataClock, chain_to, settle_after_ms, step_at
from ..timeutil import DAY_MS, format_ms

SMS_COLUMNS = (
    "umid", "subaccountid", "direction", "country", "operator", "mcc", "mnc", "status_value",
    "status_details", "status_errorcode", "status_errormessage", "status_timestamp", "msisdn", "source",
    "encoding", "createdat", "smscount", "price_currency", "price_persms", "price_total", "clientmessageid",
    "clientbatchid", "batchid", "body",
)  # fmt: skip
# [doc, portal export only] the Chat Apps columns.
CHAT_APPS_COLUMNS = (
    "umid", "subAccountId", "direction", "channelType", "channelId", "country", "status_value",
    "status_details", "status_errorCode", "status_errorMessage", "status_timestamp", "user_msisdn",
    "user_channelUserId", "contentType", "createdAt", "clientMessageId", "clientBatchId", "batchId", "step",
    "content", "ReadAt",
)  # fmt: skip
PRODUCTS = ("sms", "chatapps")
# How timestamps are written (not published): ISO Zulu with ms, or "2025-01-02 00:00:00.000" (UTC, no zone).
TIMESTAMP_STYLES = ("iso", "space")
_TIMESTAMP_COLUMNS = frozenset({"status_timestamp", "createdat", "createdAt", "ReadAt"})
_NETWORKS = (  # country, operator, mcc, mnc, dialling prefix
    ("SG", "Singtel", "525", "01", "+65"),
    ("SG", "StarHub", "525", "05", "+65"),
    ("US", "T-Mobile", "310", "260", "+1"),
    ("ID", "Telkomsel", "510", "10", "+62"),
    ("GB", "Vodafone", "234", "15", "+44"),
    ("PH", "Globe", "515", "02", "+63"),
)
_STATUSES = (  # status_value, status_details, errorcode, errormessage, weight
    ("delivered", "Delivered to handset", "0", "", 75),
    ("sent", "Sent to carrier", "", "", 10),
    ("undelivered", "Undeliverable", "3", "Subscriber absent", 8),
    ("rejected", "Rejected by operator", "5", 'Invalid destination, "blocked" range', 7),
)
_BODIES = (
    "Your code is {n}. It expires in 5 minutes.",
    "Hi {name}, your order #{n} has shipped, track it at https://acme.example/t/{n}",
    'He said "see you at 5", then left.',
    "Line one\nLine two\nLine three",
    'Reminder:\r\nAppointment on Monday, 10:00\r\n"Bring ID", please',
    "Ünïcødé ✓ 你好, {name}",
    '"',
    ",,,",
    "",
    "Trailing newline\n",
)
_CHAT_DETAILS = {
    "sent": "Sent to the channel",
    "delivered": "Delivered to the device",
    "read": "Read by the user",
    "undelivered": 'Not delivered, "user not reachable"',
}
_NAMES = ("Wei", "Siti", "Ana", "John", "Priya", "Budi", "Mei", "Tom")
_SOURCES = ("ACME", "AcmeBank", "+6598765432", "InfoSMS")


@dataclass(frozen=True, slots=True)
class LogRow:
    """One log row: its cells in the product's column order plus what the filters need."""

    created_ms: int
    msisdn: str
    country: str
    channel_user_id: str | None
    cells: tuple[str, ...]
    settle_ms: int = 0  # after created_ms, when the message reaches its final status (emulator.settling)
    steps: int = 1  # Chat Apps: the message's status rows (this one is ``cells[step]`` of them)


class LogDataset:
    """The sub-account's SMS or Chat Apps logs, oldest first.

    :param product: ``sms`` (one row per message) or ``chatapps`` (one row per status step: the same
        ``umid`` on up to three rows sharing ``createdAt``).
    :param sub_account_id: written in the sub-account column.
    :param messages: number of messages (the boundary ones count towards it).
    :param seed: seed of every random choice.
    :param start_ms: epoch milliseconds of the first day's midnight (UTC).
    :param days: number of days covered.
    :param timestamp_style: ``iso`` (``2025-01-02T00:00:00.000Z``) or ``space`` (``2025-01-02 00:00:00.000``).
    :param clock: the instant the data is read at (statuses settle against it; default the wall clock).
    """

    def __init__(
        self,
        product: str,
        sub_account_id: str,
        messages: int,
        seed: int,
        start_ms: int,
        days: int,
        timestamp_style: str = "iso",
        clock: DataClock | None = None,
    ) -> None:
        if product not in PRODUCTS:
            raise ValueError(f"product must be one of {PRODUCTS}, e.g. product='chatapps'")
        if timestamp_style not in TIMESTAMP_STYLES:
            raise ValueError(f"timestamp_style must be one of {TIMESTAMP_STYLES}, e.g. 'space'")
        if messages < 0 or days < 1:
            raise ValueError("messages must be >= 0 and days >= 1, e.g. messages=2000, days=31")
        self.product = product
        self.columns = SMS_COLUMNS if product == "sms" else CHAT_APPS_COLUMNS
        self.created_column = self.columns.index("createdat" if product == "sms" else "createdAt")
        rng = random.Random(f"8x8-emulator:{product}:{seed}")
        instants = []
        for day in range(days):
            midnight = start_ms + day * DAY_MS
            instants += [midnight, midnight + 500, midnight + DAY_MS - 1000, midnight + DAY_MS - 1]
        instants = instants[:messages]
        instants += [start_ms + rng.randrange(days * DAY_MS) for _ in range(messages - len(instants))]
        build = sms_row if product == "sms" else chat_rows
        rows = [row for i, created in enumerate(instants) for row in build(rng, sub_account_id, created, i)]
        rows.sort(key=lambda r: (r.created_ms, r.cells[0], r.cells[-3]))
        if timestamp_style == "space":
            stamps = [i for i, name in enumerate(self.columns) if name in _TIMESTAMP_COLUMNS]
            rows = [_restyle(row, stamps) for row in rows]
        steps: dict[str, int] = {}
        for row in rows:
            steps[row.cells[0]] = steps.get(row.cells[0], 0) + 1
        self.rows: list[LogRow] = [
            dataclasses.replace(row, settle_ms=settle_after_ms(seed, row.cells[0]), steps=steps[row.cells[0]])
            for row in rows
        ]
        self._created = [r.created_ms for r in rows]
        self._last_created = rows[-1].created_ms if rows else 0
        self._status = self.columns.index("status_value")
        self._step = self.columns.index("step") if "step" in self.columns else None
        self.clock = clock or DataClock()

    def as_dict(self, row: LogRow) -> dict[str, str]:
        return dict(zip(self.columns, row.cells, strict=True))

    def select(
        self,
        start_ms: int,
        end_ms: int,
        phone_number: str | None = None,
        countries: Sequence[str] | None = None,
        limit: int = 0,
        channel_user_id: str | None = None,
    ) -> list[LogRow]:
        """Rows created in ``[start_ms, end_ms)`` matching the filters, oldest first, at most ``limit``."""
        lo = bisect.bisect_left(self._created, start_ms)
        hi = bisect.bisect_left(self._created, end_ms)
        wanted = {c.upper() for c in countries} if countries else None
        rows = [
            r
            for r in self.as_of_now(self.rows[lo:hi])
            if (phone_number is None or r.msisdn == phone_number)
            and (wanted is None or r.country in wanted)
            and (channel_user_id is None or r.channel_user_id == channel_user_id)
        ]
        return rows[:limit] if limit else rows


    def as_of_now(self, rows: list[LogRow]) -> list[LogRow]:
        """``rows`` as the clock's now shows them: SMS statuses of then, Chat Apps steps taken by then,
        nothing created later."""
        now = self.clock.now_ms()
        if now >= self._last_created + SETTLE_MAX_MS:
            return rows  # everything settled (the wall clock with a dataset in the past)
        shown = []
        for row in rows:
            if now >= row.created_ms + row.settle_ms:
                shown.append(row)
            elif self._step is not None:  # Chat Apps: a row per step; show the steps taken
                step = step_at(range(row.steps), row.created_ms, row.settle_ms, now)
                if step >= int(row.cells[self._step]) - 1:
                    shown.append(row)
            else:
                chain = chain_to(row.cells[self._status], sent="sent", delivered="delivered")
                step = step_at(chain, row.created_ms, row.settle_ms, now)
                if step == len(chain) - 1:
                    shown.append(row)
                elif step >= 0:
                    shown.append(_still_sent(row, self._status))
        return shown


def _still_sent(row: LogRow, status: int) -> LogRow:
    """An SMS row before its final receipt: ``sent`` at its creation."""
    cells = list(row.cells)
    cells[status : status + 5] = ["sent", "Sent to carrier", "", "", cells[status + 8]]  # createdat's text
    return dataclasses.replace(row, cells=tuple(cells))


def _restyle(row: LogRow, stamps: list[int]) -> LogRow:
    cells = list(row.cells)
    for i in stamps:
        cells[i] = cells[i].replace("T", " ").removesuffix("Z")
    return LogRow(row.created_ms, row.msisdn, row.country, row.channel_user_id, tuple(cells))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _body(rng: random.Random) -> str:
    return rng.choice(_BODIES).format(n=rng.randrange(1000, 10_000), name=rng.choice(_NAMES))


def sms_row(rng: random.Random, sub_account_id: str, created: int, index: int) -> list[LogRow]:
    """One SMS message: one row."""
    country, operator, mcc, mnc, prefix = rng.choice(_NETWORKS)
    value, details, code, message, _ = rng.choices(_STATUSES, [s[4] for s in _STATUSES])[0]
    msisdn = f"{prefix}{rng.randrange(10**7, 10**8)}"
    body = _body(rng)
    unicode = not body.isascii()
    segments = max(1, -(-len(body) // (67 if unicode else 153)))
    price = rng.choice(("0.0150", "0.0320", "0.0075"))
    batch = _uuid(rng) if index % 3 == 0 else ""
    cells = (
        _uuid(rng), sub_account_id, "1" if index % 10 else "0", country, operator, mcc, mnc, value, details,
        code, message, format_ms(created + rng.randrange(200, 90_000)), msisdn, rng.choice(_SOURCES),
        "UCS2" if unicode else "GSM7", format_ms(created), str(segments), "EUR", price,
        f"{float(price) * segments:.4f}", f"client-{index:06d}", batch and f"cb-{index // 3:05d}", batch,
        body,
    )  # fmt: skip
    return [LogRow(created, msisdn, country, None, cells)]


def chat_rows(rng: random.Random, sub_account_id: str, created: int, index: int) -> list[LogRow]:
    """One Chat Apps message: a row per status step, all with the message's ``umid`` and ``createdAt``."""
    country, _, _, _, prefix = rng.choice(_NETWORKS)
    msisdn = f"{prefix}{rng.randrange(10**7, 10**8)}"
    user_id = f"{country}.{rng.randrange(10**15, 10**16)}"
    umid, channel_id, body = _uuid(rng), _uuid(rng), _body(rng)
    channel = rng.choice(("WhatsApp", "WhatsApp", "Viber"))
    steps = rng.choice(
        (("sent",), ("sent", "delivered"), ("sent", "delivered", "read"), ("sent", "undelivered"))
    )
    rows, at = [], created
    for step, value in enumerate(steps, 1):
        at += rng.randrange(200, 60_000)
        failed = value == "undelivered"
        cells = (
            umid, sub_account_id, "1" if index % 10 else "0", channel, channel_id, country, value,
            _CHAT_DETAILS[value], "7001" if failed else "", "User not reachable" if failed else "",
            format_ms(at), msisdn, user_id, rng.choice(("text", "template")), format_ms(created),
            f"client-{index:06d}", "", "", str(step), body, format_ms(at) if value == "read" else "",
        )  # fmt: skip
        rows.append(LogRow(created, msisdn, country, user_id, cells))
    return rows


def mismatched(columns: Sequence[str]) -> tuple[str, ...]:
    """The header of a ``header_mismatch`` part: the last column renamed, as a changed format would."""
    return (*columns[:-1], "text")


def render_csv(columns: Sequence[str], rows: Sequence[LogRow], line_terminator: str) -> bytes:
    """RFC 4180 CSV: the header, then the rows; only fields that need it are quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_terminator)
    writer.writerow(columns)
    writer.writerows(r.cells for r in rows)
    return buffer.getvalue().encode()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)  # mtime 0: the same rows give the same bytes


def zip_bytes(data: bytes, member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member, date_time=(2025, 1, 1, 0, 0, 0))
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


class RepeatedBlocks:
    """A big CSV part made of one rendered block of rows repeated, each copy numbered (constant memory).

    The block holds ``\\x00`` placeholders (in the ``umid`` cells); copy ``n`` replaces each by ``n`` on
    ten digits, so every row stays unique. The part holds blocks ``first .. first + count - 1``.

    :param header: the header line (empty: no header).
    :param segments: the block split at its placeholders.
    :param first: number of the first block.
    :param count: number of blocks.
    """

    def __init__(self, header: bytes, segments: list[bytes], first: int, count: int) -> None:
        self._header = header
        self._segments = segments
        self._first = first
        self._count = count
        self.block_size = sum(map(len, segments)) + (len(segments) - 1) * 10

    @property
    def size(self) -> int:
        return len(self._header) + self._count * self.block_size

    def iter_from(self, offset: int) -> Iterator[bytes]:
        if offset < len(self._header):
            yield self._header[offset:]
        number, skip = divmod(max(0, offset - len(self._header)), self.block_size)
        for n in range(number, self._count):
            block = (b"%010d" % (self._first + n)).join(self._segments)
            yield block[skip:] if skip else block
            skip = 0


def synthetic_parts(
    size: int, parts: int, start_ms: int, end_ms: int, line_terminator: str, rows_per_block: int = 4096
) -> list[RepeatedBlocks]:
    """About ``size`` bytes of SMS log CSV in ``parts`` files, for benchmarks (SMS columns).

    Rows are spread over ``[start_ms, end_ms)``; each block also holds one row at ``end_ms`` (outside a
    half-open window ending there), so a window filter has rows to drop.
    """
    rng = random.Random("8x8-synthetic")
    step = max(1, (end_ms - start_ms) // rows_per_block)
    rows = []
    for j in range(rows_per_block):
        created = end_ms if j == rows_per_block - 1 else start_ms + j * step
        (row,) = sms_row(rng, "synthetic", created, j)
        rows.append(LogRow(created, row.msisdn, row.country, None, (f"syn\x00-{j:06d}", *row.cells[1:])))
    block = render_csv(SMS_COLUMNS, rows, line_terminator)
    header, _, body = block.partition(line_terminator.encode())
    segments = body.split(b"\x00")
    block_size = len(body) + (len(segments) - 1) * 9
    total = max(parts, -(-size // block_size))
    share = -(-total // parts)
    header += line_terminator.encode()
    return [
        RepeatedBlocks(header, segments, i * share, max(0, min(share, total - i * share)))
        for i in range(parts)
    ]
