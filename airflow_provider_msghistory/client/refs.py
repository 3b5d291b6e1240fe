"""The provider's export id: the vendor's job id, plus what a later task needs to finish the job.

A vendor whose bounds cannot say ``[start, end)`` exactly (seconds precision, unknown inclusivity) exports
a covering window, and the transfer keeps only the rows inside the asked one. The transfer learns that
window from the id alone (``export_id="{{ ti.xcom_pull(task_ids='export')['export_id'] }}"`` is all a DAG
wires), so the id carries it: ``<job id>;window=<start>/<end>``. A vendor with exact bounds gets the bare
job id, unchanged.

A restating export (``restate_days``) carries its widened window whatever the vendor, and when it asked the
vendor: ``<job id>;window=<start>/<end>;asked=<instant>``, the snapshot time that orders the partitions two
runs write (:mod:`airflow_provider_msghistory.transfers.partitions`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from airflow_provider_msghistory.client.datetimes import iso_utc, parse_utc
from airflow_provider_msghistory.client.windows import Window

_SUFFIX = re.compile(r";window=([0-9T:.\-+Z]+/[0-9T:.\-+Z]+)(?:;asked=([0-9T:.\-+Z]+))?$")


@dataclass(frozen=True)
class ExportRef:
    """An export as the provider names it.

    :param job_id: the vendor's own id (what goes on the wire).
    :param window: the half-open window whose rows the export must be cut down to, if any.
    :param asked: when the vendor was asked for the export (only with a window), if it travels.
    """

    job_id: str
    window: Window | None = None
    asked: datetime | None = None

    def __str__(self) -> str:
        if self.window is None:
            return self.job_id
        asked = "" if self.asked is None else f";asked={iso_utc(self.asked)}"
        return f"{self.job_id};window={self.window.encode()}{asked}"

    @classmethod
    def parse(cls, value: object) -> ExportRef:
        """The reference ``value`` names; a bare vendor id has no window. ``ValueError`` when empty."""
        if isinstance(value, ExportRef):
            return value
        text = str(value).strip() if value is not None else ""
        match = _SUFFIX.search(text)
        window = asked = None
        if match is not None:
            try:
                window = Window.decode(match.group(1))
                asked = parse_utc(match.group(2)) if match.group(2) else None
            except ValueError:
                window = asked = None  # not one of ours: the whole text is the vendor's id
            else:
                text = text[: match.start()]
        if not text:
            raise ValueError("export_id: empty; pass the id returned by a submit call, e.g. 'exp_123'")
        return cls(text, window, asked)
