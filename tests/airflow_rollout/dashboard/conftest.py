"""Real releases for the dashboard to show, and a client of the plugin's app with Airflow's auth in place.

The releases are the demo's (a), (b) and (c), run once for the module under dag.test() against the session's
PostgreSQL ledger: 1.1.0 promoted, 1.2.0 rolled back (33 % errors), 1.3.0 *investigate* answered "Roll back" in
Required Actions. The app is the one the plugin hands Airflow's API server (`fastapi_apps`), its routes guarded by
the API server's own security dependency; tokens come from Airflow's auth manager (SimpleAuthManager here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from observe import STATE_DIR, ledger

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass(frozen=True)
class Releases:
    promoted: Any  # the DagRun of 1.1.0
    rolled_back: Any  # 1.2.0
    investigated: Any  # 1.3.0, a human chose "Roll back"


def release_dag():
    from airflow.dag_processing.dagbag import DagBag
    from testenv import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags" / "release.py"))
    assert not bag.import_errors
    return bag.dags["release"]


@pytest.fixture(scope="module")
def releases(dags, postgres, slack) -> Iterator[Releases]:
    """The demo from 1.0.0: 1.1.0 promoted, 1.2.0 rolled back, 1.3.0 investigated and rolled back by a human."""
    from hitl import answer, run_with_responder, wait_for_awaiting_input

    from airflow_rollout.config import load_profile
    from devtools import demo_system

    profile = load_profile("demo")
    ledger().ensure_schema()
    postgres.psql(
        "rollout_ledger",
        "TRUNCATE rollout_release, rollout_lock, rollout_notification, rollout_scheduled_backup, rollout_drill,"
        " rollout_maintenance_finding, rollout_unlock CASCADE",
    )
    demo_system.reset(profile, STATE_DIR)
    try:
        promoted = release_dag().test(run_conf={"system": "demo", "version": "1.1.0"})
        rolled_back = release_dag().test(run_conf={"system": "demo", "version": "1.2.0"})

        def operator() -> None:
            run_id = wait_for_awaiting_input("release", "decide.ask_operator")
            answer("release", run_id, "decide.ask_operator", "Roll back", "oncall", "On-call Olga")

        investigated = run_with_responder(lambda: release_dag().test(run_conf={"system": "demo", "version": "1.3.0"}), operator)
        statuses = [ledger().release(run.run_id).status for run in (promoted, rolled_back, investigated)]
        assert statuses == ["promoted", "rolled_back", "rolled_back"]
        yield Releases(promoted, rolled_back, investigated)
    finally:
        demo_system.stop_apps(profile, STATE_DIR)


@pytest.fixture(scope="session")
def auth_manager(airflow_db):
    """Airflow's auth manager as the API server initialises it (the security dependencies ask it for the user)."""
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


@pytest.fixture(scope="session")
def dashboard_app(auth_manager):
    """The app the plugin hands the API server, found through Airflow's plugin manager."""
    from airflow import plugins_manager

    apps, _ = plugins_manager.get_fastapi_plugins()
    [entry] = [app for app in apps if app["url_prefix"] == "/rollout"]
    return entry["app"]


@pytest.fixture(scope="session")
def token(auth_manager) -> str:
    """A JWT of a viewer, from the auth manager, as POST /auth/token returns it."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username="vera", role="viewer"))


def mounted(app):
    """The app mounted under its prefix, as Airflow's API server mounts a plugin's app (`init_plugins`)."""
    from fastapi import FastAPI

    server = FastAPI()
    server.mount("/rollout", app)
    return server


@pytest.fixture(scope="session")
def anonymous(dashboard_app):
    from fastapi.testclient import TestClient

    with TestClient(mounted(dashboard_app)) as client:
        yield client


@pytest.fixture(scope="session")
def client(dashboard_app, token):
    """Signed in with a Bearer token."""
    from fastapi.testclient import TestClient

    with TestClient(mounted(dashboard_app), headers={"Authorization": f"Bearer {token}"}) as signed_in:
        yield signed_in
