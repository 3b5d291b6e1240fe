"""Shared test plumbing: a throwaway Airflow home and a runner for ``airflow dags test``.

The emulator fixtures (``msghistory_emulator``, ``msghistory_emulator_factory``) come from the provider's
pytest plugin (entry point ``pytest11``), the way moto ships its own.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS = REPO / "example_dags"

# Airflow reads its configuration when first imported: point it at a private home before any test module
# imports it, so the suite never touches ~/airflow and in-process hooks find connections in env vars.
_HOME = Path(os.environ.get("MSGHISTORY_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="msghistory-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

AIRFLOW_CLI = str(Path(sys.executable).parent / "airflow")


def airflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an ``airflow`` subprocess: this suite's home, no inherited connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The suite's Airflow home with a migrated SQLite metadata DB (migrated once per session)."""
    marker = _HOME / ".migrated"
    if not marker.exists():
        proc = subprocess.run(
            [AIRFLOW_CLI, "db", "migrate"], env=airflow_env(), capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            pytest.fail(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        marker.touch()
    return _HOME


@dataclass
class DagTestResult:
    """Outcome of one ``airflow dags test`` run."""

    dag_id: str
    returncode: int
    output: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """The newest XCom ``key`` pushed by ``task_id`` of this DAG, read from the metadata DB."""
        with sqlite3.connect(_HOME / "airflow.db") as db:
            row = db.execute(
                'SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND "key" = ? '
                "ORDER BY timestamp DESC LIMIT 1",
                (self.dag_id, task_id, key),
            ).fetchone()
        if row is None:
            return None
        value = row[0]
        return json.loads(value.decode() if isinstance(value, bytes) else value)


RunDag = Callable[..., DagTestResult]


@pytest.fixture
def run_dag(airflow_home: Path) -> RunDag:
    """Run a DAG from ``example_dags/`` with ``airflow dags test`` in a subprocess.

    ``run_dag(dag_id, logical_date="2025-01-02", conn_json=emu.airflow_conn_json(), conf={...},
    env={...}, check=True)`` returns a :class:`DagTestResult`; with ``check`` a failed run fails the test
    and shows the end of the output.
    """

    def _run(
        dag_id: str,
        logical_date: str = "2025-01-02",
        *,
        conn_json: str | None = None,
        conf: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 600,
    ) -> DagTestResult:
        extra = dict(env or {})
        if conn_json is not None:
            extra["AIRFLOW_CONN_MSGHISTORY_DEFAULT"] = conn_json
        cmd = [AIRFLOW_CLI, "dags", "test", dag_id, logical_date]
        if conf is not None:
            cmd += ["-c", json.dumps(conf)]
        proc = subprocess.run(
            cmd, env=airflow_env(extra), capture_output=True, text=True, timeout=timeout, cwd=REPO
        )
        result = DagTestResult(dag_id, proc.returncode, proc.stdout + proc.stderr)
        if check and not result.succeeded:
            pytest.fail(f"airflow dags test {dag_id} {logical_date} failed:\n{result.output[-6000:]}")
        return result

    return _run


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here rather than in tests/reliability/conftest.py: pytest takes options only from the root conftest.
    parser.addoption(
        "--reliability-seed",
        action="append",
        type=int,
        default=[],
        metavar="N",
        help="run only this fault-schedule seed in tests/reliability (repeatable)",
    )
