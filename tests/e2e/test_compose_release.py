"""End to end: seeds 003 (Routing ML) and 004 (MLOps), released with their shipped profiles through the docker
compose target, against the `docker` stand-in (services are local processes) and a real PostgreSQL. A
rollback puts back the previous image tag, the database, `models/` and `.env`, byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from observe import SIGN_OFF_ROLES, checklist_results, ledger, run_signed_release
from seed_platforms import (
    MLOPS_ENV_EXAMPLE,
    context,
    mlops_airflow,
    mlops_airflow_connection,
    mlops_env,
    set_up_routing_monitoring,
    shipped_checks,
)
from testenv import ROOT, SERVERS, SESSION_DIR, on_session_server, slack_messages

pytestmark = pytest.mark.e2e

IMAGES = ROOT / "tests" / "fixtures" / "images"


@dataclass(frozen=True)
class Server:
    """One seed system's server as the tests play it: its directory, compose project and tag variables."""

    system: str
    compose_name: str
    project: str
    tags: tuple[str, ...]
    database: str

    @property
    def root(self) -> Path:
        return SERVERS[self.system][1]

    @property
    def compose_file(self) -> Path:
        return self.root / "docker" / self.compose_name

    def compose(self, *args: str, tag: str = "1.0.0") -> str:
        env = {**os.environ, **dict.fromkeys(self.tags, tag)}
        command = ["docker", "compose", "-f", str(self.compose_file), "-p", self.project, *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def running_tags(self) -> dict[str, str]:
        rows = [json.loads(line) for line in self.compose("ps", "--format", "json").splitlines() if line.strip()]
        return {row["Service"]: row["Image"].rsplit(":", 1)[1] for row in rows}

    def files(self) -> dict[str, tuple[bytes, int]]:
        return {
            str(p.relative_to(self.root)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in [self.root / ".env", *sorted((self.root / "models").rglob("*"))]
            if p.is_file()
        }


ROUTING = Server(
    "routing-ml-platform",
    "docker-compose.prod.yml",
    "routing-ml",
    ("BACKEND_TAG", "FRONTEND_TRAINING_TAG", "FRONTEND_PREDICTION_TAG"),
    "routing",
)
MLOPS = Server("mlops-system", "docker-compose.yml", "mlops", ("API_TAG",), "mlops")


@pytest.fixture
def docker_standin(tmp_path, monkeypatch):
    """`docker` on PATH is the stand-in; the seed systems' images are the seed service (and the routing image's alembic)."""
    service = ["{python}", str(IMAGES / "seed_service.py"), "--version", "{version}", "--port", "{port}", "--system"]
    image_map = {
        "routing-ml-backend": {"command": [*service, "routing-backend"], "bin_dir": str(IMAGES / "alembic-app" / "bin")},
        "routing-ml-frontend-training": {"command": [*service, "routing-frontend"], "readiness_path": "/"},
        "routing-ml-frontend-prediction": {"command": [*service, "routing-frontend"], "readiness_path": "/"},
        "mlops-api": {"command": [*service, "mlops-api"]},
    }
    (tmp_path / "images.json").write_text(json.dumps(image_map))
    monkeypatch.setenv("PATH", f"{ROOT / 'devtools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ROLLOUT_DOCKER_STANDIN_IMAGES", str(tmp_path / "images.json"))
    monkeypatch.setenv("ROLLOUT_DOCKER_STANDIN_STATE", str(SESSION_DIR / "docker"))
    monkeypatch.setenv("ROLLOUT_DOCKER_STANDIN_LOG", str(tmp_path / "docker.jsonl"))
    return tmp_path / "docker.jsonl"


def set_up_server(server: Server, postgres, slack) -> None:
    """The server with its compose file, .env (0600) and models; an empty database; Slack and the ledger emptied."""
    subprocess.run(["docker", "compose", "-f", str(server.compose_file), "-p", server.project, "down"], capture_output=True, check=False)
    shutil.rmtree(server.root, ignore_errors=True)
    (server.root / "docker").mkdir(parents=True)
    shipped = (ROOT / "include" / "compose" / server.system / server.compose_name).read_text()
    # The seeds' health interval shortened, so a broken build is found unhealthy a few seconds after its start period
    # instead of half a minute. The start period (20 s, in which failed checks do not count) is kept: shortened to 2 s,
    # a backend slow to start on a loaded machine was declared unhealthy before it could answer.
    compose_text = on_session_server(server.system, shipped).replace("interval: 10s", "interval: 1s")
    if server is MLOPS:  # seed 004's "Log rotation configured": the server's compose file has docker rotate the api's log
        compose_text += "    logging:\n      driver: json-file\n      options: {max-size: 10m, max-file: '3'}\n"
    server.compose_file.write_text(compose_text)
    (server.root / "models" / "default").mkdir(parents=True)
    (server.root / "models" / "default" / "manifest.json").write_text('{"model": "similarity", "features": 42}\n')
    (server.root / "models" / "default" / "encoder.joblib").write_bytes(bytes(range(256)) * 40)
    (server.root / "models" / "registry.db").write_text("model registry written by 1.0.0\n")
    if server is ROUTING:  # a model the training workflow made, with its metrics (seed 003's Medium-term items)
        (server.root / "models" / "v1.0-p2-retrain").mkdir()
        (server.root / "models" / "v1.0-p2-retrain" / "metrics.json").write_text('{"accuracy": 0.91}\n')
    env_file = server.root / ".env"
    settings = {
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "INFO",  # and the other variables of seed 003's "Production environment variables set"
        "JWT_SECRET_KEY": "e2e-jwt-secret-key-of-32-characters-at-least",
        "CORS_ALLOWED_ORIGINS": "https://routing.example.com",
        "APP_VERSION": "1.0.0",
        "DATABASE_URL": postgres.uri(server.database),
    }
    # seed 004's server has its .env made from the .env.example it ships, the defaults changed
    mlops_settings = mlops_env(str(settings["DATABASE_URL"])) if server is MLOPS else {}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in {**settings, **mlops_settings, "MODEL_DIRECTORY": server.root / "models"}.items()))
    if server is MLOPS:
        (server.root / ".env.example").write_text(MLOPS_ENV_EXAMPLE)
        (server.root / "models" / "default" / "model.joblib").write_bytes(bytes(range(256)) * 8)  # the trained classifier
    env_file.chmod(0o600)
    postgres.psql("postgres", f"DROP DATABASE IF EXISTS {server.database} WITH (FORCE)")
    postgres.create_database(server.database)
    conn_id = {"routing-ml-platform": "ROUTING_DB", "mlops-system": "MLOPS_DB"}[server.system]
    os.environ[f"AIRFLOW_CONN_{conn_id}"] = postgres.airflow_conn_json(server.database)
    # the app's own login, as its DATABASE_URL above has it: seed 004's "Permissions granted" logs in as it
    os.environ["AIRFLOW_CONN_MLOPS_APP_DB"] = postgres.airflow_conn_json(server.database)
    os.environ[f"AIRFLOW_CONN_SLACK_{conn_id.removesuffix('_DB')}"] = os.environ["AIRFLOW_CONN_SLACK_DEMO"]
    # the smoke user the login check signs in as; seed_service.py's backend knows the same password
    smoke_user = {"conn_type": "generic", "login": "rollout-smoke", "password": "smoke-password"}
    os.environ["AIRFLOW_CONN_ROUTING_SMOKE_USER"] = json.dumps(smoke_user)
    ledger().ensure_schema()
    postgres.psql("rollout_ledger", "TRUNCATE rollout_release, rollout_lock CASCADE")
    Path(slack).write_text("")


