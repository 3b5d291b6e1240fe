"""Two real ``airflow triggerer`` processes (Airflow >= 3.3, SQLite metadata DB): one frozen with SIGSTOP past
the health threshold loses its 8x8 wait to the other; when it resumes, Airflow cancels its copy "by user
action" and calls ``on_kill``. The job must keep running and the live copy must see it finish. A task the
user marks failed must still get its job cancelled (the state read in ``on_kill`` is the real one).

No scheduler runs: the deferred task instance is written to the metadata DB as a task deferring would leave
it, so the triggerers, the reassignment, ``on_kill`` and the task-state read are Airflow's own.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).parent / "airflow")
REPO = Path(__file__).resolve().parents[2]
DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator

with DAG("reassign", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    MsgHistoryExportOperator(
        task_id="export", export_type="message_history", vendor="8x8", deferrable=True,
        start_datetime="2025-01-02T00:00:00Z", end_datetime="2025-01-03T00:00:00Z", poll_interval=1,
    )
"""
# What a deferring task leaves in the DB: its run, its instance DEFERRED on a trigger of the export.
DEFER = """
import sys
from datetime import datetime, timezone
from airflow.models.serialized_dag import SerializedDagModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.trigger import Trigger
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

run_id, export_id = sys.argv[1], sys.argv[2]
now = datetime.now(timezone.utc)
with create_session() as session:
    dag = SerializedDagModel.get_dag("reassign", session=session)
    dag.create_dagrun(
        run_id=run_id, logical_date=now, data_interval=(now, now), run_after=now, conf=None,
        run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.RUNNING,
        session=session,
    )
    session.flush()
    ti = session.query(TaskInstance).filter_by(dag_id="reassign", run_id=run_id, task_id="export").one()
    trigger = Trigger.from_object(
        MsgHistoryExportTrigger(export_id=export_id, poll_interval=1.0, cancel_on_kill=True)
    )
    session.add(trigger)
    session.flush()
    ti.state, ti.trigger_id = TaskInstanceState.DEFERRED, trigger.id
    ti.next_method, ti.try_number = "execute_complete", 1
    session.merge(ti)
"""


def airflow_at_least_3_3() -> bool:
    from airflow import __version__

    return tuple(int(part) for part in __version__.split(".")[:2]) >= (3, 3)


class Deployment:
    """An Airflow home with a migrated SQLite DB, the DAG serialized, and triggerer processes."""

    def __init__(self, home: Path, conn_json: str) -> None:
        self.home = home
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
            "AIRFLOW_CONN_MSGHISTORY_DEFAULT": conn_json,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        }
        self.triggerers: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str) -> None:
        proc = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=300, cwd=self.home)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def defer(self, run_id: str, export_id: str) -> None:
        self.run(sys.executable, "-c", DEFER, run_id, export_id)

    def start_triggerer(self) -> subprocess.Popen[bytes]:
        log = open(self.home / f"triggerer-{len(self.triggerers)}.log", "wb")  # noqa: SIM115 (closed by the OS)
        proc = subprocess.Popen([AIRFLOW, "triggerer"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.triggerers.append(proc)
        return proc

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def trigger_log(self, run_id: str) -> str:
        logs = sorted((self.home / "logs").glob(f"dag_id=reassign/run_id={run_id}/task_id=export/*trigger*"))
        return "".join(path.read_text(errors="replace") for path in logs)

    def stop(self) -> None:
        for proc in self.triggerers:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.triggerers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


@pytest.fixture
def deployment(
    tmp_path: Path, msghistory_emulator_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Deployment, Any]]:
    if not airflow_at_least_3_3():
        pytest.skip("on_kill on reassignment is Airflow >= 3.3's; below, the cancelled run() reads the state")
    emulator = msghistory_emulator_factory(vendor="8x8", export_delay=3600)
    conn_json = emulator.airflow_conn_json()
    monkeypatch.setenv("AIRFLOW_CONN_MSGHISTORY_DEFAULT", conn_json)
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "reassign.py").write_text(DAG)
    deployment = Deployment(tmp_path, conn_json)
    deployment.run(AIRFLOW, "db", "migrate")
    deployment.run(AIRFLOW, "dags", "reserialize")
    try:
        yield deployment, emulator
    finally:
        deployment.stop()


def test_a_frozen_triggerer_resuming_does_not_cancel_the_job_its_peer_now_waits_on(
    deployment: tuple[Deployment, Any],
) -> None:
    airflow, emulator = deployment
    export_id = MsgHistoryHook().get_client().submit_message_history_export(
        "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"
    )
    job_id = ExportRef.parse(export_id).job_id
    airflow.defer("frozen", export_id)
    frozen = airflow.start_triggerer()
    owner = until(
        lambda: airflow.query("SELECT triggerer_id FROM trigger WHERE triggerer_id IS NOT NULL"),
        "the first triggerer takes the trigger",
    )[0][0]
    airflow.start_triggerer()
    until(lambda: len(airflow.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")) == 2, "a peer")
    until(lambda: "still being generated" in airflow.trigger_log("frozen"), "the first copy polls")

    os.kill(frozen.pid, signal.SIGSTOP)  # past the 6 s health threshold: the peer takes the trigger
    until(lambda: airflow.query("SELECT 1 FROM trigger WHERE triggerer_id != ?", owner), "reassignment")
    os.kill(frozen.pid, signal.SIGCONT)  # it finds its trigger gone: cancelled "by user action", on_kill
    until(lambda: airflow.trigger_log("frozen").count("trigger completed") >= 1, "the frozen copy's on_kill")
    assert not [r for r in emulator.request_log if r.method == "DELETE"], "the reassigned copy cancelled"
    log = airflow.trigger_log("frozen")
    assert "invoking on_kill" in log and "Task state deferred: not cancelling export" in log

    emulator.complete_job(job_id)
    fired = "SELECT 1 FROM task_instance WHERE state = 'scheduled' AND next_method = 'execute_complete'"
    until(lambda: airflow.query(fired), "the live copy fires its event: the task resumes")
    assert "'status': 'success'" in airflow.trigger_log("frozen")
    assert emulator.job(job_id).status == "succeeded"
    assert not [r for r in emulator.request_log if r.method == "DELETE"]


def test_a_task_marked_failed_while_deferred_gets_its_job_cancelled(
    deployment: tuple[Deployment, Any],
) -> None:
    airflow, emulator = deployment
    export_id = MsgHistoryHook().get_client().submit_message_history_export(
        "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"
    )
    job_id = ExportRef.parse(export_id).job_id
    airflow.defer("killed", export_id)
    airflow.start_triggerer()
    until(lambda: "still being generated" in airflow.trigger_log("killed"), "the wait polls")
    # The user's "mark failed": the triggerer drops the trigger no deferred task holds any more.
    airflow.query("UPDATE task_instance SET state = 'failed' WHERE run_id = 'killed'")
    until(lambda: emulator.cancelled_jobs, "the job is cancelled")
    assert emulator.cancelled_jobs == [job_id]
    assert "invoking on_kill" in airflow.trigger_log("killed")
