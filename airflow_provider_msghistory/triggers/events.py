"""The export trigger's event, typed: built by the trigger, read by the tasks it resumes.

A trigger event's payload is a plain dict (Airflow serializes it between the triggerer and the worker, on
every Airflow line); :class:`ExportEvent` is the one place that writes and reads it. No Airflow import: the
tasks that read it import this at DAG parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["success", "error", "timeout"]


@dataclass(frozen=True)
class ExportEvent:
    """How a wait in the triggerer ended.

    :param status: ``"success"`` (the export is downloadable or finished empty), ``"error"`` (FAILED,
        unknown id, expired too often, an API error that is not transient) or ``"timeout"``.
    :param export_id: the export waited for.
    :param message: why the wait failed (``""`` on success).
    :param export_status: the export's final status on success (``ExportStatus`` value).
    :param page_hint: export-list page the export was last seen on (the task looks there first).
    :param regenerations: regenerations of its download link done while waiting (the task's count goes on).
    """

    status: Status
    export_id: str
    message: str = ""
    export_status: str = "COMPLETED"
    page_hint: int = 0
    regenerations: int = 0

    def to_payload(self) -> dict[str, Any]:
        """The plain dict the trigger fires."""
        if self.status == "success":
            return {
                "status": self.status,
                "export_id": self.export_id,
                "export_status": self.export_status,
                "page_hint": self.page_hint,
                "regenerations": self.regenerations,
            }
        return {"status": self.status, "export_id": self.export_id, "message": self.message}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> ExportEvent:
        """The event of a fired payload (any status but success and timeout is an error).

        :raises ValueError: no payload (a trigger that fired without an event).
        """
        if not payload:
            raise ValueError("the export trigger fired without an event")
        status = payload.get("status")
        return cls(
            status=status if status in ("success", "timeout") else "error",
            export_id=str(payload.get("export_id")),
            message=str(payload.get("message") or ""),
            export_status=str(payload.get("export_status") or "COMPLETED"),
            page_hint=int(payload.get("page_hint") or 0),
            regenerations=int(payload.get("regenerations") or 0),
        )
