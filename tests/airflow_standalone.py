"""A real `airflow standalone` for a test module: `python -m devtools.up start` on a free port, private state.

What `make up` does, with a private `.env` (the connections given), systems directory, Airflow home and
state directory, so that it never touches the project's `.env` or `.state/`. `running_standalone` yields it
logged in as admin and stops it with `up stop` on the way out, also when it did not come up or a test failed,
and then checks that no process of its session is left.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from testenv import ROOT, SYSTEMS_DIR

from devtools import local_postgres, up

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path


@dataclass
class Standalone:
    state: Path
    api: up.AirflowApi
    passwords: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.api.base_url

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    def as_user(self, user: str) -> up.AirflowApi:
        api = up.AirflowApi(self.api.base_url, self.api.log)
        api.login(user, self.passwords[user])
        return api


def up_command(
    action: str, state: Path, env: Mapping[str, str], *extra: str, timeout: float, tool: str = "devtools.up"
) -> subprocess.CompletedProcess[str]:
    """`python -m devtools.up <action> --state-dir <state> ...`, as `make up` / `make down` run it (or another `tool`)."""
    return subprocess.run(
        [sys.executable, "-m", tool, action, "--state-dir", str(state), *extra],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def running_standalone(
    base: Path,
    systems: Path,
    connections: Mapping[str, str],
    metadata: local_postgres.LocalPostgres,
    *,
    users: str | None = None,
    **settings: str,
) -> Iterator[Standalone]:
    """`make up` in `base` over the profiles in `systems` with `connections` (AIRFLOW_CONN_<ID> -> value) as its `.env`.

    Its metadata database is one of its own on `metadata` (the session's PostgreSQL), as a production Airflow's is:
    on `up`'s default SQLite a release's many mapped tasks, its scheduler and the API contend for SQLite's one writer,
    and an answer to a sign-off failed after SQLite's 5 s busy timeout (HTTP 500).

    `users` is SimpleAuthManager's user list (`admin:admin,alice:user`); `settings` are more environment variables
    (ROLLOUT_STATE_DIR, ...). Everything of the session's environment that starts with AIRFLOW is left out: `up`
    brings Airflow's own settings.
    """
    env_file = base / "dotenv"
    env_file.write_text("".join(f"{name}='{value}'\n" for name, value in connections.items()))
    port = local_postgres.free_port()
    state = base / "up"
    database = "airflow_" + re.sub(r"[^a-z0-9_]", "_", base.name.lower())
    metadata.create_database(database)
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")},
        "PYTHONPATH": str(ROOT),  # for `devtools.up` itself; it gives Airflow an empty PYTHONPATH
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__PARALLELISM": "4",  # what `up` sets anyway
        "ROLLOUT_SYSTEMS_DIR": str(systems),
        up.METADATA_DB_VARIABLE: metadata.uri(database).replace("postgresql://", "postgresql+psycopg2://", 1),
        **({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users} if users else {}),
        **settings,
    }
    pid = None
    try:
        starting = time.monotonic()
        started = up_command("start", state, env, "--env-file", str(env_file), timeout=300)
        print(f"airflow standalone up and every DAG parsed in {time.monotonic() - starting:.0f} s")
        pid = up.running_pid("airflow", state)
        assert started.returncode == 0, f"{started.stdout}{started.stderr}; see {state / 'airflow.log'}"
        assert "warning" not in started.stdout, started.stdout  # every connection the profiles name is in the .env
        passwords = json.loads((state / "airflow" / up.PASSWORDS_FILE).read_text())
        api = up.AirflowApi(up.ui_url(port), state / "airflow.log")
        api.login("admin", passwords["admin"])
        assert api.import_errors() == []
        yield Standalone(state=state, api=api, passwords=passwords)
    finally:  # also when it did not come up, or a test failed
        pid = pid or up.running_pid("airflow", state)
        stopped = up_command("stop", state, env, timeout=60)
        left = up.session_processes(pid) if pid else []
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert left == [], f"processes of airflow standalone's session {pid} left running: {left}"


@contextmanager
def fixture_at_module_scope(definition: Any, *args: Any) -> Iterator[Any]:
    """A function-scoped fixture of another test module, run once for a standalone's module: set up, yield, torn down."""
    made = definition.__wrapped__(*args)
    if not inspect.isgenerator(made):
        yield made
        return
    try:
        yield next(made)
    finally:
        # As pytest ends a fixture: resumed past its `yield`, so the code there runs. close() would raise GeneratorExit
        # at the `yield` instead, skipping every line after it that is not in a `finally` or `with` (it left a Redis
        # master and replica running after each Kubernetes standalone module).
        for _ in made:
            raise AssertionError(f"{definition.__name__} yields more than once")


@contextmanager
def standalone_for(
    system: str, base: Path, connections: Iterable[str], metadata: local_postgres.LocalPostgres, **settings: str
) -> Iterator[Standalone]:
    """`running_standalone` over one shipped profile, as the session wrote it (its urls on free ports), with the
    connections named (AIRFLOW_CONN_<ID> from this process's environment), the profile's approvers as users and a
    private ROLLOUT_STATE_DIR."""
    from airflow_rollout.config import load_profile

    systems = base / "systems"
    systems.mkdir()
    document = yaml.safe_load((SYSTEMS_DIR / f"{system}.yaml").read_text())
    # On a shared two-core machine the latency probe's p95 swings by 2-3x between releases (a full run saw 81 ms, then
    # 139 ms, roll a good release back); these tests are about real workers and the triggerer, decision.py's rules
    # have their own.
    document.setdefault("rollback_criteria", {})["latency_min_delta_ms"] = 60_000
    (systems / f"{system}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    approvers = sorted({approver.id for listed in load_profile(system).sign_off.roles.values() for approver in listed})
    users = ",".join(["admin:admin", *(f"{user}:user" for user in approvers)])
    env = {f"AIRFLOW_CONN_{conn}": os.environ[f"AIRFLOW_CONN_{conn}"] for conn in connections}
    with running_standalone(base, systems, env, metadata, users=users, ROLLOUT_STATE_DIR=str(base / "rollout"), **settings) as airflow:
        yield airflow


def scheduler_saw_exit(airflow: Standalone, state: str) -> set[str]:
    """Ids of the task instances whose worker's exit the scheduler processed while they were in `state` (its log).

    A Required Action answered before the scheduler saw the worker that parked the task exit is lost to a race in
    Airflow 3.3.2: the answer sets the task instance to scheduled, the scheduler queues it again under the same
    key, then reads the parked worker's exit, which takes that key off the executor's running set, and fails the
    queued task as "state changed externally" (scheduler_job_runner._process_executor_events guards only the
    still-scheduled case). Answer only the task instances listed here.
    """
    found = re.compile(rf"TaskInstance Finished: .*\bti_id=([0-9a-f-]+), .*\bstate={state}, ")
    with airflow.api.log.open(errors="replace") as log:
        return {match.group(1) for line in log if (match := found.search(line))}


def task_states(airflow: Standalone, dag_id: str, run_id: str) -> dict[str, str | None]:
    """Every task instance of the run by task id (`task[map_index]` when mapped) and its state, as the REST API says."""
    response = airflow.api.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 200})
    response.raise_for_status()
    return {
        f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: ti["state"]
        for ti in response.json()["task_instances"]
    }


