"""What the end-to-end tests look at: the version served, the app's pid, the data, the tasks, the ledger."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import httpx
from testenv import APP_PORT

STATE_DIR = Path(os.environ["ROLLOUT_STATE_DIR"])


def demo_at_start(postgres, slack_out: Path):
    """The demo system at its starting point (data and app of 1.0.0, in STATE_DIR), an empty ledger and Slack log; its profile.

    `postgres` is the session's cluster (the `postgres` fixture), `slack_out` the Slack receiver's log (the `slack` fixture).
    """
    from airflow_rollout.config import load_profile
    from airflow_rollout.ledger import Ledger
    from devtools import demo_system

    profile = load_profile("demo")
    ledger = Ledger(conn_id=profile.ledger_conn_id)
    ledger.ensure_schema()
    postgres.psql(
        "rollout_ledger",
        "TRUNCATE rollout_release, rollout_lock, rollout_notification, rollout_scheduled_backup, rollout_drill,"
        " rollout_maintenance_finding, rollout_unlock CASCADE",
    )
    slack_out.write_text("")
    demo_system.reset(profile, STATE_DIR)
    return profile


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


def databases(postgres) -> set[str]:
    """The databases on the session's cluster (the `postgres` fixture)."""
    return set(postgres.psql("postgres", "SELECT datname FROM pg_database").split())


def snapshot_name(profile, release_id: str, version: str) -> str:
    """The database copy a release of the demo (`profile`, loaded before the `database_copy` fixture chose the copy) at
    `version` keeps for its rollback."""
    from airflow_rollout.targets.postgres import PostgresDataTarget, Snapshot

    config = profile.data_targets[0].model_copy(update={"snapshot": Snapshot.DATABASE_COPY})
    name = PostgresDataTarget(config=config).snapshot_name(release_id, version)
    assert name is not None, "the profile keeps no database copy"
    return name


def slack_links(payload: dict) -> dict[str, str]:
    """Label -> URL of each link in a Slack message's Block Kit blocks (`<url|label>` in their mrkdwn)."""
    texts = [block["text"]["text"] for block in payload["blocks"] if "text" in block]
    texts += [element["text"] for block in payload["blocks"] for element in block.get("elements", [])]
    return {label: url for text in texts for url, label in re.findall(r"<([^<>|]+)\|([^<>]+)>", text)}


def airflow_pages(base_url: str, run_id: str, system: str = "demo") -> tuple[str, str]:
    """The release's page in the Releases dashboard and its run's page in Airflow, under `base_url`."""
    run = quote(run_id, safe="")
    return f"{base_url}/rollout/systems/{system}/releases/{run}", f"{base_url}/dags/release/runs/{run}"


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def ledger():
    from airflow_rollout.ledger import Ledger

    return Ledger(conn_id="rollout_ledger")


def checklist_results(run_id: str, system: str, section: str | None = None) -> dict:
    """The release's checklist results (the ledger's evidence), by item text; with `section`, only that section's
    items (a text can recur in two sections, as seed 002's "Enable compression" does, and would be read once)."""
    from airflow_rollout.checklists import load_checklist

    results = ledger().checklist_items(run_id)
    entries = [e for e in load_checklist(system).entries() if e.item_id in results and section in (None, e.section.title)]
    return {e.item.text: results[e.item_id] for e in entries}


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
