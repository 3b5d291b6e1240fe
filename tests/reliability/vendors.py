"""What the fault-schedule suite needs to know of each download vendor: its schedules, how its emulator's
request log reads (which request submits, polls, downloads, names which job) and the emulator's helpers.
The invariants themselves (``checks.py``) are one set for every vendor."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from airflow_provider_msghistory.client.refs import ExportRef

from . import schedules, schedules_8x8
from .schedules import READ_TIMEOUT, Schedule

# what a request is, as the bounds count them
SUBMISSION, POLL, LINK, REGENERATION, DOWNLOAD, CANCEL = (
    "submission", "poll", "download-link", "regeneration", "download", "cancel",
)  # fmt: skip


def job_id(export_id: str) -> str:
    return ExportRef.parse(export_id).job_id


class QlaraWire:
    """List-tracked; one pre-signed link per export on a storage host, fetched per download, regenerable."""

    vendor = "qlara"
    draw = staticmethod(schedules.draw)
    fatal_causes = schedules.FATAL_CAUSES
    fatal_phase = schedules.FATAL_PHASE
    _submits = ("/messages/history/export", "/exports/contacts", "/exports/delivery-reports")
    _export_path = re.compile(r"/api/partner-gateway/v1/exports/([^/]+)$")

    def kind(self, entry: Any) -> str | None:
        if entry.server == "storage":
            return DOWNLOAD
        if entry.method == "POST" and entry.path.endswith(self._submits):
            return SUBMISSION
        if entry.method == "GET" and entry.path.endswith("/exports"):
            return POLL
        if self.job_of(entry) is not None:
            return LINK if entry.method == "GET" else REGENERATION
        return None

    def job_of(self, entry: Any) -> str | None:
        match = self._export_path.search(entry.path) if entry.server == "api" else None
        return match.group(1) if match else None

    def prepare(self, emu: Any, schedule: Schedule) -> None:
        """Nothing: every Qlara export is one file."""

    def jobs(self, emu: Any) -> Iterable[str]:
        return emu.exports

    def expected_sha256(self, emu: Any, schedule: Schedule, export_id: str) -> str:
        return str(emu.export_sha256(export_id))

    def expire(self, emu: Any, export_id: str) -> None:
        emu.expire_link(export_id)

    def settle_seconds(self, schedule: Schedule) -> float:
        """How long a late-logged request may still take: only one the client gave up on lands late."""
        slow = schedule.longest_slow
        return slow - READ_TIMEOUT + 0.3 if slow > READ_TIMEOUT else 0.0


class EightByEightWire:
    """Job-tracked; several files per job in its status, downloaded from the API's own host; cancel."""

    vendor = "8x8"
    draw = staticmethod(schedules_8x8.draw)
    fatal_causes = schedules_8x8.FATAL_CAUSES
    fatal_phase = schedules_8x8.FATAL_PHASE
    _job_path = re.compile(r"/messages/exports/([^/]+)$")

    def kind(self, entry: Any) -> str | None:
        if "/download/" in entry.path:
            return DOWNLOAD
        if self.job_of(entry) is not None:
            return {"GET": POLL, "DELETE": CANCEL}.get(entry.method)
        return SUBMISSION if entry.method == "POST" else None

    def job_of(self, entry: Any) -> str | None:
        match = self._job_path.search(entry.path)
        return match.group(1) if match else None

    def prepare(self, emu: Any, schedule: Any) -> None:
        options = emu.options
        options.parts, options.gzip_parts, options.zip_parts = (
            schedule.parts, schedule.gzip_parts, schedule.zip_parts,
        )  # fmt: skip
        options.header_mismatch = schedule.header_mismatch

    def jobs(self, emu: Any) -> Iterable[str]:
        return emu.jobs

    def expected_sha256(self, emu: Any, schedule: Schedule, export_id: str) -> str:
        start, end = f"2025-01-{schedule.day:02d}T00:00:00Z", f"2025-01-{schedule.day + 1:02d}T00:00:00Z"
        return hashlib.sha256(emu.expected_csv(start, end)).hexdigest()

    def expire(self, emu: Any, export_id: str) -> None:
        emu.expire_links(job_id(export_id))

    def settle_seconds(self, schedule: Schedule) -> float:
        """How long a late-logged request may still take: a job poll whose waiter a triggerer restart
        cancelled is logged when the emulator answers, however short its delay."""
        return schedule.longest_slow + 0.3 if schedule.longest_slow else 0.0


Wire = QlaraWire | EightByEightWire
WIRES: dict[str, Wire] = {wire.vendor: wire for wire in (QlaraWire(), EightByEightWire())}
