"""Vendor-neutral models: export kinds and statuses, export jobs, download links, export requests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_msghistory.client.datetimes import EXAMPLE, parse_aware
from airflow_provider_msghistory.client.windows import Window


class ExportKind(str, Enum):
    """What an export contains."""

    MESSAGE_HISTORY = "message_history"
    DELIVERY_REPORTS = "delivery_reports"
    CONTACTS = "contacts"

    @classmethod
    def parse(cls, value: object) -> ExportKind:
        """Return the kind named by ``value`` (an ``ExportKind`` or its string value, any case)."""
        if isinstance(value, ExportKind):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        valid = ", ".join(repr(k.value) for k in cls)
        raise ValueError(f"kind: unknown export kind {value!r}; valid kinds are {valid}")


class ExportStatus(str, Enum):
    """Export status normalised across vendors (see the tolerance contract)."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    EMPTY = "EMPTY"  # finished with no rows: done, nothing to download
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ExportJob:
    """One export job as the server reports it.

    :param export_id: the export's id, always a string.
    :param status: normalised status.
    :param available: the server's "available for download" flag.
    :param raw_status: the status exactly as the server sent it.
    :param kind: the server's export type, if it said.
    :param created_at: creation time as sent, if any.
    :param completed_at: completion time as sent, if any.
    :param files: download URLs the job itself lists, in order (vendors that deliver several files per
        job with the status, e.g. 8x8); empty when links come from a call of their own.
    :param expires_at: when those links stop working, if the server said.
    """

    export_id: str
    status: ExportStatus
    available: bool
    raw_status: str
    kind: str | None = None
    created_at: str | None = None
    completed_at: str | None = None
    files: tuple[str, ...] = field(default=(), repr=False)
    expires_at: datetime | None = None

    @property
    def ready(self) -> bool:
        """True when the file can be downloaded: completed AND flagged available."""
        return self.status is ExportStatus.COMPLETED and self.available


@dataclass(frozen=True)
class DownloadLink:
    """A pre-signed, time-limited download URL.

    :param export_id: the export it belongs to.
    :param url: the pre-signed URL (its query string is a credential: never log it).
    :param expires_at: when the link expires, if the server said.
    """

    export_id: str
    url: str
    expires_at: datetime | None = None

    def __repr__(self) -> str:
        url = redact_url(self.url)
        return f"DownloadLink(export_id={self.export_id!r}, url={url!r}, expires_at={self.expires_at!r})"


