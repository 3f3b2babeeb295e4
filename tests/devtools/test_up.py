"""`make up` / `make down`: the `.env` it reads, what it refuses, and Airflow over one's own profile, for real.

The end-to-end test starts `python -m devtools.up start` on a free port (not 8080) with a private
`.env`, systems directory, Airflow home and state directory, so it never touches the project's `.env` or
`.state/`. Its one profile names connections that only that `.env` defines. Through the REST API it checks
the release form lists the profile and no DAG file failed to import, then triggers the `backup` DAG for the
profile: its one task connects to the ledger and the data target with the `.env`'s connections, runs
pg_dump, and the run succeeds. A task that ran at all proves its supervisor reached the execution API on
the non-default port (Airflow's default URL is localhost:8080). Then `up stop` must leave no process of
the session it started, within 15 s, and the database password must be in no output, log or file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from devtools import local_postgres, up

ROOT = Path(__file__).resolve().parents[2]
UP = [sys.executable, "-m", "devtools.up"]
SECRET = "Sup3r-s3cret-" + "value-42"  # joined, so that this file holds no secret-looking literal


def write_env(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- .env -----------------------------------------------------------------------------------------------------


def test_connections_are_read_as_docker_compose_reads_them(tmp_path, monkeypatch):
    monkeypatch.setenv("UPTEST_HOST", "db.internal")
    env = write_env(
        tmp_path / ".env",
        "# a comment\n\n"
        "AIRFLOW_UID=50000\n"
        "POSTGRES_PASSWORD=change-me-postgres-password\n"  # docker compose's: not read as a connection
        f'AIRFLOW_CONN_LEDGER=\'{{"conn_type": "postgres", "password": "a$b#c {SECRET}"}}\'\n'
        f"export AIRFLOW_CONN_APP_DB=postgresql://app:{SECRET}@${{UPTEST_HOST}}:5432/app  # inline comment\n"
        'AIRFLOW_CONN_PRICE="http://prices.internal/?q=a$$b"\n',
    )
    read = up.read_env_file(env)
    assert read.connections == {
        "AIRFLOW_CONN_LEDGER": json.dumps({"conn_type": "postgres", "password": f"a$b#c {SECRET}"}),
        "AIRFLOW_CONN_APP_DB": f"postgresql://app:{SECRET}@db.internal:5432/app",
        "AIRFLOW_CONN_PRICE": "http://prices.internal/?q=a$b",
    }
    assert read.conn_ids() == {"ledger", "app_db", "price"}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (f"postgresql://u:{SECRET}@h/db", "expected NAME=value"),  # a value pasted without its name
        (f"AIRFLOW CONN X={SECRET}", "expected NAME=value"),
        (f"AIRFLOW_CONN_db=postgresql://u:{SECRET}@h/db", "write the connection id in capitals, AIRFLOW_CONN_DB"),
        ("AIRFLOW_CONN_DB=", "the value is empty"),
        (f"AIRFLOW_CONN_DB={SECRET}", "expected a JSON object or a URI"),
        (f'AIRFLOW_CONN_DB=\'{{"conn_type": "postgres", "password": "{SECRET}"\'', "not valid JSON"),
        (f'AIRFLOW_CONN_DB=\'{{"host": "h", "password": "{SECRET}"}}\'', '"conn_type"'),
        (f"AIRFLOW_CONN_DB=postgresql://u:{SECRET}@h:port/db", "port is not a number"),
        (f"AIRFLOW_CONN_DB=postgresql://u:{SECRET}@h/db$UNSET_UPTEST", "refers to a variable that is not set"),
        (f"AIRFLOW_CONN_DB=postgresql://u:{SECRET}@h/db${{oops", "the value cannot be read"),
        ("AIRFLOW_CONN_DB=postgresql://u:<password>@h/db", "placeholder"),
    ],
)
def test_a_malformed_line_is_named_by_its_number_and_never_shown(tmp_path, line, says):
    env = write_env(tmp_path / ".env", f"# connections\nAIRFLOW_UID=1\n{line}\n")
    with pytest.raises(up.EnvFileError) as refused:
        up.read_env_file(env)
    message = str(refused.value)
    assert message.startswith(".env, line 3: "), message
    assert says in message
    assert SECRET not in message
    assert "<password>" not in message


def test_every_problem_is_listed_at_once(tmp_path):
    env = write_env(tmp_path / ".env", "AIRFLOW_CONN_A=postgresql://u@h/a\nAIRFLOW_CONN_A=postgresql://u@h/b\nnonsense\n")
    with pytest.raises(up.EnvFileError) as refused:
        up.read_env_file(env)
    assert str(refused.value).splitlines() == [
        ".env, line 2: AIRFLOW_CONN_A is set again (first on line 1)",
        ".env, line 3: expected NAME=value (the line is not shown: it may hold a secret)",
    ]


def test_the_example_env_only_lacks_its_placeholders_replaced():
    with pytest.raises(up.EnvFileError) as refused:
        up.read_env_file(ROOT / ".env.example")
    problems = str(refused.value).splitlines()
    # the ledger, Slack, a data target and what checklist items read, each still a placeholder; docker compose's lines
    # are not connections
    assert [problem.split(": ")[1] for problem in problems] == [
        "AIRFLOW_CONN_ROLLOUT_LEDGER",
        "AIRFLOW_CONN_SLACK_RELEASES",
        "AIRFLOW_CONN_BILLING_DB",
        "AIRFLOW_CONN_ROUTING_PUBLIC",
        "AIRFLOW_CONN_MLOPS_PUBLIC",
        "AIRFLOW_CONN_AI_ETL_PUBLIC",
        "AIRFLOW_CONN_ONTOS_PUBLIC",
        "AIRFLOW_CONN_AI_ETL_REDIS",
        "AIRFLOW_CONN_AI_ETL_CLICKHOUSE",
        "AIRFLOW_CONN_MLOPS_AIRFLOW",
        "AIRFLOW_CONN_AI_ETL_PROMETHEUS",
        "AIRFLOW_CONN_AI_ETL_GRAFANA",
        "AIRFLOW_CONN_ROUTING_GRAFANA",
        "AIRFLOW_CONN_AI_ETL_AIRFLOW",
        "AIRFLOW_CONN_GITHUB",
        "AIRFLOW_CONN_AI_ETL_ALERTMANAGER",
        "AIRFLOW_CONN_AI_ETL_LOKI",
    ]
    assert all("placeholder" in problem for problem in problems)


def _run_up(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*UP, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)


def _clean_environment(**extra: str) -> dict[str, str]:
    """This session's environment without any Airflow setting or connection: `up` must bring its own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.parametrize(
    ("env_text", "says"),
    [(None, "no "), (f"AIRFLOW_CONN_LEDGER=postgresql://u:{SECRET}@h:port/db\n", "line 1: AIRFLOW_CONN_LEDGER: the URI's port")],
)
def test_up_refuses_before_starting_anything(tmp_path, env_text, says):
    env_file = tmp_path / ".env"
    if env_text is not None:
        env_file.write_text(env_text)
    state = tmp_path / "up"
    result = _run_up(["start", "--env-file", str(env_file), "--state-dir", str(state)], _clean_environment(), timeout=60)
    assert result.returncode != 0
    assert "refusing to start, nothing was started" in result.stderr
    assert says in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert not state.exists()


