"""A stand-in for Airflow 3.3's ``task_state_store`` in tests that run operators in-process."""

from __future__ import annotations

from typing import Any


class DictStateStore:
    """Stands in for ``task_state_store`` (a metadata-DB table shared by a task's tries)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = value
