"""Vendor-neutral models: export kinds and statuses, export jobs, download links, export requests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_msghistory.client.datetimes import EXAMPLE, parse_aware


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
    """

    export_id: str
    status: ExportStatus
    available: bool
    raw_status: str
    kind: str | None = None
    created_at: str | None = None
    completed_at: str | None = None

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


@dataclass(frozen=True)
class ExportRequest:
    """A validated export submission. Build it with :meth:`build`.

    :param kind: what to export.
    :param start: inclusive start bound (aware), if any.
    :param end: inclusive end bound (aware), if any.
    :param sender: message-history filter on the sender.
    :param recipient: message-history filter on the recipient.
    :param campaign_id: delivery-reports scope.
    :param list_ids: contacts scope: contacts of these lists.
    :param contact_ids: contacts scope: these contacts.
    """

    kind: ExportKind
    start: datetime | None = None
    end: datetime | None = None
    sender: str | None = None
    recipient: str | None = None
    campaign_id: str | None = None
    list_ids: IdList | None = None
    contact_ids: IdList | None = None

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
    ) -> ExportRequest:
        """Validate and normalise an export request; raise ``ValueError`` naming the bad parameter."""
        kind = ExportKind.parse(kind)
        start_dt = parse_aware(start, "start") if start is not None else None
        end_dt = parse_aware(end, "end") if end is not None else None
        if (start_dt is None) != (end_dt is None):
            missing = "end" if end_dt is None else "start"
            raise ValueError(f"{missing}: start and end go together; pass both, e.g. {EXAMPLE!r}")
        if start_dt is not None and end_dt is not None and end_dt < start_dt:
            raise ValueError(f"end: {end_dt.isoformat()} is before start {start_dt.isoformat()}")
        sender = _optional_text(sender, "sender")
        recipient = _optional_text(recipient, "recipient")
        campaign = _optional_text(campaign_id, "campaign_id")
        lists = _id_tuple(list_ids, "list_ids")
        contacts = _id_tuple(contact_ids, "contact_ids")

        def refuse(param: str, why: str) -> None:
            raise ValueError(f"{param}: {why}")

        if kind is ExportKind.MESSAGE_HISTORY:
            if start_dt is None:
                refuse("start", f"a message-history export needs start and end, e.g. {EXAMPLE!r}")
            for name, value in (("campaign_id", campaign), ("list_ids", lists), ("contact_ids", contacts)):
                if value is not None:
                    refuse(name, "not accepted by a message-history export")
        elif kind is ExportKind.DELIVERY_REPORTS:
            if campaign is None and start_dt is None:
                refuse(
                    "campaign_id",
                    f"a delivery-reports export needs campaign_id (e.g. '12345') or start and end "
                    f"(e.g. {EXAMPLE!r})",
                )
            for name, value in (
                ("sender", sender),
                ("recipient", recipient),
                ("list_ids", lists),
                ("contact_ids", contacts),
            ):
                if value is not None:
                    refuse(name, "not accepted by a delivery-reports export")
        else:
            if start_dt is not None:
                refuse(
                    "start", "a contacts export takes no date range; pass list_ids, contact_ids or neither"
                )
            if lists is not None and contacts is not None:
                refuse(
                    "contact_ids", "pass list_ids or contact_ids, not both (neither exports every contact)"
                )
            for name, value in (("sender", sender), ("recipient", recipient), ("campaign_id", campaign)):
                if value is not None:
                    refuse(name, "not accepted by a contacts export")
        return cls(kind, start_dt, end_dt, sender, recipient, campaign, lists, contacts)


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
