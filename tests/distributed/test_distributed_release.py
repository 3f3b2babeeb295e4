"""Releases on a distributed Airflow: CeleryExecutor, two workers on two hostnames, a real broker, no Docker.

One cluster for the module, started as `make distributed` starts it (`python -m devtools.distributed start`, private
state, a free port): the metadata database on PostgreSQL, Redis as the broker, and the API server, scheduler, DAG
processor, triggerer and the Celery workers `worker-a` and `worker-b` as processes of their own, each worker in a UTS
namespace under its own hostname, sharing ROLLOUT_STATE_DIR. The demo system (the profile `make demo` releases) at
1.0.0 before each test, the session's PostgreSQL holding its data and the ledger.

The production DAGs are unchanged. A cluster policy of the tests' own (`airflow_local_settings.py` in the cluster's
`$AIRFLOW_HOME/config`, which Airflow puts on every component's path) routes three steps by queue: the backup to
worker-a's queue, the deploy and the restore to worker-b's; every other task goes to the shared `default` queue, which
both consume. The ledger records the host of each step attempt, so each test reads from it which worker ran what.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from airflow_standalone import Standalone, answer_sign_offs, task_states, up_command
from observe import STATE_DIR, app_pid, demo_at_start, fingerprint, ledger, served_version
from testenv import MIGRATIONS_DIR, RELEASES_DIR, SESSION_DIR, SYSTEMS_DIR

from devtools import demo_system, distributed, local_postgres, up

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.distributed

CONNECTIONS = ("AIRFLOW_CONN_ROLLOUT_LEDGER", "AIRFLOW_CONN_DEMO_DB", "AIRFLOW_CONN_SLACK_DEMO", "AIRFLOW_CONN_SLACK_FILES")
WORKER_A, WORKER_B = distributed.WORKERS
ROUTES = {"backup.backup_data": WORKER_A, "deploy.deploy_apps": WORKER_B, "rollback.restore_data": WORKER_B}
POLICY = f'''"""The distributed tests' cluster policy: a few steps routed to one worker's queue by task id."""

ROUTES = {ROUTES!r}


def task_policy(task):
    if task.task_id in ROUTES:
        task.queue = ROUTES[task.task_id]
'''
TOOL = "devtools.distributed"  # what `make distributed` runs
TERMINAL = {"success", "failed"}
RELEASE_TIMEOUT = 900  # a release here takes a few minutes on two cores; this bounds a hang, not the expected run
# A killed worker's task is found by its missing heartbeats: 30 s here instead of Airflow's 300 (the supervisor beats
# every [workers] min_heartbeat_interval, 5 s).
HEARTBEAT_TIMEOUT = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
}


@dataclass
class Cluster(Standalone):
    """The cluster as the tests reach it, and how it was started (to start a worker again with the same settings)."""

    env: dict[str, str]
    env_file: Path

    def start_worker(self, name: str) -> None:
        started = up_command("start-worker", self.state, self.env, name, "--env-file", str(self.env_file), timeout=300, tool=TOOL)
        assert started.returncode == 0, started.stdout + started.stderr


@pytest.fixture(scope="module")
def cluster(postgres, slack) -> Iterator[Cluster]:
    """`python -m devtools.distributed start` over the demo profile alone; stopped on the way out, nothing left running.

    Its state is in the session's directory, not pytest's: the metadata database's server runs as another user, and
    each pytest run (another checkout's, on a shared machine) makes pytest's temporary root private to root again.
    """
    base = SESSION_DIR / "distributed"
    systems = base / "systems"
    systems.mkdir(parents=True)
    shutil.copy(SYSTEMS_DIR / "demo.yaml", systems)  # the profile as the session wrote it: its app on a free port
    document = yaml.safe_load((systems / "demo.yaml").read_text())
    # On a shared two-core machine the latency probe's p95 swings by 2-3x between releases; these tests are about where
    # tasks run, decision.py's rules have tests of their own.
    document["rollback_criteria"]["latency_min_delta_ms"] = 60_000
    (systems / "demo.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    state = base / "cluster"
    (state / "airflow" / "config").mkdir(parents=True)
    (state / "airflow" / "config" / "airflow_local_settings.py").write_text(POLICY)
    env_file = base / "dotenv"
    env_file.write_text("".join(f"{name}='{os.environ[name]}'\n" for name in CONNECTIONS))
    port = local_postgres.free_port()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")},
        "PYTHONPATH": str(distributed.PROJECT_ROOT),  # for `devtools.distributed` itself; Airflow's processes get none
        "AIRFLOW__API__PORT": str(port),
        "ROLLOUT_SYSTEMS_DIR": str(systems),
        "ROLLOUT_STATE_DIR": str(STATE_DIR),  # where the demo app's pid file is, shared by every component
        **HEARTBEAT_TIMEOUT,
    }
    profile = demo_at_start(postgres, slack)
    try:
        started = up_command("start", state, env, "--env-file", str(env_file), timeout=600, tool=TOOL)
        assert started.returncode == 0, f"{started.stdout}{started.stderr}; see {state}"
        passwords = json.loads((state / "airflow" / up.PASSWORDS_FILE).read_text())
        api = up.AirflowApi(up.ui_url(port), state / "scheduler.log")  # scheduler_saw_exit reads the scheduler's log
        api.login("admin", passwords["admin"])
        assert api.import_errors() == []
        yield Cluster(state=state, api=api, passwords=passwords, env=env, env_file=env_file)
    finally:  # also when it did not come up, or a test failed
        pids = {name: up.running_pid(name, state) for name in ("redis", *distributed.COMPONENTS, *distributed.WORKERS)}
        stopped = up_command("stop", state, env, timeout=180, tool=TOOL)
        left = {name: alive for name, pid in pids.items() if pid and (alive := up.session_processes(pid))}
        demo_system.stop_apps(profile, STATE_DIR)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert left == {}, f"processes left running: {left}"


def release(cluster: Cluster, version: str, *, meanwhile: tuple[Callable[[str], bool], ...] = ()) -> tuple[str, str, Any]:
    """Trigger a release as the UI form does, sign it off, wait for its end; (run id, run state, ledger record).

    `meanwhile` are what a test does to the cluster while it runs, in order: each is called with the run id until it
    returns True (done), then the next.
    """
    run_id = cluster.api.trigger("release", {"system": "demo", "version": version})
    started = time.monotonic()
    pending = list(meanwhile)

    def finished() -> bool:
        answer_sign_offs(cluster, run_id)
        while pending and pending[0](run_id):
            pending.pop(0)
        return cluster.api.run_state("release", run_id) in TERMINAL

    cluster.api.wait(f"release {version} ({run_id})", finished, timeout=RELEASE_TIMEOUT)
    print(f"release {version}: {time.monotonic() - started:.0f} s on the distributed Airflow")
    assert not pending, f"release {version} ended before the test's actions were done"
    return run_id, cluster.api.run_state("release", run_id), ledger().release(run_id)


def hosts(run_id: str) -> dict[str, list[str | None]]:
    """The host of each attempt of each step, `phase.step` -> [host of attempt 1, host of attempt 2, ...]."""
    ran: dict[str, list[str | None]] = {}
    for attempt in ledger().step_attempts(run_id):
        ran.setdefault(f"{attempt.phase}.{attempt.step}", []).append(attempt.hostname)
    return ran


def assert_every_step_ran_on_a_worker(run_id: str) -> dict[str, list[str | None]]:
    ran = hosts(run_id)
    print(json.dumps(ran, indent=1))
    assert {host for attempts in ran.values() for host in attempts} <= set(distributed.WORKERS), ran
    return ran


def test_good_release_is_promoted_with_its_steps_spread_over_both_workers(cluster, postgres, slack):
    demo_at_start(postgres, slack)

    run_id, state, record = release(cluster, "1.1.0")

    assert (state, record.status) == ("success", "promoted"), f"{record}; tasks: {task_states(cluster, 'release', run_id)}"
    assert served_version() == "1.1.0"
    ran = assert_every_step_ran_on_a_worker(run_id)
    assert ran["backup.backup_data"] == [WORKER_A]
    assert ran["deploy.deploy_apps"] == [WORKER_B]
    assert ran["migrate.migrate_data"][0] in distributed.WORKERS  # the shared queue: whichever worker was free


def test_backup_taken_on_one_worker_is_restored_by_the_other(cluster, postgres, slack):
    from airflow_rollout.ledger import FingerprintStage

    profile = demo_at_start(postgres, slack)
    before = fingerprint(profile)

    run_id, state, record = release(cluster, "1.2.0")  # one request in three fails: rolled back

    assert record.status == "rolled_back", f"{record}; tasks: {task_states(cluster, 'release', run_id)}"
    assert state == "failed"  # report_outcome is red when the version did not ship
    ran = assert_every_step_ran_on_a_worker(run_id)
    assert ran["backup.backup_data"] == [WORKER_A]
    assert ran["rollback.restore_data"] == [WORKER_B]  # from the backup worker-a wrote to the shared state directory
    backup = ledger().backup(run_id, "app_db")
    assert backup is not None and backup.location.startswith(str(STATE_DIR))
    restored = ledger().fingerprint(run_id, "app_db", FingerprintStage.AFTER_RESTORE)
    assert restored is not None and restored == ledger().fingerprint(run_id, "app_db", FingerprintStage.BEFORE)
    assert fingerprint(profile) == before
    assert served_version() == "1.0.0"


@pytest.fixture
def slow_migration() -> Iterator[str]:
    """Version 1.1.1: 1.1.0's migration, then one of its own that holds its transaction for a while (the moment to
    kill the worker running it). Its build and migrations are removed afterwards."""
    version = "1.1.1"
    (RELEASES_DIR / f"{version}.json").write_text(
        json.dumps({"description": "1.1.0 and a slow migration", "columns": ["priority"], "schema_revisions": ["1.0.0", "1.1.0", version]})
    )
    (MIGRATIONS_DIR / version).mkdir()
    (MIGRATIONS_DIR / version / "0001_slow.sql").write_text(
        f"-- {version}: a long migration (a backfill, say), here a sleep inside its transaction.\n"
        "INSERT INTO items (id, name) SELECT max(id) + 1, 'added by 1.1.1' FROM items;\n"
        f"UPDATE schema_revision SET revision = '{version}';\n"
        "SELECT pg_sleep(20);\n"
    )
    yield version
    (RELEASES_DIR / f"{version}.json").unlink()
    shutil.rmtree(MIGRATIONS_DIR / version)


def watch_deferred(cluster: Cluster, task_id: str, seen: list[dict[str, Any]]) -> Callable[[str], bool]:
    """A `meanwhile` action of `release`: adds the task instance to `seen` when it is deferred; done once it was."""

    def deferred(run_id: str) -> bool:
        ti = cluster.api.client.get(f"/api/v2/dags/release/dagRuns/{run_id}/taskInstances/{task_id}")
        if ti.is_success and ti.json()["state"] == "deferred":
            seen.append(ti.json())
        return bool(seen)

    return deferred


@pytest.fixture
def slow_start() -> Iterator[str]:
    """Version 1.1.2: 1.1.0's build, warming up 12 s before it listens (loading a model, say): longer than a task waits
    for readiness itself. Its build is removed afterwards."""
    version = "1.1.2"
    build = {"description": "1.1.0, slow to start", "columns": ["priority"], "schema_revisions": ["1.0.0", "1.1.0"], "warmup_seconds": 12}
    (RELEASES_DIR / f"{version}.json").write_text(json.dumps(build))
    yield version
    (RELEASES_DIR / f"{version}.json").unlink()


def test_a_slow_start_is_waited_for_by_the_triggerer_and_the_same_try_finishes_the_deploy(cluster, postgres, slack, slow_start):
    """While the new version warms up, deploy_apps is `deferred` (no worker slot held) with our AppReadyTrigger in the
    triggerer process, which builds the app from its profile config and reads the shared state directory; then the
    same try runs on a worker again, finds the process it started ready, and the release is promoted."""
    demo_at_start(postgres, slack)
    seen: list[dict[str, Any]] = []
    deploy_deferred = watch_deferred(cluster, "deploy.deploy_apps", seen)

    run_id, state, record = release(cluster, slow_start, meanwhile=(deploy_deferred,))

    assert (state, record.status) == ("success", "promoted"), f"{record}; tasks: {task_states(cluster, 'release', run_id)}"
    assert {ti["trigger"]["classpath"] for ti in seen} == {"airflow_rollout.triggers.AppReadyTrigger"}
    assert {ti["try_number"] for ti in seen} == {1}
    [deploy] = [s for s in ledger().step_attempts(run_id) if (s.phase, s.step) == ("deploy", "deploy_apps")]
    assert (deploy.status, deploy.try_number, deploy.hostname) == ("succeeded", 1, WORKER_B), deploy
    assert served_version() == slow_start


@pytest.fixture
def stubborn_build() -> Iterator[str]:
    """Version 1.0.1: 1.0.0's build with two pre-forked workers that finish "their jobs" on SIGTERM, so only SIGKILL
    stops them (as a job runner's workers may). Its build is removed afterwards."""
    version = "1.0.1"
    build = {"description": "1.0.0, workers deaf to SIGTERM", "schema_revisions": ["1.0.0"], "workers": 2, "workers_ignore_sigterm": True}
    (RELEASES_DIR / f"{version}.json").write_text(json.dumps(build))
    yield version
    (RELEASES_DIR / f"{version}.json").unlink()


def test_a_stop_grace_period_is_waited_out_by_the_triggerer_then_what_is_left_is_killed(cluster, postgres, slack, stubborn_build):
    """The version running when the release starts has workers deaf to SIGTERM: while its grace period
    (stop_timeout_seconds, 15 s) runs, deploy_apps is `deferred` with our ProcessesGoneTrigger in the triggerer; then
    the same try kills what is left, starts 1.1.0, and the release is promoted with no process of the old build left."""
    import psutil

    from airflow_rollout.targets.local_process import LocalProcessApp

    profile = demo_at_start(postgres, slack)
    running = LocalProcessApp(config=profile.app_targets[0], system="demo", state_dir=STATE_DIR)
    running.switch_to(stubborn_build)  # the version in production before this release, outside Airflow
    leader = psutil.Process(app_pid(profile))
    stubborn = [leader, *leader.children(recursive=True)]
    assert len(stubborn) == 3, stubborn  # the leader and its two workers
    seen: list[dict[str, Any]] = []
    deploy_deferred = watch_deferred(cluster, "deploy.deploy_apps", seen)

    run_id, state, record = release(cluster, "1.1.0", meanwhile=(deploy_deferred,))

    assert (state, record.status) == ("success", "promoted"), f"{record}; tasks: {task_states(cluster, 'release', run_id)}"
    assert {ti["trigger"]["classpath"] for ti in seen} == {"airflow_rollout.triggers.ProcessesGoneTrigger"}
    assert {ti["try_number"] for ti in seen} == {1}
    [deploy] = [s for s in ledger().step_attempts(run_id) if (s.phase, s.step) == ("deploy", "deploy_apps")]
    assert (deploy.status, deploy.try_number) == ("succeeded", 1), deploy
    assert [p.pid for p in stubborn if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert served_version() == "1.1.0"


def kill_worker(cluster: Cluster, name: str) -> None:
    """SIGKILL to every process of the worker's session (the Celery main process, its pool, the task supervisor and the
    task runner), as when its machine dies: nothing of it gets to clean up."""
    pid = up.running_pid(name, cluster.state)
    assert pid is not None, f"{name} is not running"
    members = up.session_processes(pid)
    for member in members:
        os.kill(member, signal.SIGKILL)
    print(f"killed {name}: processes {members}")


def migration_running(postgres) -> bool:
    """The slow migration is inside its transaction now (PostgreSQL shows its sleep)."""
    return (
        postgres.psql("demo", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()").strip()
        != "0"
    )


def test_worker_killed_during_the_migration_is_replaced_by_the_other(cluster, postgres, slack, slow_migration):
    profile = demo_at_start(postgres, slack)
    killed: list[str] = []

    def kill_the_migrating_worker(run_id: str) -> bool:
        if not migration_running(postgres):
            return False
        [host] = hosts(run_id)["migrate.migrate_data"]
        assert host in distributed.WORKERS
        kill_worker(cluster, host)
        killed.append(host)
        return True

    def start_it_again_once_the_retry_runs(run_id: str) -> bool:
        """As compose's `restart: always` does; the deploy that follows is routed to worker-b's queue."""
        if len(hosts(run_id)["migrate.migrate_data"]) < 2:
            return False
        cluster.start_worker(killed[0])
        return True

    run_id, state, record = release(cluster, slow_migration, meanwhile=(kill_the_migrating_worker, start_it_again_once_the_retry_runs))

    [victim] = killed
    survivor = next(name for name in distributed.WORKERS if name != victim)
    ran = assert_every_step_ran_on_a_worker(run_id)
    assert ran["migrate.migrate_data"] == [victim, survivor], ran  # retried on the other worker
    attempts = [a for a in ledger().step_attempts(run_id) if a.step == "migrate_data"]
    assert [a.status for a in attempts] == ["running", "succeeded"]  # the killed attempt never finished
    # Each migration applied once: 1.1.0's ALTER TABLE would fail a second time, and the row 1.1.1 adds is there once.
    assert ledger().migrations(run_id) == ["app_db: 1.1.0/0001_add_priority.sql", "app_db: 1.1.1/0001_slow.sql"]
    assert postgres.psql("demo", "SELECT count(*) FROM items WHERE name = 'added by 1.1.1'").strip() == "1"
    # Then the checks decide, as for any release: 1.1.1 serves as 1.1.0 does, so it is promoted.
    assert (state, record.status) == ("success", "promoted"), f"{record}; tasks: {task_states(cluster, 'release', run_id)}"
    assert served_version() == slow_migration
    assert "priority integer" in fingerprint(profile)["public.items"]["columns"]
