"""What the end-to-end tests look at: the version served, the app's pid, the data, the tasks, the ledger."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from testenv import APP_PORT

STATE_DIR = Path(os.environ["ROLLOUT_STATE_DIR"])


def served_version() -> str:
    return str(httpx.get(f"http://127.0.0.1:{APP_PORT}/health", timeout=5).json()["version"])


def app_pid(profile) -> int:
    from airflow_rollout.targets.local_process import LocalProcessApp

    running = LocalProcessApp(config=profile.app_targets[0], system="demo", state_dir=STATE_DIR).current()
    assert running is not None
    return running.pid


def fingerprint(profile) -> dict:
    from airflow_rollout.targets.postgres import PostgresDataTarget

    return PostgresDataTarget(config=profile.data_targets[0]).fingerprint()


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def ledger():
    from airflow_rollout.ledger import Ledger

    return Ledger(conn_id="rollout_ledger")


def maintenance_store():
    from airflow_rollout.maintenance_store import MaintenanceStore

    return MaintenanceStore(conn_id="rollout_ledger")


def run_release(dag, version: str):
    return dag.test(run_conf={"system": "demo", "version": version}), ledger()


def completed_checklist(dag_run) -> str:
    """The completed checklist the run wrote; also what `complete_checklist` returned."""
    from airflow_rollout.targets.base import safe_file_name

    return (STATE_DIR / "checklists" / "demo" / f"{safe_file_name(dag_run.run_id)}.md").read_text()


SIGN_OFF_ROLES = ["Operations Lead", "Product Owner", "Security Lead", "Tech Lead"]


def run_signed_release(dag, system: str, version: str, roles: list[str] = SIGN_OFF_ROLES):
    """Run a release of `system`, each role the checklist requires approving in Required Actions (in map order)."""
    from hitl import answer, run_with_responder, wait_for_awaiting_input

    def sign_off() -> None:
        for index, role in enumerate(roles):
            run_id = wait_for_awaiting_input("release", "sign_off.sign_off", map_index=index)
            answer("release", run_id, "sign_off.sign_off", "Approve", role.lower().replace(" ", "-"), role, map_index=index)

    dag_run = run_with_responder(lambda: dag.test(run_conf={"system": system, "version": version}), sign_off)
    return dag_run, ledger().release(dag_run.run_id)
