"""Export jobs and their lifecycle: PENDING -> COMPLETED (link valid for ``link_ttl``) -> EXPIRED, or FAILED.

Status is derived from the clock at read time, so no timer threads: an export completes ``export_delay``
after submission (or regeneration), and its link expires ``link_ttl`` after that.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..content import Content
from .content import SyntheticCsv

MESSAGE_HISTORY = "MESSAGE_HISTORY"
CONTACTS = "CONTACTS"
DELIVERY_REPORTS = "DELIVERY_REPORTS"
PENDING, COMPLETED, EXPIRED, FAILED = "PENDING", "COMPLETED", "EXPIRED", "FAILED"


@dataclass
class Export:
    """State of one export job (times are wall-clock epoch seconds).

    :param export_id: id as served (``exp_...``, or the number's text when integer ids are on).
    :param wire_id: the JSON value of the id (``str``, or ``int`` with integer ids).
    :param kind: MESSAGE_HISTORY | CONTACTS | DELIVERY_REPORTS.
    :param params: the submitted body (normalised).
    :param content: the file's bytes source.
    :param created_at: submission time.
    :param ready_at: when it completes (moved by regeneration or ``complete_export``).
    :param link_ttl: seconds a link stays valid after completion.
    :param will_fail: it reaches FAILED instead of COMPLETED at ``ready_at``.
    """

    export_id: str
    wire_id: str | int
    kind: str
    params: dict[str, Any]
    content: Content
    created_at: float
    ready_at: float
    link_ttl: float
    will_fail: bool = False
    generation: int = 0
    regenerations: int = 0
    expires_override: float | None = None
    clock: Callable[[], float] = field(default=time.time, repr=False)
    _sha256: str | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """Canonical status now: PENDING, COMPLETED, EXPIRED or FAILED."""
        return self.status_at(self.clock())

    def status_at(self, now: float) -> str:
        if now < self.ready_at:
            return PENDING
        if self.will_fail:
            return FAILED
        if now >= self.link_expires_at:
            return EXPIRED
        return COMPLETED

    @property
    def link_expires_at(self) -> float:
        if self.expires_override is not None:
            return self.expires_override
        return self.ready_at + self.link_ttl

    @property
    def filename(self) -> str:
        return f"{self.kind.lower().replace('_', '-')}-{self.export_id}.csv"

    def sha256(self) -> str:
        """SHA-256 of the file, by streaming (cached)."""
        if self._sha256 is None:
            if isinstance(self.content, SyntheticCsv):
                self._sha256 = self.content.sha256()
            else:
                digest = hashlib.sha256()
                for chunk in self.content.iter_from(0):
                    digest.update(chunk)
                self._sha256 = digest.hexdigest()
        return self._sha256


class ExportStore:
    """All export jobs of the (single) account, oldest first; thread-safe.

    :param export_delay: seconds from submission to COMPLETED.
    :param link_ttl: seconds a download link stays valid.
    :param fail_exports: ``True`` = every export fails, a float = probability (seeded), ``False`` = none.
    :param seed: seeds the failure draws.
    :param clock: wall-clock seconds.
    """

    def __init__(
        self,
        export_delay: float,
        link_ttl: float,
        fail_exports: bool | float,
        seed: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if export_delay < 0 or link_ttl <= 0:
            raise ValueError("export_delay must be >= 0 and link_ttl > 0, e.g. export_delay=3, link_ttl=300")
        if not isinstance(fail_exports, bool) and not 0.0 <= fail_exports <= 1.0:
            raise ValueError("fail_exports must be a bool or a probability, e.g. fail_exports=0.1")
        self.export_delay = export_delay
        self.link_ttl = link_ttl
        self.fail_exports = fail_exports
        self.clock = clock
        self.lock = threading.RLock()
        self._rng = random.Random(f"qlara-exports:{seed}")  # failure draws: seeded, reproducible
        # Ids must not repeat after a restart with the same seed (a lake would hold two files for one id):
        # string ids are random, integer ids count up from the start time in milliseconds.
        self._first_number = int(clock() * 1000)
        self._exports: dict[str, Export] = {}

    def create(
        self, kind: str, params: dict[str, Any], content: Content, int_ids: bool, fail: bool = False
    ) -> Export:
        with self.lock:
            number = self._first_number + len(self._exports)
            token = f"exp_{secrets.token_hex(6)}"
            if not fail and self.fail_exports is not False:
                fail = self.fail_exports is True or self._rng.random() < float(self.fail_exports)
            now = self.clock()
            export = Export(
                export_id=str(number) if int_ids else token,
                wire_id=number if int_ids else token,
                kind=kind,
                params=params,
                content=content,
                created_at=now,
                ready_at=now + self.export_delay,
                link_ttl=self.link_ttl,
                will_fail=fail,
                clock=self.clock,
            )
            self._exports[export.export_id] = export
            return export

    def get(self, export_id: str | int) -> Export | None:
        with self.lock:
            return self._exports.get(str(export_id))

    def require(self, export_id: str | int) -> Export:
        export = self.get(export_id)
        if export is None:
            raise KeyError(f"no export with id {export_id!r}")
        return export

    def newest_first(self) -> list[Export]:
        with self.lock:
            return list(reversed(self._exports.values()))

    def snapshot(self) -> dict[str, Export]:
        with self.lock:
            return dict(self._exports)

    def regenerate(self, export: Export) -> None:
        """G: a fresh link generation, ready ``export_delay`` from now; old links stop working."""
        with self.lock:
            export.generation += 1
            export.regenerations += 1
            export.expires_override = None
            export.ready_at = self.clock() + self.export_delay

    def complete(self, export: Export) -> None:
        with self.lock:
            now = self.clock()
            if export.status_at(now) == PENDING:
                export.ready_at = now
            export.will_fail = False

    def fail(self, export: Export) -> None:
        with self.lock:
            export.will_fail = True
            export.ready_at = min(export.ready_at, self.clock())

    def expire(self, export: Export) -> None:
        with self.lock:
            now = self.clock()
            if export.status_at(now) == PENDING:
                export.ready_at = now
            export.expires_override = now