def data_target(system: str):
    from airflow_rollout.config import load_profile
    from airflow_rollout.targets.postgres import PostgresDataTarget

    return PostgresDataTarget(config=load_profile(system).data_targets[0])


@pytest.fixture
def routing_monitoring(monkeypatch):
    """Seed 003's Grafana and Prometheus (Step 10), reached through `routing_grafana`."""
    from devtools.monitoring_standin import MonitoringStandIn

    with MonitoringStandIn(grafana_token="e2e-grafana-token") as monitoring:
        set_up_routing_monitoring(monitoring)
        monkeypatch.setenv("AIRFLOW_CONN_ROUTING_GRAFANA", monitoring.grafana_connection())
        yield monitoring


@pytest.fixture
def routing(postgres, slack, docker_standin, routing_monitoring):
    """Seed 003's server with 1.0.0: the database migrated by the image's own alembic, the three services up, its
    monitoring beside them."""
    set_up_server(ROUTING, postgres, slack)
    ROUTING.compose("run", "--rm", "--no-deps", "-T", "backend", "alembic", "upgrade", "head")
    try:  # down also when `up --wait` fails: the services it started would outlive the session
        ROUTING.compose("up", "-d", "--wait")
        yield data_target(ROUTING.system)
    finally:
        ROUTING.compose("down")