def test_the_execution_api_url_follows_the_port(tmp_path):
    settings = up.airflow_settings(tmp_path, 8093)
    assert settings["AIRFLOW__API__PORT"] == "8093"
    assert settings["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8093"
    assert settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8093/execution/"


def test_each_airflow_serves_its_logs_on_ports_of_its_own(tmp_path):
    first, second = up.airflow_settings(tmp_path, 8093), up.airflow_settings(tmp_path, 8094)
    ports = [settings[f"AIRFLOW__LOGGING__{server}_LOG_SERVER_PORT"] for settings in (first, second) for server in ("WORKER", "TRIGGER")]
    assert len(set(ports)) == 4 and not {"8793", "8794"} & set(ports)


# --- make up, for real ----------------------------------------------------------------------------------------


def _profile(app_port: int) -> dict:
    return {
        "name": "uptest",
        "ledger_conn_id": "uptest_ledger",
        "data_targets": [{"name": "main_db", "kind": "postgres", "conn_id": "uptest_db", "schemas": ["public"]}],
        "app_targets": [{"name": "web", "kind": "local_process", "command": ["{python}", "-m", "http.server", "{port}"], "port": app_port}],
        "checks": [{"name": "health", "kind": "http", "app": "web", "path": "/", "critical": True}],
    }


def _live(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.e2e
def test_up_runs_airflow_over_ones_own_profile_on_another_port_and_down_stops_it(tmp_path, postgres):
    # A role of its own, so that its password is a needle no other test puts anywhere.
    if not postgres.psql("postgres", "SELECT 1 FROM pg_roles WHERE rolname = 'uptest'").strip():
        postgres.psql("postgres", f"CREATE ROLE uptest LOGIN PASSWORD '{SECRET}'")
    for database in ("uptest_ledger", "uptest_data"):
        postgres.create_database(database)
        postgres.psql("postgres", f'ALTER DATABASE "{database}" OWNER TO uptest')
    postgres.psql("uptest_data", "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text); ALTER TABLE items OWNER TO uptest")
    postgres.psql("uptest_data", "INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i ON CONFLICT DO NOTHING")
    systems = tmp_path / "systems"
    systems.mkdir()
    (systems / "uptest.yaml").write_text(yaml.safe_dump(_profile(local_postgres.free_port())))
    ledger = {
        "conn_type": "postgres",
        "host": postgres.host,
        "port": postgres.port,
        "login": "uptest",
        "password": SECRET,
        "schema": "uptest_ledger",
    }
    env_file = write_env(
        tmp_path / "dotenv",
        "# the connections of uptest, and nowhere else\n"
        f"AIRFLOW_CONN_UPTEST_LEDGER='{json.dumps(ledger)}'\n"
        f"AIRFLOW_CONN_UPTEST_DB=postgresql://uptest:{SECRET}@{postgres.host}:{postgres.port}/uptest_data\n",
    )
    port = local_postgres.free_port()
    assert port != up.DEFAULT_PORT
    state = tmp_path / "up"
    environment = _clean_environment(
        AIRFLOW__API__PORT=str(port), ROLLOUT_SYSTEMS_DIR=str(systems), ROLLOUT_STATE_DIR=str(tmp_path / "rollout")
    )
    started = time.monotonic()
    try:
        result = _run_up(["start", "--env-file", str(env_file), "--state-dir", str(state)], environment, timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        startup_seconds = time.monotonic() - started
        password_file = state / "airflow" / up.PASSWORDS_FILE
        assert f"Airflow UI: http://127.0.0.1:{port}" in output
        assert f"Releases dashboard: http://127.0.0.1:{port}/rollout/" in output
        assert str(password_file) in output
        assert "systems: uptest" in output
        assert "warning" not in output  # every connection the profile names is in the .env

        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        token = client.post("/auth/token", json={"username": "admin", "password": json.loads(password_file.read_text())["admin"]})
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        assert client.get("/api/v2/importErrors").json()["total_entries"] == 0
        params = client.get("/api/v2/dags/release/details").json()["params"]
        assert params["system"]["schema"]["enum"] == ["uptest"]
        dags = {dag["dag_id"]: dag for dag in client.get("/api/v2/dags", params={"limit": 100}).json()["dags"]}
        assert not dags["release"]["is_paused"] and not dags["backup"]["is_paused"]
        assert dags["maintenance_daily"]["is_paused"]  # scheduled DAGs wait for the user

        run = client.post("/api/v2/dags/backup/dagRuns", json={"logical_date": None, "conf": {"system": "uptest", "version": "1.0.0"}})
        assert run.is_success, run.text
        run_id = run.json()["dag_run_id"]
        deadline = time.monotonic() + 180
        while (state_now := client.get(f"/api/v2/dags/backup/dagRuns/{run_id}").json()["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"the backup run is still {state_now} after 180 s; see {state / 'airflow.log'}"
            time.sleep(2)
        tasks = client.get(f"/api/v2/dags/backup/dagRuns/{run_id}/taskInstances").json()["task_instances"]
        states = {task["task_id"]: (task["state"], task["try_number"]) for task in tasks}
        assert (state_now, states.get("backup.backup_data")) == ("success", ("success", 1)), f"{states}; see {state / 'airflow'}/logs"
        recorded = postgres.psql("uptest_ledger", f"SELECT target, toc_entries > 0 FROM rollout_backup WHERE release_id = '{run_id}'")
        assert recorded.split() == ["main_db|t"]
    finally:
        pid = up.running_pid("airflow", state)
        before = up.session_processes(pid) if pid else []
        stopping = time.monotonic()
        stopped = _run_up(["stop", "--state-dir", str(state)], environment, timeout=60)
        stop_seconds = time.monotonic() - stopping
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert pid is not None and len(before) >= 5  # standalone, scheduler, dag-processor, api-server, triggerer, ...
    assert up.session_processes(pid) == []
    assert _live(before) == []
    assert stop_seconds < 15, f"make down took {stop_seconds:.1f} s"
    assert not (state / "pids" / "airflow").exists()

    leaks = [
        str(path)
        for path in [*state.rglob("*"), *(tmp_path / "rollout").rglob("*")]
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert SECRET not in output
    assert leaks == []
    print(f"up: {startup_seconds:.0f} s to a parsed Airflow; down: {stop_seconds:.1f} s")
