"""End to end: releases of a third-party-like service managed by real Alembic (tests/fixtures/alembic_service).

Such a service refuses to start on a database revision its build does not know ("Can't locate revision
identified by ..."), and 1.1.0 runs job workers that ignore SIGTERM and outlive their leader, as gunicorn's
do. So rolling back app and data works only in this order: stop every process of the new version (its whole
process group, SIGKILL for those that ignore SIGTERM), restore the data, start the previous version, verify.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from observe import STATE_DIR, ledger, task_states
from testenv import ALEMBIC_SERVICE, ALEMBIC_SVC_PORT, slack_messages

from devtools import local_postgres

pytestmark = pytest.mark.e2e

SYSTEM = "alembic-svc"
DATABASE = "alembic_svc"
SERVER = str(ALEMBIC_SERVICE / "server.py")
HEADS = {version: build["head"] for version, build in json.loads((ALEMBIC_SERVICE / "releases.json").read_text()).items()}
TABLES_1_0 = {"alembic_version", "authors", "notes", "worker_heartbeats"}
TABLES_1_1 = TABLES_1_0 | {"tags"}


# --- what the tests look at ------------------------------------------------------------------------------


def app(profile):
    from airflow_rollout.targets.local_process import LocalProcessApp

    return LocalProcessApp(config=profile.app_targets[0], system=SYSTEM, state_dir=STATE_DIR)


def fingerprint(profile) -> dict:
    from airflow_rollout.targets.postgres import PostgresDataTarget

    return PostgresDataTarget(config=profile.data_targets[0]).fingerprint()


def served_version() -> str:
    response = httpx.get(f"http://127.0.0.1:{ALEMBIC_SVC_PORT}/version", timeout=5)
    assert response.headers["content-type"] == "text/plain"
    return response.text


def tables(postgres) -> set[str]:
    query = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    return set(postgres.psql(DATABASE, query).split())


def revision(postgres) -> str:
    return postgres.psql(DATABASE, "SELECT version_num FROM alembic_version").strip()


def heartbeats(postgres) -> int:
    return int(postgres.psql(DATABASE, "SELECT count(*) FROM worker_heartbeats"))


@dataclass(frozen=True)
class Started:
    """What a version's server logged when it started: its leader, process group and workers."""

    leader: int
    group: int
    workers: tuple[int, ...]


def last_start(version: str) -> Started:
    log = STATE_DIR / "apps" / SYSTEM / "notes_api" / f"{version}.log"
    pattern = rf"serving {re.escape(version)} at revision \S+ on port \d+: leader pid (\d+), process group (\d+), workers \[([\d, ]*)\]"
    found = re.findall(pattern, log.read_text())
    assert found, f"{version} never served (log {log})"
    leader, group, workers = found[-1]
    return Started(int(leader), int(group), tuple(int(pid) for pid in workers.split(",") if pid.strip()))


def service_processes() -> list[psutil.Process]:
    """Every live process running the service's server on this session's port (a zombie is dead)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if SERVER not in cmdline or "--port" not in cmdline or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if cmdline[cmdline.index("--port") + 1] == str(ALEMBIC_SVC_PORT):
            found.append(proc)
    return found


def version_of(proc: psutil.Process) -> str:
    cmdline = proc.info["cmdline"]  # as service_processes() read it
    return cmdline[cmdline.index("--version") + 1]


def leftovers(version: str) -> list[str]:
    """Live processes of `version`: its leader and workers as logged, any member of its process group, any
    process started with its command line. Worker processes are forks: they keep the leader's command line."""
    started = last_start(version)
    found = []
    for proc in service_processes():
        try:
            group = os.getpgid(proc.pid)
            if proc.pid in {started.leader, *started.workers} or group == started.group or version_of(proc) == version:
                found.append(f"pid {proc.pid} (group {group}): {' '.join(proc.info['cmdline'])}")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def port_users() -> dict[int, set[str]]:
    """pid -> TCP states of the server side of the service's port: who listens there and who holds its connections."""
    users: dict[int, set[str]] = {}
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == ALEMBIC_SVC_PORT and conn.pid is not None:
            users.setdefault(conn.pid, set()).add(conn.status)
    return users


def assert_only_serving(profile, version: str) -> None:
    """`version` runs, started by the package, and every process on its port belongs to its process group."""
    running = app(profile).current()
    assert running is not None and running.version == version
    users = port_users()
    assert any(psutil.CONN_LISTEN in states for states in users.values()), users
    strangers = {pid: (states, " ".join(psutil.Process(pid).cmdline())) for pid, states in users.items() if os.getpgid(pid) != running.pid}
    assert strangers == {}, f"processes outside {version}'s group (leader {running.pid}) hold port {ALEMBIC_SVC_PORT}"
    assert {version_of(proc) for proc in service_processes()} == {version}


def kill_service_processes() -> None:
    """SIGKILL every process group of the service on this session's port: a release under test may leave some."""
    procs = service_processes()
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):  # gone meanwhile, with its group
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


def run_release(dag, version: str):
    return dag.test(run_conf={"system": SYSTEM, "version": version})


# --- the service at its starting point ---------------------------------------------------------------------