@pytest.fixture
def mlops_system_airflow(monkeypatch):
    """Seed 004's own Airflow beside its API (the webserver's REST API), reached through `mlops_airflow`."""
    with mlops_airflow() as airflow:
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_AIRFLOW", mlops_airflow_connection(airflow))
        yield airflow


@pytest.fixture
def mlops(postgres, slack, docker_standin, mlops_system_airflow):
    """Seed 004's server with 1.0.0: the loan_data schema (the profile's own migrations), an active model, the API up,
    its own Airflow beside it."""
    from airflow_rollout.config import SqlFileMigrations
    from airflow_rollout.targets.migrations import SqlFileMigrator

    set_up_server(MLOPS, postgres, slack)
    target = data_target(MLOPS.system)
    assert isinstance(target.config.migrations, SqlFileMigrations)
    migrator = SqlFileMigrator(target=target, config=target.config.migrations)
    for migration in migrator.pending("1.0.0"):
        migrator.apply(migration, "test-setup")
    with target.connect() as conn:
        conn.execute("INSERT INTO loan_data.model_metadata VALUES ('1.0.0', 'models/default', 0.86, true)")
    try:  # down also when `up --wait` fails: the services it started would outlive the session
        MLOPS.compose("up", "-d", "--wait")
        yield target
    finally:
        MLOPS.compose("down")


def release(release_dag, system: str, version: str):
    """A release signed off by each role the system's checklist requires (seed 004's Tech Lead signs nothing: its
    required item, the rollback tested, is read from the record)."""
    from airflow_rollout.checklists import load_checklist

    checklist = load_checklist(system)
    assert checklist is not None
    return run_signed_release(release_dag, system, version, checklist.required_roles())


# --- seed 003 -------------------------------------------------------------------------------------------


