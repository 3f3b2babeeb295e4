"""Shared fixtures: a real local PostgreSQL, a Slack receiver, a migrated Airflow metadata database,
the parsed DAGs and the demo system at its starting point."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from observe import STATE_DIR, demo_at_start
from testenv import ROOT, SESSION_DIR, SLACK_OUT, SLACK_PORT  # first: it sets Airflow's environment

from devtools import local_postgres, slack_receiver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture(scope="session", autouse=True)
def record_failing_checks() -> Iterator[None]:
    """Every check that returns a failure in any test is noted for `make checklists`' "proven failing" column.

    The runners and evidence functions are wrapped where `evaluate` looks them up at each call (its registries),
    so tests that imported `evaluate` itself, or run items through a release, are all seen.
    """
    from airflow_rollout import checklist_run, evidence
    from airflow_rollout.checklists import PythonItemCheck
    from devtools.checklist_summary import record_failure

    def recording_runner(run: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def runner(ctx: Any, check: Any) -> Any:
            found = run(ctx, check)
            if not found.passed:
                record_failure(check)
            return found

        return runner

    def recording_function(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(ctx: Any, **args: Any) -> Any:
            found = function(ctx, **args)
            if not found.passed:
                record_failure(PythonItemCheck(kind="python", function=name, args=args))
            return found

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        for kind, run in list(checklist_run.RUNNERS.items()):
            patch.setitem(checklist_run.RUNNERS, kind, recording_runner(run))
        for name, function in list(evidence.EVIDENCE.items()):
            patch.setitem(evidence.EVIDENCE, name, recording_function(name, function))
        yield


@pytest.fixture(scope="session")
def postgres() -> Iterator[local_postgres.LocalPostgres]:
    cluster = local_postgres.start(SESSION_DIR / "postgres")
    for database in ("rollout_ledger", "demo"):
        cluster.create_database(database)
    os.environ["AIRFLOW_CONN_ROLLOUT_LEDGER"] = cluster.airflow_conn_json("rollout_ledger")
    os.environ["AIRFLOW_CONN_DEMO_DB"] = cluster.airflow_conn_json("demo")
    yield cluster
    local_postgres.stop(SESSION_DIR / "postgres")


@pytest.fixture(scope="session")
def slack() -> Iterator[Path]:
    server = slack_receiver.make_server(SLACK_PORT, SLACK_OUT)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["AIRFLOW_CONN_SLACK_DEMO"] = slack_receiver.webhook_conn_json(SLACK_PORT)
    os.environ["AIRFLOW_CONN_SLACK_FILES"] = slack_receiver.api_conn_json(SLACK_PORT)
    yield SLACK_OUT
    server.shutdown()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def dags(airflow_db, postgres, slack):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.dags, "no DAG parsed"
    assert not bag.import_errors
    return bag.dags


@pytest.fixture
def release_dag(dags):
    """The release DAG parsed afresh: after a run with Required Actions, the shared DAG object's params kept the
    run's version (a missing one was no longer refused); a scheduler never reuses a DAG object across runs."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "release.py"))
    assert not bag.import_errors
    return bag.dags["release"]


@pytest.fixture
def demo(postgres, slack):
    """The demo system at its starting point (data and app of 1.0.0), an empty ledger and Slack log."""
    from devtools import demo_system

    profile = demo_at_start(postgres, slack)
    yield profile
    demo_system.stop_apps(profile, STATE_DIR)


@pytest.fixture
def database_copy(demo) -> Iterator[None]:
    """The demo profile keeping a copy of its database for a fast rollback (snapshot: database_copy, which needs
    deploy_order: stop_first); put back afterwards."""
    import yaml
    from testenv import SYSTEMS_DIR

    path = SYSTEMS_DIR / "demo.yaml"
    original = path.read_text()
    profile = yaml.safe_load(original)
    profile["data_targets"][0]["snapshot"] = "database_copy"
    path.write_text(yaml.safe_dump({**profile, "deploy_order": "stop_first"}, sort_keys=False))
    yield
    path.write_text(original)


@pytest.fixture(scope="session")
def airflow_api(airflow_db) -> Iterator[str]:
    """A real `airflow api-server` on this session's metadata database; its connection as `airflow_api`."""
    import json
    import secrets
    import signal
    import subprocess
    import sys
    import time

    import httpx

    password = secrets.token_urlsafe(12)
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({"admin": password}))
    port = local_postgres.free_port()
    log = (SESSION_DIR / "api-server.log").open("wb")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("airflow")), "api-server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2).is_success:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"airflow api-server did not come up; see {SESSION_DIR / 'api-server.log'}")
        time.sleep(1)
    os.environ["AIRFLOW_CONN_AIRFLOW_API"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "login": "admin", "password": password, "schema": "http"}
    )
    yield f"http://127.0.0.1:{port}"
    del os.environ["AIRFLOW_CONN_AIRFLOW_API"]
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
    log.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The failed tests' names in build/failures.txt (beside `make test`'s JUnit report): readable after the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    failed = [report.nodeid for kind in ("failed", "error") for report in reporter.stats.get(kind, [])]
    build = ROOT / "build"
    build.mkdir(exist_ok=True)
    (build / "failures.txt").write_text("".join(f"{name}\n" for name in dict.fromkeys(failed)))
