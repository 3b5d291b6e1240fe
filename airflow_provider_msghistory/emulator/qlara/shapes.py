"""Response-shape variants from the reference's tolerance contract, chosen by a switch."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

_CHOICES: dict[str, tuple[Any, ...]] = {
    "id_field": ("exportId", "id"),
    "id_type": ("str", "int"),
    "url_field": ("downloadUrl", "url", "downloadLink"),
    "expiry_field": ("expiresAt", "expiration", None),
    "export_list_wrap": ("content", "items", "data", None),
    "history_wrap": (None, "content", "items", "data", "messages"),
    "history_record": ("full", "documented"),
    "history_over_limit": ("reject", "clamp"),
    "status_case": ("upper", "lower", "title"),
    "pending_status": ("PENDING", "QUEUED", "RUNNING", "IN_PROGRESS"),
    "completed_status": ("COMPLETED", "SUCCEEDED"),
    "failed_status": ("FAILED", "ERROR", "CANCELLED"),
    "expired_status": ("EXPIRED",),
    "error_body": ("default", "alt", "empty", "text"),
    "retry_after_header": (False, True),
}
_CANONICAL = ("PENDING", "COMPLETED", "FAILED", "EXPIRED")


@dataclass(frozen=True)
class Shape:
    """How responses are spelled. The defaults are the reference's "[emulator]" shapes.

    :param id_field: key of the export id (``exportId`` | ``id``).
    :param id_type: ``str`` ids (``exp_...``) or ``int`` ids (new exports get integer ids).
    :param url_field: key of F's URL (``downloadUrl`` | ``url`` | ``downloadLink``).
    :param expiry_field: key of F's expiry (``expiresAt`` | ``expiration``), ``None`` to omit it.
    :param export_list_wrap: E wrapped in ``content`` | ``items`` | ``data``, or ``None`` for a bare array.
    :param history_wrap: B wrapped in ``content`` | ``items`` | ``data`` | ``messages``, or bare (``None``).
    :param history_record: B's records with every field (``full``) or only the three documented ones
        (``documented``: customerMessageId, deliveryStatus, deliveryStatusDescription; no channel).
    :param history_over_limit: a B ``limit`` above the emulator's ``history_max_limit`` is refused with
        400 (``reject``) or silently served as the maximum (``clamp``: pages shorter than asked).
    :param status_case: ``upper`` | ``lower`` | ``title`` spelling of statuses.
    :param pending_status: served for PENDING (``QUEUED``, ``RUNNING``, ``IN_PROGRESS`` are variants).
    :param completed_status: served for COMPLETED (or ``SUCCEEDED``).
    :param failed_status: served for FAILED (or ``ERROR``, ``CANCELLED``).
    :param expired_status: served for EXPIRED.
    :param error_body: ``default`` {timestamp,status,error,message,path}, ``alt`` {code,explain},
        ``empty`` (no body) or ``text`` (plain text).
    :param retry_after_header: add a standard ``Retry-After`` header to 429s.
    """

    id_field: str = "exportId"
    id_type: str = "str"
    url_field: str = "downloadUrl"
    expiry_field: str | None = "expiresAt"
    export_list_wrap: str | None = "content"
    history_wrap: str | None = None
    history_record: str = "full"
    history_over_limit: str = "reject"
    status_case: str = "upper"
    pending_status: str = "PENDING"
    completed_status: str = "COMPLETED"
    failed_status: str = "FAILED"
    expired_status: str = "EXPIRED"
    error_body: str = "default"
    retry_after_header: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value, allowed = getattr(self, f.name), _CHOICES[f.name]
            if value not in allowed:
                raise ValueError(f"shape {f.name}={value!r} is not one of {allowed}, e.g. {allowed[-1]!r}")

    def with_changes(self, **changes: Any) -> Shape:
        """A copy with ``changes``; unknown names raise ``ValueError`` listing the known ones."""
        unknown = set(changes) - set(_CHOICES)
        if unknown:
            raise ValueError(f"unknown shape option(s) {sorted(unknown)}; known: {sorted(_CHOICES)}")
        return replace(self, **changes)

    def status(self, canonical: str) -> str:
        """The served spelling of a canonical status (PENDING, COMPLETED, FAILED, EXPIRED)."""
        if canonical not in _CANONICAL:
            raise ValueError(f"unknown canonical status {canonical!r}")
        word = getattr(self, f"{canonical.lower()}_status")
        if self.status_case == "lower":
            return word.lower()
        if self.status_case == "title":
            return word.title()
        return word


def parse_shape_option(text: str) -> tuple[str, Any]:
    """``name=value`` from the CLI (``none`` -> None, ``true``/``false`` -> bool)."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"shape option {text!r} must look like name=value, e.g. id_field=id")
    value: Any = {"none": None, "true": True, "false": False}.get(raw.lower(), raw)
    return name.strip(), value