def test_routing_good_release_is_promoted_with_every_service_on_the_new_tag(release_dag, routing, docker_standin):
    dag_run, record = release(release_dag, ROUTING.system, "1.1.0")

    assert (dag_run.state, record.status, record.previous_version) == ("success", "promoted", "1.0.0")
    assert ROUTING.running_tags() == {"backend": "1.1.0", "frontend-training": "1.1.0", "frontend-prediction": "1.1.0"}
    assert "priority integer" in routing.fingerprint()["public.routing_items"]["columns"]  # the 1.1.0 image's alembic ran
    calls = [json.loads(line) for line in docker_standin.read_text().splitlines()]
    up = [c for c in calls if c["argv"][-4:] == ["up", "-d", "--no-deps", "backend"]]
    assert up[-1]["env_subset"]["BACKEND_TAG"] == "1.1.0"
    migration = [c for c in calls if c["argv"][-3:] == ["alembic", "upgrade", "head"]]
    assert migration[-1]["argv"][-8:] == ["run", "--rm", "--no-deps", "-T", "backend", "alembic", "upgrade", "head"]
    assert migration[-1]["env_subset"]["BACKEND_TAG"] == "1.1.0"
    measured = {m.name: m for m in ledger().measurements(dag_run.run_id)}
    assert set(measured) == {"health", "frontend_home", "login", "predict", "trainer_dry_run", "load_test"}
    assert measured["load_test"].passed, measured["load_test"].detail
    assert sorted(ledger().signoffs(dag_run.run_id)) == SIGN_OFF_ROLES
    items = checklist_results(dag_run.run_id, ROUTING.system)
    running = items['All services running (docker-compose ps shows "Up")'].detail
    assert running == "3 services Up: backend running (healthy), frontend-training running, frontend-prediction running"
    assert items["Production environment variables set:"].passed, items["Production environment variables set:"].detail
    assert "with an empty password: HTTP 401 (refused)" in measured["login"].detail
    proven = [
        "SSL certificates obtained and configured",  # the public host (tests/e2e/conftest.py) and its redirect
        "HTTPS enabled (SSL/TLS certificates installed)",
        "SSL certificate auto-renewal working",
        "HTTPS enabled (valid SSL certificate)",
        "JWT secret key changed from default (min 32 characters)",  # the .env's 44 characters
        "CORS configured for production domains only",  # the backend sends a foreign origin no CORS header
        "Docker installed (version 20.10+)",  # the stand-in's Engine 27.3.1 and Compose 2.29.7
        "Docker Compose installed (version 2.0+)",
        "Security headers configured (CSP, HSTS, etc.)",  # the public host's Content-Security-Policy and HSTS
        "Monitoring infrastructure deployed (Prometheus, Grafana)",  # Grafana and its Prometheus data source's health
        "Monitoring operational (Grafana dashboards)",
    ]
    assert {text: items[text].detail for text in proven if not items[text].passed} == {}
    for section in ("Medium-term (1-7 days)", "Deployment Successful If:"):  # each section's metrics.json item, post-deploy
        metrics = checklist_results(dag_run.run_id, ROUTING.system, section)["metrics.json generated for new models"]
        assert metrics.passed and "metrics.json in each of 1 directories (v1.0-p2-retrain)" in metrics.detail, metrics.detail
    for section in ("Immediate (0-1 hour)", "Deployment Successful If:"):  # the new version's services logged no ERROR line
        text = "No critical errors in logs" if section.startswith("Immediate") else "No critical errors (logs clean)"
        clean = checklist_results(dag_run.run_id, ROUTING.system, section)[text]
        assert clean.passed and "of backend, frontend-training, frontend-prediction since" in clean.detail, clean.detail
    # the server's size is this machine's (the worker runs on it): the item passes iff the machine is as large as the seed asks
    provisioned = items["Production server provisioned (CPU: 4+ cores, RAM: 16GB+, Disk: 100GB+)"]
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    large_enough = (os.cpu_count() or 0) >= 4 and memory_gb >= 16 and shutil.disk_usage(ROUTING.root).total / 1e9 >= 100
    assert provisioned.passed == large_enough, provisioned.detail
    assert provisioned.detail.startswith(f"{os.cpu_count()} CPUs, "), provisioned.detail
    # the server's files are the test user's, not app:app as Steps 3 and 5 chown them
    owner = items["File permissions set correctly (user: app, group: app)"]
    assert owner.passed == (ROUTING.root.joinpath(".env").owner() == "app" and ROUTING.root.joinpath(".env").group() == "app")
    assert "files and directories of models, .env under" in owner.detail, owner.detail


def test_routing_broken_build_rolls_back_tag_database_models_and_env_byte_for_byte(release_dag, routing):
    before_data, before_files = routing.fingerprint(), ROUTING.files()

    dag_run, record = release(release_dag, ROUTING.system, "1.2.0-broken")

    assert (dag_run.state, record.status) == ("failed", "rolled_back")
    assert ROUTING.running_tags() == {"backend": "1.0.0", "frontend-training": "1.0.0", "frontend-prediction": "1.0.0"}
    assert routing.fingerprint() == before_data  # the broken build's alembic had added a column and a table
    assert ROUTING.files() == before_files  # registry.db and .env, rewritten by the broken build, are back
    assert (ROUTING.root / ".env").stat().st_mode & 0o777 == 0o600
    assert any("rolled back" in m for m in slack_messages())


def test_routing_failing_migration_restores_the_database_and_leaves_the_services_alone(release_dag, routing):
    before = routing.fingerprint()

    _dag_run, record = release(release_dag, ROUTING.system, "1.3.0")

    assert record.status == "rolled_back"
    assert any("migrate" in reason for reason in record.decision_reasons or [])
    assert routing.fingerprint() == before
    assert ROUTING.running_tags() == {"backend": "1.0.0", "frontend-training": "1.0.0", "frontend-prediction": "1.0.0"}