def redact_url(url: str) -> str:
    """``url`` without its query string, fragment or user info (safe to log)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<unparseable url>"
    query = "?<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + query


IdList = tuple[str | int, ...]
# One address, loosely: the vendor has the last word; this catches a list pasted as one string or a typo.
EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")


@dataclass(frozen=True)
class ExportRequest:
    """A validated export submission, vendor-neutral. Build it with :meth:`build`.

    Which fields an export kind accepts or needs is the vendor's rule (:meth:`Dialect.check`); how the
    window goes on the wire too (:meth:`Dialect.submit_export`).

    :param kind: what to export.
    :param window: the half-open window ``[start, end)`` to export, if any.
    :param sender: message-history filter on the sender.
    :param recipient: message-history filter on the recipient.
    :param campaign_id: delivery-reports scope.
    :param list_ids: contacts scope: contacts of these lists.
    :param contact_ids: contacts scope: these contacts.
    :param filters: the vendor's own filters, by their wire names (e.g. 8x8's ``phoneNumber``).
    :param email_recipients: where a vendor that e-mails its reports sends this one.
    :param email_sender: the address such a report is sent from.
    """

    kind: ExportKind
    window: Window | None = None
    sender: str | None = None
    recipient: str | None = None
    campaign_id: str | None = None
    list_ids: IdList | None = None
    contact_ids: IdList | None = None
    filters: Mapping[str, Any] = field(default_factory=dict)
    email_recipients: tuple[str, ...] | None = None
    email_sender: str | None = None

    @property
    def start(self) -> datetime | None:
        return None if self.window is None else self.window.start

    @property
    def end(self) -> datetime | None:
        return None if self.window is None else self.window.end

    @classmethod
    def build(
        cls,
        kind: ExportKind | str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        sender: str | None = None,
        recipient: str | None = None,
        campaign_id: str | int | None = None,
        list_ids: Iterable[str | int] | str | int | None = None,
        contact_ids: Iterable[str | int] | str | int | None = None,
        filters: Mapping[str, Any] | None = None,
        email_recipients: Iterable[str] | str | None = None,
        email_sender: str | None = None,
    ) -> ExportRequest:
        """Validate and normalise the values; raise ``ValueError`` naming the bad parameter.

        ``start`` and ``end`` are the half-open window ``[start, end)``.
        """
        kind = ExportKind.parse(kind)
        start_dt = parse_aware(start, "start") if start is not None else None
        end_dt = parse_aware(end, "end") if end is not None else None
        if (start_dt is None) != (end_dt is None):
            missing = "end" if end_dt is None else "start"
            raise ValueError(f"{missing}: start and end go together; pass both, e.g. {EXAMPLE!r}")
        window = None
        if start_dt is not None and end_dt is not None:
            if end_dt < start_dt:
                raise ValueError(f"end: {end_dt.isoformat()} is before start {start_dt.isoformat()}")
            window = Window(start_dt, end_dt)
        if filters is not None and not isinstance(filters, Mapping):
            raise ValueError(
                "filters: expected a mapping like {'phoneNumber': '+6591234567'}, "
                f"got {type(filters).__name__}"
            )
        return cls(
            kind,
            window,
            _optional_text(sender, "sender"),
            _optional_text(recipient, "recipient"),
            _optional_text(campaign_id, "campaign_id"),
            _id_tuple(list_ids, "list_ids"),
            _id_tuple(contact_ids, "contact_ids"),
            dict(filters or {}),
            email_addresses(email_recipients, "email_recipients"),
            email_address(email_sender, "email_sender"),
        )

    def given(self) -> dict[str, object]:
        """The scope fields that are set, by parameter name (for a dialect's per-kind rules)."""
        values = {
            "sender": self.sender,
            "recipient": self.recipient,
            "campaign_id": self.campaign_id,
            "list_ids": self.list_ids,
            "contact_ids": self.contact_ids,
        }
        return {name: value for name, value in values.items() if value is not None}


def email_address(value: object, param: str) -> str | None:
    """One e-mail address, stripped; ``ValueError`` naming ``param`` when it does not look like one."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else ""
    if not EMAIL.fullmatch(text):
        raise ValueError(f"{param}: {value!r} is not an e-mail address like 'reports@acme.example'")
    return text


def email_addresses(value: object, param: str) -> tuple[str, ...] | None:
    """E-mail addresses from a list or a comma-separated string (a rendered template)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ValueError(f"{param}: expected a list like ['ops@acme.example'], got {type(value).__name__}")
    addresses = tuple(email_address(item, param) or "" for item in items)
    if not addresses:
        raise ValueError(f"{param}: empty list; pass addresses like ['ops@acme.example'], or leave it out")
    return tuple(dict.fromkeys(addresses))


def _optional_text(value: object, param: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{param}: expected a string, e.g. '12345', got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise ValueError(f"{param}: empty; pass a value like '12345' or leave it out")
    _refuse_rendered_none(text, param)
    return text


def _refuse_rendered_none(text: str, param: str) -> None:
    """A template over a missing XCom or param renders ``"None"``: never send that as a value."""
    if text == "None":
        raise ValueError(
            f"{param}: 'None' (a template over a missing XCom or param renders so); pass a real value "
            "like '12345' or leave it out"
        )


def _id_tuple(value: object, param: str) -> IdList | None:
    """Ids as a tuple; a comma-separated string (e.g. a rendered template) is split."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[object] = [part.strip() for part in value.split(",")]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise ValueError(f"{param}: expected a list of ids like [101, 102], got {type(value).__name__}")
    ids: list[str | int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValueError(f"{param}: ids must be strings or integers, like [101, 102]; got {item!r}")
        if isinstance(item, str):
            item = item.strip()
            if not item:
                raise ValueError(f"{param}: contains an empty id; pass ids like [101, 102]")
            _refuse_rendered_none(item, param)
        ids.append(item)
    if not ids:
        raise ValueError(f"{param}: empty list; pass ids like [101, 102], or leave it out")
    return tuple(ids)