@pytest.fixture
def alembic_svc(postgres, slack):
    """Data of 1.0.0 migrated by the service's own `manage.py`, 1.0.0 serving, an empty ledger and Slack log."""
    from airflow_rollout.config import load_profile
    from airflow_rollout.ledger import Ledger
    from airflow_rollout.targets.migrations import CommandMigrator

    postgres.create_database(DATABASE)
    os.environ["AIRFLOW_CONN_ALEMBIC_SVC_DB"] = postgres.airflow_conn_json(DATABASE)
    profile = load_profile(SYSTEM)
    Ledger(conn_id=profile.ledger_conn_id).ensure_schema()
    postgres.psql(
        "rollout_ledger",
        "TRUNCATE rollout_release, rollout_lock, rollout_notification, rollout_scheduled_backup, rollout_drill,"
        " rollout_maintenance_finding CASCADE",
    )
    Path(slack).write_text("")
    kill_service_processes()
    postgres.psql(DATABASE, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    CommandMigrator(config=profile.data_targets[0].migrations, version="1.0.0").run()  # the profile's own command
    app(profile).switch_to("1.0.0")
    assert (revision(postgres), tables(postgres), heartbeats(postgres)) == (HEADS["1.0.0"], TABLES_1_0, 0)
    yield profile
    kill_service_processes()


# --- the service alone --------------------------------------------------------------------------------------


def test_a_version_refuses_a_database_revision_its_build_does_not_know(postgres):
    """What makes the order of a rollback matter: 1.0.0 exits at once on the database 1.1.0 migrated."""
    database = "alembic_svc_unit"
    postgres.create_database(database)
    postgres.psql(database, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    env = {**os.environ, "DATABASE_URL": postgres.uri(database)}
    manage = [sys.executable, str(ALEMBIC_SERVICE / "manage.py"), "migrate", "--version", "1.1.0"]
    migrated = subprocess.run(manage, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert migrated.returncode == 0, migrated.stderr
    assert f"Running upgrade 1f0c2a7d9b3e -> {HEADS['1.1.0']}" in migrated.stderr

    server = [sys.executable, SERVER, "--version", "1.0.0", "--port", str(local_postgres.free_port())]
    started = subprocess.run(server, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert started.returncode == 1
    assert f"Can't locate revision identified by '{HEADS['1.1.0']}'" in started.stderr


# --- releases -------------------------------------------------------------------------------------------------


def test_good_release_migrates_with_alembic_and_is_promoted(release_dag, alembic_svc, postgres):
    dag_run = run_release(release_dag, "1.1.0")

    assert dag_run.state == "success", task_states(dag_run)
    release = ledger().release(dag_run.run_id)
    assert (release.status, release.previous_version, release.decision) == ("promoted", "1.0.0", "proceed")
    assert served_version() == "1.1.0"
    assert httpx.get(f"http://127.0.0.1:{ALEMBIC_SVC_PORT}/health", timeout=5).json()["revision"] == HEADS["1.1.0"]
    assert (revision(postgres), tables(postgres)) == (HEADS["1.1.0"], TABLES_1_1)
    assert leftovers("1.0.0") == []
    assert_only_serving(alembic_svc, "1.1.0")
    started = last_start("1.1.0")
    assert len(started.workers) == 2 and all(psutil.pid_exists(pid) for pid in started.workers)
    assert heartbeats(postgres) > 0  # the workers are at work: what a rollback must stop before it restores
    assert any("1.1.0 promoted (was 1.0.0)" in m for m in slack_messages())


def test_bad_release_is_rolled_back_app_and_data(release_dag, alembic_svc, postgres):
    before = fingerprint(alembic_svc)

    dag_run = run_release(release_dag, "1.2.0")

    release = ledger().release(dag_run.run_id)
    assert release.status == "rolled_back", release.outcome_reason
    assert release.decision == "rollback" and any(r.startswith("error rate 50") for r in release.decision_reasons)
    assert task_states(dag_run)["rollback.restore_data"] == "success"
    assert served_version() == "1.0.0"
    assert (revision(postgres), tables(postgres)) == (HEADS["1.0.0"], TABLES_1_0)  # note_history and tags gone
    assert fingerprint(alembic_svc) == before  # the titles rev 3 rewrote are back too
    assert leftovers("1.2.0") == []
    assert_only_serving(alembic_svc, "1.0.0")
    assert any("1.2.0 rolled back: 1.0.0 is serving again" in m and "fingerprint equal" in m for m in slack_messages())


def test_promoted_release_with_workers_is_rolled_back_by_the_rollback_dag(release_dag, dags, alembic_svc, postgres):
    before = fingerprint(alembic_svc)
    promoted = run_release(release_dag, "1.1.0")
    assert ledger().release(promoted.run_id).status == "promoted"
    assert heartbeats(postgres) > 0

    dag_run = dags["rollback"].test(
        run_conf={
            "system": SYSTEM,
            "version": "1.1.0",
            "release_id": promoted.run_id,
            "reason": "test: roll back the promoted release",
        }
    )

    release = ledger().release(promoted.run_id)
    assert release.status == "rolled_back", release.outcome_reason
    assert dag_run.state == "success", task_states(dag_run)
    assert served_version() == "1.0.0"
    assert (revision(postgres), tables(postgres)) == (HEADS["1.0.0"], TABLES_1_0)
    assert fingerprint(alembic_svc) == before  # the heartbeats of 1.1.0's workers went with the restore
    assert leftovers("1.1.0") == []  # the leader and both workers that ignored SIGTERM
    assert_only_serving(alembic_svc, "1.0.0")
    time.sleep(1)  # five heartbeat periods: a worker still alive anywhere would have written by now
    assert heartbeats(postgres) == 0
    assert any("1.1.0 rolled back: 1.0.0 is serving again" in m and "fingerprint equal" in m for m in slack_messages())