# --- seed 004 -------------------------------------------------------------------------------------------


def test_mlops_release_is_promoted_when_the_model_passes_the_f1_gate(release_dag, mlops):
    dag_run, record = release(release_dag, MLOPS.system, "1.1.0")

    assert (dag_run.state, record.status) == ("success", "promoted")
    assert MLOPS.running_tags() == {"api": "1.1.0"}
    measured = {m.name: m for m in ledger().measurements(dag_run.run_id)}
    assert measured["model_f1"].passed and measured["predict_latency"].passed, measured
    items = checklist_results(dag_run.run_id, MLOPS.system)
    granted = items["Permissions granted"]  # as mlops_app_db, the app's login
    assert granted.passed, granted.detail
    assert items["All containers started (`docker-compose ps`)"].detail == "1 services Up: api running (healthy)"
    assert items["SSL/TLS enabled (if production)"].passed, items["SSL/TLS enabled (if production)"].detail
    proven = [
        "`.env` file created from `.env.example`",  # the server's .env against its .env.example
        "Database credentials updated",
        "Airflow secret key changed",
        "Model path configured",
        "Changed default PostgreSQL password",
        "Changed default Airflow admin password",
        "Airflow webserver accessible (http://localhost:8080)",  # the system's own Airflow, through its REST API
        "Airflow initialized (`airflow db init`)",
        "Admin user created",
        "No DAG errors",
        "DAGs visible in UI",
        "Data collection DAG tested",
        "Training DAG triggered",
        "Pretraining completed successfully",
        "Classifier training completed",
        "DAG can be triggered manually",
        "Training runs end-to-end",
        "Docker and Docker Compose installed",  # the stand-in's compose ls
        "Model saved to `models/` directory",
        "Sufficient system resources (4GB+ RAM, 10GB+ disk)",  # this machine, the server's files being local to it
        "Application logs accessible",  # the api's log through `docker compose logs`: its start
        "No critical errors in logs",  # none of them at ERROR since the release began
        "Log rotation configured (if needed)",  # json-file with max-size 10m
    ]
    assert {text: items[text].detail for text in proven if not items[text].passed} == {}
    for section in ("Data Collection", "Validation & Deployment"):  # each section's DAG scheduled correctly (@daily)
        scheduled = checklist_results(dag_run.run_id, MLOPS.system, section)["DAG scheduled correctly (@daily)"]
        assert scheduled.passed, scheduled.detail
    # the system's first release here: no rollback has run yet
    untested = items["Rollback procedure tested"]
    assert not untested.passed and "was ever rolled back" in untested.detail, untested.detail


def test_mlops_model_below_the_f1_gate_is_rolled_back(release_dag, mlops):
    from airflow_rollout.checklist_run import evaluate
    from airflow_rollout.ledger import FingerprintStage

    before = mlops.fingerprint()

    dag_run, record = release(release_dag, MLOPS.system, "1.1.0-weak")

    assert record.status == "rolled_back"
    assert any("model_f1" in reason and "expected at least 0.8" in reason for reason in record.decision_reasons or [])
    assert MLOPS.running_tags() == {"api": "1.0.0"}
    after = mlops.fingerprint()
    # predictions is volatile (the API logs every call): after the restore, the old version's checks logged theirs
    assert {t: f for t, f in after.items() if t != "loan_data.predictions"} == {
        t: f for t, f in before.items() if t != "loan_data.predictions"
    }
    assert ledger().fingerprint(dag_run.run_id, "app_db", FingerprintStage.AFTER_RESTORE) == ledger().fingerprint(
        dag_run.run_id, "app_db", FingerprintStage.BEFORE
    )
    # the rollback just run is the one the next release's checklist reads: app and data back, proven
    tested = evaluate(context(MLOPS.system), shipped_checks(MLOPS.system, "python")["Rollback procedure tested"])
    assert tested.passed, tested.detail
    assert tested.detail == (
        f"the newest rollback, of 1.1.0-weak (release {dag_run.run_id}): 1.0.0 serving again, app_db, server_files restored equal to before"
    )