def answer_sign_offs(airflow: Standalone, run_id: str) -> None:
    """Approve each sign-off waiting for input, as the user it is assigned to; anything else waiting is a failure.

    Only once the scheduler has seen the worker that parked the task exit: an answer given before that is lost to a
    race in Airflow 3.3.2 (scheduler_saw_exit).
    """
    from airflow_rollout.tasks import APPROVE_OPTION

    response = airflow.api.client.get(f"/api/v2/dags/release/dagRuns/{run_id}/hitlDetails", params={"response_received": False})
    response.raise_for_status()
    waiting = [detail for detail in response.json()["hitl_details"] if detail["task_instance"]["state"] == "awaiting_input"]
    if not waiting:
        return
    parked = scheduler_saw_exit(airflow, "awaiting_input")
    for detail in waiting:
        ti = detail["task_instance"]
        assert ti["task_id"] == "sign_off.sign_off", f"{ti['task_id']} waits for a human: {detail['subject']}\n{detail['body']}"
        if ti["id"] not in parked:
            continue
        [user] = [assigned["id"] for assigned in detail["assigned_users"]]
        answered = airflow.as_user(user).client.patch(
            f"/api/v2/dags/release/dagRuns/{run_id}/taskInstances/sign_off.sign_off/{ti['map_index']}/hitlDetails",
            json={"chosen_options": [APPROVE_OPTION], "params_input": {}},
        )
        assert answered.is_success, f"{user} could not sign off {ti['rendered_map_index']}: HTTP {answered.status_code} {answered.text}"


RELEASE_TIMEOUT = 600  # a release here takes a few minutes on two cores; this bounds a hang, not the expected run


def release_seen_deferred(
    airflow: Standalone, system: str, version: str, task_id: str, waited_for_runs: Callable[[], object]
) -> tuple[str, list[dict[str, Any]]]:
    """Trigger a release as the UI form does, sign it off, wait for its end; (run id, the task instance `task_id` each
    time it was seen `deferred` while `waited_for_runs()` said the outside operation it waits for still ran)."""
    run_id = airflow.api.trigger("release", {"system": system, "version": version})
    seen: list[dict[str, Any]] = []

    def finished() -> bool:
        answer_sign_offs(airflow, run_id)
        ti = airflow.api.client.get(f"/api/v2/dags/release/dagRuns/{run_id}/taskInstances/{task_id}")
        if ti.is_success and ti.json()["state"] == "deferred" and waited_for_runs():
            seen.append(ti.json())
        return airflow.api.run_state("release", run_id) in {"success", "failed"}

    airflow.api.wait(f"release {version} ({run_id})", finished, timeout=RELEASE_TIMEOUT)
    return run_id, seen


def assert_promoted_after_one_deferred_try(
    airflow: Standalone, run_id: str, seen: list[dict[str, Any]], task_id: str, trigger: str
) -> None:
    """The release was promoted; `task_id` was seen deferred with `trigger` in its first try, and its step has one
    attempt in the ledger: the deferral resumed the same try instead of retrying it."""
    from observe import ledger

    record = ledger().release(run_id)
    assert record.status == "promoted", f"{record}; tasks: {task_states(airflow, 'release', run_id)}; logs in {airflow.airflow_home}"
    assert seen, f"{task_id} was never seen deferred while what it waits for ran"
    assert {ti["trigger"]["classpath"] for ti in seen} == {trigger}
    assert {ti["try_number"] for ti in seen} == {1}
    phase, step = task_id.split(".")
    [attempt] = [s for s in ledger().step_attempts(run_id) if (s.phase, s.step) == (phase, step)]
    assert (attempt.status, attempt.try_number) == ("succeeded", 1), attempt
