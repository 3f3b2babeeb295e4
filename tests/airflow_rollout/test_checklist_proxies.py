"""Checks that used to pass whatever the system's state, run as shipped: each now fails when its item is false.

The http items (an open endpoint, a password-less login) are in test_checks.py beside the HTTP server they use.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.checklists import load_checklist
from airflow_rollout.config import INCLUDE_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_rollout.checklists import ItemCheck
    from airflow_rollout.evidence import Evidence


def shipped(system: str, text: str) -> ItemCheck:
    checklist = load_checklist(system)
    assert checklist is not None
    [check] = [e.item.check for e in checklist.entries() if e.item.text == text and e.item.check]
    return check


def on_target(check: ItemCheck, query_value: Any) -> Evidence:
    """The check run on a data target of the name it gives, answering with `query_value(query)`."""
    target = SimpleNamespace(config=SimpleNamespace(name=getattr(check, "target", None)), query_value=query_value)
    return evaluate(SimpleNamespace(data_targets=[target]), check)  # type: ignore[arg-type]


# --- Ontos: "Foreign key constraints verified", on the Databricks SQL stand-in --------------------------


@pytest.fixture
def workbench() -> Any:
    """The stand-in's SQL engine with seed 000's catalog and tables, as the schema files create them."""
    from airflow_rollout.targets.databricks import split_statements
    from devtools.databricks_sql import SqlEngine

    engine = SqlEngine()
    for name in ("01_create_catalog.sql", "02_create_tables.sql"):
        for statement in split_statements((INCLUDE_DIR / "migrations" / "ontos-ml-workbench" / name).read_text()):
            engine.execute(statement)
    engine.execute("INSERT INTO ontos_ml.workbench.templates VALUES (1, 'classification', NULL)")
    engine.execute("INSERT INTO ontos_ml.workbench.sheets VALUES (10, 'intake', 1, NULL)")
    engine.execute("INSERT INTO ontos_ml.workbench.training_sheets VALUES (100, 10, 'ready')")
    engine.execute("INSERT INTO ontos_ml.workbench.qa_pairs VALUES (1000, 10, 'q', 'a')")
    return engine


def test_ontos_references_that_hold_pass(workbench: Any) -> None:
    evidence = on_target(shipped("ontos-ml-workbench", "Foreign key constraints verified"), lambda q: workbench.execute(q).rows[0][0])
    assert evidence.passed, evidence.detail


@pytest.mark.parametrize(
    "orphan",
    [
        "INSERT INTO ontos_ml.workbench.qa_pairs VALUES (1001, 99, 'q', 'a')",
        "INSERT INTO ontos_ml.workbench.training_sheets VALUES (101, 99, 'ready')",
        "INSERT INTO ontos_ml.workbench.sheets VALUES (11, 'labels', 7, NULL)",
    ],
    ids=["qa-pair-of-no-sheet", "training-sheet-of-no-sheet", "sheet-of-no-template"],
)
def test_ontos_a_row_pointing_at_nothing_fails_foreign_keys_verified(workbench: Any, orphan: str) -> None:
    workbench.execute(orphan)
    evidence = on_target(shipped("ontos-ml-workbench", "Foreign key constraints verified"), lambda q: workbench.execute(q).rows[0][0])
    assert not evidence.passed
    assert evidence.detail.endswith("-> 1 (expected 0.0)")


# --- MLOps: "Database size monitored", on the real PostgreSQL --------------------------------------------


@pytest.mark.e2e
def test_mlops_database_size_is_read_from_the_database_and_held_to_a_ceiling(postgres: Any) -> None:
    from airflow_rollout.config import load_profile
    from airflow_rollout.targets.postgres import PostgresDataTarget

    target = PostgresDataTarget(config=load_profile("mlops-system").data_targets[0].model_copy(update={"conn_id": "demo_db"}))
    check = shipped("mlops-system", "Database size monitored")
    measured = on_target(check, target.query_value)
    assert measured.passed, measured.detail
    assert measured.numbers["value"] > 1_000_000  # an empty PostgreSQL database is already megabytes: a floor proves nothing
    grown = on_target(check, lambda _query: 9_000_000_000)
    assert not grown.passed
    assert "above 8e+09" in grown.detail


# --- "Post in team Slack channel" (Ontos) and the demo's "Release notifications configured (Slack)" -------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("conn_id", "evidence"),
    [
        ("slack_demo", "release-started message delivered to Slack through slack_demo"),
        ("slack_revoked", "the release-started message did not reach Slack through slack_revoked"),
        (None, "no Slack connection in the profile"),
    ],
    ids=["delivered", "webhook-revoked", "no-connection"],
)
def test_slack_items_need_the_release_started_message_delivered(
    postgres: Any, slack: Any, monkeypatch: pytest.MonkeyPatch, conn_id: str | None, evidence: str
) -> None:
    from airflow_rollout.ledger import Ledger
    from airflow_rollout.notify import Event, Notifier, Redactor

    revoked = json.loads(os.environ["AIRFLOW_CONN_SLACK_DEMO"])
    revoked["password"] = revoked["password"].rsplit("/", 1)[0] + "/revoked"  # the receiver answers 404 no_service, as Slack does
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_REVOKED", json.dumps(revoked))
    ledger = Ledger(conn_id="rollout_ledger")
    ledger.ensure_schema()
    release_id = f"slack-proof-{uuid.uuid4()}"
    ctx = SimpleNamespace(profile=SimpleNamespace(slack_conn_id=conn_id), ledger=ledger, release_id=release_id)
    check = shipped("ontos-ml-workbench", "Post in team Slack channel")
    assert shipped("demo", "Release notifications configured (Slack)") == check
    assert not evaluate(ctx, check).passed  # type: ignore[arg-type]  # before the release posted anything

    Notifier(slack_conn_id=conn_id, ledger=ledger, redactor=Redactor([]), system="demo").send(Event.STARTED, release_id, "started")
    found = evaluate(ctx, check)  # type: ignore[arg-type]
    assert found.passed is (conn_id == "slack_demo"), found.detail
    assert found.detail.startswith(evidence), found.detail


# --- AI ETL: "Configure liveness/readiness probes", read from the Deployment on the Kubernetes stand-in ----

SEED_PROBES = {  # seed 002's "Health Checks"
    "livenessProbe": {"httpGet": {"path": "/health/live", "port": 8000}, "initialDelaySeconds": 30, "periodSeconds": 10},
    "readinessProbe": {"httpGet": {"path": "/health/ready", "port": 8000}, "initialDelaySeconds": 10, "periodSeconds": 5},
}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devtools.kube_apiserver import KubeApiServer

    # The image is in no image map: its pods are reported ready without a process, and only the spec is read.
    with KubeApiServer(image_map={}, state_dir=tmp_path_factory.mktemp("kube") / "state", ready_delay=0.2) as server:
        yield server


def backend_with(kube: Any, monkeypatch: pytest.MonkeyPatch, probes: dict[str, Any]) -> Any:
    """A context whose app `backend` is the stand-in's Deployment `backend`, its container declaring `probes`."""
    from kubernetes import client, config

    from airflow_rollout.targets.kubernetes import KubernetesApp, KubernetesTarget

    kube.reset()
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_KUBE", kube.airflow_connection())
    container = {"name": "backend", "image": "registry.example.com/ai-etl/backend:1.0.0", "ports": [{"containerPort": 8000}], **probes}
    labels = {"app": "backend"}
    manifest = {
        "metadata": {"name": "backend", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    with config.new_client_from_config_dict(kube.kubeconfig()) as api:
        client.AppsV1Api(api).create_namespaced_deployment("default", manifest)
    target = KubernetesTarget(
        kind="kubernetes",
        name="backend",
        conn_id="ai_etl_kube",
        namespace="default",
        deployment="backend",
        image="registry.example.com/ai-etl/backend",
        url="http://127.0.0.1:8000",
    )
    return SimpleNamespace(apps={"backend": KubernetesApp(config=target)})


def test_ai_etl_probes_declared_as_the_seed_writes_them_pass(kube: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = backend_with(kube, monkeypatch, SEED_PROBES)
    for text in ("**Configure liveness probes**", "**Configure readiness probes**"):
        evidence = evaluate(ctx, shipped("ai-etl-assistant", text))
        assert evidence.passed, evidence.detail
        assert evidence.numbers["period_seconds"] in {10, 5}


@pytest.mark.parametrize(
    ("probes", "item", "evidence"),
    [
        ({"readinessProbe": SEED_PROBES["readinessProbe"]}, "liveness", "the Deployment of backend declares no livenessProbe"),
        ({"livenessProbe": SEED_PROBES["livenessProbe"]}, "readiness", "the Deployment of backend declares no readinessProbe"),
        (
            {**SEED_PROBES, "livenessProbe": {"tcpSocket": {"port": 8000}}},
            "liveness",
            "the livenessProbe of backend is not an HTTP GET, so it does not call /health/live",
        ),
        (
            {**SEED_PROBES, "readinessProbe": {"httpGet": {"path": "/health/live", "port": 8000}}},
            "readiness",
            "the readinessProbe of backend GETs /health/live, expected /health/ready",
        ),
    ],
    ids=["no-liveness", "no-readiness", "liveness-not-http", "readiness-on-the-liveness-path"],
)
def test_ai_etl_a_probe_missing_or_elsewhere_fails_its_item(
    kube: Any, monkeypatch: pytest.MonkeyPatch, probes: dict[str, Any], item: str, evidence: str
) -> None:
    found = evaluate(backend_with(kube, monkeypatch, probes), shipped("ai-etl-assistant", f"**Configure {item} probes**"))
    assert not found.passed
    assert found.detail == evidence


# --- AI ETL: "Test database connectivity" asks PostgreSQL, where it only connected to Redis --------------


@pytest.mark.e2e
def test_ai_etl_database_connectivity_is_a_query_on_postgresql(postgres: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_rollout.config import load_profile
    from airflow_rollout.targets.postgres import PostgresDataTarget
    from devtools.local_postgres import free_port

    check = shipped("ai-etl-assistant", "**Test database connectivity**")
    config = load_profile("ai-etl-assistant").data_targets[0]
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_DB", os.environ["AIRFLOW_CONN_DEMO_DB"])
    assert on_target(check, PostgresDataTarget(config=config).query_value).passed
    down = json.loads(os.environ["AIRFLOW_CONN_DEMO_DB"]) | {"port": free_port()}  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_DB", json.dumps(down))
    with pytest.raises(Exception, match="connect"):  # run_item records it as a failed item: "could not run: ..."
        on_target(check, PostgresDataTarget(config=config).query_value)


# --- Routing: "Production environment variables set:" reads the .env, not only its mode -------------------

SEED_ENV = {  # seed 003's Step 3, the values the item lists
    "ENVIRONMENT": "production",
    "LOG_LEVEL": "INFO",
    "JWT_SECRET_KEY": "a-secret-of-more-than-32-characters-long",
    "DATABASE_URL": "postgresql://routing:pw@db:5432/routing_ml",
    "CORS_ALLOWED_ORIGINS": "https://routing.example.com",
}


def env_item_on(tmp_path: Path, settings: dict[str, str], mode: int = 0o600) -> Evidence:
    from airflow_rollout.config import load_profile

    env = tmp_path / ".env"
    env.write_text("# Application\n" + "".join(f"{k}={v}\n" for k, v in settings.items()))
    env.chmod(mode)
    profile = load_profile("routing-ml-platform")
    files = [t.model_copy(update={"root": str(tmp_path)}) if t.name == "model_files" else t for t in profile.data_targets]
    ctx = SimpleNamespace(profile=profile.model_copy(update={"data_targets": files}))
    return evaluate(ctx, shipped("routing-ml-platform", "Production environment variables set:"))  # type: ignore[arg-type]


def test_routing_a_private_env_setting_the_seed_variables_passes(tmp_path: Path) -> None:
    evidence = env_item_on(tmp_path, SEED_ENV)
    assert evidence.passed, evidence.detail
    assert "sets JWT_SECRET_KEY, DATABASE_URL, CORS_ALLOWED_ORIGINS, ENVIRONMENT=production, LOG_LEVEL=INFO" in evidence.detail
    assert SEED_ENV["JWT_SECRET_KEY"] not in evidence.detail and "pw@" not in evidence.detail


@pytest.mark.parametrize(
    ("settings", "evidence"),
    [
        ({**SEED_ENV, "JWT_SECRET_KEY": ""}, "not set: JWT_SECRET_KEY"),
        ({k: v for k, v in SEED_ENV.items() if k != "CORS_ALLOWED_ORIGINS"}, "not set: CORS_ALLOWED_ORIGINS"),
        ({**SEED_ENV, "ENVIRONMENT": "development"}, "ENVIRONMENT is not 'production'"),
    ],
    ids=["secret-empty", "cors-missing", "not-production"],
)
def test_routing_an_env_of_mode_0600_without_the_seed_variables_fails(tmp_path: Path, settings: dict[str, str], evidence: str) -> None:
    found = env_item_on(tmp_path, settings)
    assert not found.passed
    assert found.detail.endswith(evidence)
    assert "development" not in found.detail  # the value found is never shown: a .env holds secrets


def test_routing_env_readable_by_others_still_fails(tmp_path: Path) -> None:
    assert "has mode 0644, expected 0600" in env_item_on(tmp_path, SEED_ENV, mode=0o644).detail


def test_env_file_values_are_read_as_docker_compose_reads_them(tmp_path: Path) -> None:
    from airflow_rollout.checklist_run import env_file_values

    env = tmp_path / ".env"
    env.write_text("# comment\n\nexport A=1\nB = 'two words'\nC=\"x=y\"\nD=\nnot a setting\n")
    assert env_file_values(env) == {"A": "1", "B": "two words", "C": "x=y", "D": ""}


# --- Routing: "All services running (docker-compose ps shows "Up")", on the docker stand-in ---------------

ROUTING_IMAGES = "registry.example.com/routing-ml"
RUNNING = 'All services running (docker-compose ps shows "Up")'
ROOT = INCLUDE_DIR.parent


@pytest.fixture
def compose_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A compose project of a backend the release deploys and an nginx it does not (seed 003's `ps`), on the stand-in."""
    from airflow_rollout.targets.compose import ComposeServiceApp, ComposeServiceTarget
    from airflow_rollout.targets.registry import TargetEnvironment
    from devtools.local_postgres import free_port

    app = ROOT / "tests" / "devtools" / "docker_fixtures" / "app.py"
    command = ["{python}", str(app), "--version", "{version}", "--port", "{port}"]
    images = {f"{ROUTING_IMAGES}/{name}": {"command": command} for name in ("backend", "nginx")}
    (tmp_path / "images.json").write_text(json.dumps(images))
    ports = {"BACKEND_PORT": str(free_port()), "NGINX_PORT": str(free_port())}
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(
        "services:\n"
        + "".join(
            f"  {name}:\n    image: {ROUTING_IMAGES}/{name}:1.0.0\n    ports: ['127.0.0.1:${{{name.upper()}_PORT}}:8000']\n"
            for name in ("backend", "nginx")
        )
    )
    for name, value in {
        "PATH": f"{ROOT / 'devtools' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "ROLLOUT_DOCKER_STANDIN_STATE": str(tmp_path / "state"),
        "ROLLOUT_DOCKER_STANDIN_IMAGES": str(tmp_path / "images.json"),
        **ports,
    }.items():
        monkeypatch.setenv(name, value)
    target = ComposeServiceTarget(
        kind="compose",
        name="backend",
        compose_file=str(compose_file),
        project="routing-ml",
        service="backend",
        tag_variable="BACKEND_TAG",
        url=f"http://127.0.0.1:{ports['BACKEND_PORT']}",
    )
    backend = ComposeServiceApp(config=target, environment=TargetEnvironment(system="routing-ml-platform", state_dir=tmp_path))
    yield backend
    backend._compose("down")


def test_routing_every_service_of_the_project_up_passes(compose_project: Any) -> None:
    compose_project._compose("up", "-d")
    evidence = evaluate(SimpleNamespace(apps={"backend": compose_project}), shipped("routing-ml-platform", RUNNING))  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert evidence.detail == "2 services Up: backend running, nginx running"


@pytest.mark.parametrize(
    ("commands", "evidence"),
    [
        ([("up", "-d"), ("stop", "nginx")], "not Up: nginx exited"),
        ([("up", "-d", "backend")], "not Up: nginx no container"),
    ],
    ids=["nginx-stopped", "nginx-never-started"],
)
def test_routing_a_service_the_release_does_not_deploy_down_fails_all_services_running(
    compose_project: Any, commands: list[tuple[str, ...]], evidence: str
) -> None:
    for command in commands:
        compose_project._compose(*command)
    found = evaluate(SimpleNamespace(apps={"backend": compose_project}), shipped("routing-ml-platform", RUNNING))  # type: ignore[arg-type]
    assert not found.passed
    assert found.detail.startswith(evidence), found.detail


# --- MLOps: "Permissions granted" asks as the app's own login, on the real PostgreSQL ---------------------

APP_ROLE_GRANTS = [
    "GRANT USAGE ON SCHEMA loan_data TO mlops_app_test",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA loan_data TO mlops_app_test",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA loan_data TO mlops_app_test",
]


@pytest.fixture
def loan_data(postgres: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A database with two loan_data tables owned by the superuser, and an app role that was granted nothing."""
    postgres.psql("postgres", "DROP DATABASE IF EXISTS mlops_grants WITH (FORCE)")
    postgres.create_database("mlops_grants")
    postgres.psql("postgres", "DROP ROLE IF EXISTS mlops_app_test")
    postgres.psql("postgres", "CREATE ROLE mlops_app_test LOGIN PASSWORD 'app-test-password'")
    postgres.psql(
        "mlops_grants",
        "CREATE SCHEMA loan_data; CREATE TABLE loan_data.predictions (id serial PRIMARY KEY, probability float);"
        " CREATE TABLE loan_data.raw_data (id serial PRIMARY KEY)",
    )
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_DB", postgres.airflow_conn_json("mlops_grants"))
    app_login = json.loads(postgres.airflow_conn_json("mlops_grants")) | {"login": "mlops_app_test", "password": "app-test-password"}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_APP_DB", json.dumps(app_login))
    yield postgres
    postgres.psql("postgres", "DROP DATABASE IF EXISTS mlops_grants WITH (FORCE)")
    postgres.psql("postgres", "DROP ROLE IF EXISTS mlops_app_test")


def permissions_granted(postgres: Any, grants: list[str], *, as_release: bool = False) -> Evidence:
    from airflow_rollout.config import load_profile
    from airflow_rollout.context import SystemContext

    for grant in grants:
        postgres.psql("mlops_grants", grant)
    check = shipped("mlops-system", "Permissions granted")
    if as_release:  # the query as the item had it: logged in as the release's own (owner) login
        check = check.model_copy(update={"as_conn_id": None})
    return evaluate(SystemContext(profile=load_profile("mlops-system")), check)


@pytest.mark.e2e
def test_mlops_permissions_granted_to_the_app_pass(loan_data: Any) -> None:
    evidence = permissions_granted(loan_data, APP_ROLE_GRANTS)
    assert evidence.passed, evidence.detail


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("grants", "lacking"),
    [([], 5), (APP_ROLE_GRANTS[:1], 4), ([APP_ROLE_GRANTS[0], "GRANT SELECT ON ALL TABLES IN SCHEMA loan_data TO mlops_app_test"], 4)],
    ids=["nothing-granted-the-owner-login-would-pass", "schema-only", "read-only"],
)
def test_mlops_permissions_the_app_lacks_fail_though_the_release_login_has_them_all(
    loan_data: Any, grants: list[str], lacking: int
) -> None:
    evidence = permissions_granted(loan_data, grants)
    assert not evidence.passed
    assert evidence.numbers["value"] == lacking  # 2 tables + 2 sequences, + the schema while it has no USAGE
    assert permissions_granted(loan_data, [], as_release=True).passed  # the owner login proves nothing


def test_logging_in_as_another_connection_needs_a_target_with_one() -> None:
    from airflow_rollout.checklists import SqlItemCheck
    from airflow_rollout.config import load_profile
    from airflow_rollout.context import SystemContext

    check = SqlItemCheck(kind="sql", target="model_files", as_conn_id="routing_app_db", query="SELECT 1", equals=1)
    evidence = evaluate(SystemContext(profile=load_profile("routing-ml-platform")), check)
    assert (evidence.passed, evidence.detail) == (False, "model_files is a files target: it has no connection to log in as routing_app_db")


RESOURCES = "Sufficient system resources (4GB+ RAM, 10GB+ disk)"


def mlops_server_at(root: Path) -> Any:
    """Seed 004's system with its server_files target at `root`, as the item checks see it."""
    from seed_platforms import context

    ctx = context("mlops-system")
    targets = [t.model_copy(update={"root": str(root)}) if t.name == "server_files" else t for t in ctx.profile.data_targets]
    return type(ctx)(profile=ctx.profile.model_copy(update={"data_targets": targets}))


def test_mlops_resources_are_the_servers_memory_and_disk(tmp_path: Path) -> None:
    """This machine (the tests' server) has more than 4 GB of memory and a disk of more than 10 GB."""
    evidence = evaluate(mlops_server_at(tmp_path), shipped("mlops-system", RESOURCES))
    assert evidence.passed, evidence.detail
    assert f"GB memory, the disk holding {tmp_path.resolve()} " in evidence.detail
    assert evidence.detail.endswith("(at least 4 and 10 GB)")


@pytest.mark.parametrize(
    ("pages", "disk_bytes", "short"),
    [(3_500_000_000 // 4096, 500 * 10**9, "memory below 4 GB"), (16 * 10**9 // 4096, 8 * 10**9, "disk below 10 GB")],
    ids=["3.5-GB-memory", "8-GB-disk"],
)
def test_mlops_a_smaller_server_fails_sufficient_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pages: int, disk_bytes: int, short: str
) -> None:
    import shutil

    sysconf = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": pages}
    monkeypatch.setattr(os, "sysconf", lambda name: sysconf[name])
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: SimpleNamespace(total=disk_bytes, used=0, free=disk_bytes))
    evidence = evaluate(mlops_server_at(tmp_path), shipped("mlops-system", RESOURCES))
    assert not evidence.passed
    assert evidence.detail.endswith(f": {short}"), evidence.detail


PROVISIONED = "Production server provisioned (CPU: 4+ cores, RAM: 16GB+, Disk: 100GB+)"


def routing_server_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, cpus: int, memory_gb: float, disk_gb: float) -> Evidence:
    """Seed 003's item run on a server of this size (its model_files target at `tmp_path`)."""
    import shutil

    from seed_platforms import context

    ctx = context("routing-ml-platform")
    targets = [t.model_copy(update={"root": str(tmp_path)}) if t.name == "model_files" else t for t in ctx.profile.data_targets]
    sysconf = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": int(memory_gb * 1e9) // 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: sysconf[name])
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: SimpleNamespace(total=int(disk_gb * 1e9), used=0, free=int(disk_gb * 1e9)))
    server = type(ctx)(profile=ctx.profile.model_copy(update={"data_targets": targets}))
    return evaluate(server, shipped("routing-ml-platform", PROVISIONED))


def test_routing_a_server_of_the_seeds_size_is_provisioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evidence = routing_server_of(tmp_path, monkeypatch, cpus=4, memory_gb=16.8, disk_gb=107.4)
    assert evidence.passed, evidence.detail
    assert evidence.detail.startswith("4 CPUs, 16.8 GB memory, the disk holding ")
    assert evidence.detail.endswith("107.4 GB (107.4 GB free) (at least 4 CPUs, 16 and 100 GB)")


@pytest.mark.parametrize(
    ("size", "short"),
    [
        ({"cpus": 2, "memory_gb": 32, "disk_gb": 500}, "fewer than 4 CPUs"),
        ({"cpus": 8, "memory_gb": 15.5, "disk_gb": 500}, "memory below 16 GB"),
        ({"cpus": 8, "memory_gb": 32, "disk_gb": 80}, "disk below 100 GB"),
    ],
    ids=["2-CPUs", "15.5-GB-memory", "80-GB-disk"],
)
def test_routing_a_smaller_server_is_not_provisioned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: dict[str, float], short: str
) -> None:
    evidence = routing_server_of(tmp_path, monkeypatch, cpus=int(size["cpus"]), memory_gb=size["memory_gb"], disk_gb=size["disk_gb"])
    assert not evidence.passed
    assert evidence.detail.endswith(f": {short}"), evidence.detail


# --- Routing: "File permissions set correctly (user: app, group: app)", on this machine's files ------------

OWNED = "File permissions set correctly (user: app, group: app)"


def routing_files_at(root: Path) -> Any:
    """Seed 003's model_files as Steps 3 and 5 leave them: `.env` and `models/` with a model, at `root`."""
    from seed_platforms import context

    (root / "models" / "default").mkdir(parents=True)
    (root / "models" / "default" / "manifest.json").write_text("{}\n")
    (root / ".env").write_text("ENVIRONMENT=production\n")
    ctx = context("routing-ml-platform")
    targets = [t.model_copy(update={"root": str(root)}) if t.name == "model_files" else t for t in ctx.profile.data_targets]
    return type(ctx)(profile=ctx.profile.model_copy(update={"data_targets": targets}))


def test_routing_files_owned_by_the_named_user_and_group_pass(tmp_path: Path) -> None:
    """The test's files are the current user's: held to that user and group, as the server's to app:app."""
    import grp
    import pwd

    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    check = shipped("routing-ml-platform", OWNED)
    evidence = evaluate(routing_files_at(tmp_path), check.model_copy(update={"args": {**check.args, "owner": user, "group": group}}))
    assert evidence.passed, evidence.detail
    assert evidence.detail == f"4 files and directories of models, .env under {tmp_path}: all owned by {user}:{group}"


def test_routing_files_of_another_owner_fail(tmp_path: Path) -> None:
    """As shipped (app:app), the current user's files fail, each named with the owner it has."""
    import grp
    import pwd

    found = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"
    assert found != "app:app"
    evidence = evaluate(routing_files_at(tmp_path), shipped("routing-ml-platform", OWNED))
    assert not evidence.passed
    assert evidence.detail == (
        f"4 files and directories of models, .env under {tmp_path}: 4 not owned by app:app: models {found}, "
        f"models/default {found}, models/default/manifest.json {found}, .env {found}"
    )


# --- Routing and MLOps: logs read through `docker compose logs` / `config`, on the docker stand-in ------------

CLEAN = "No critical errors (logs clean)"


def on_project(compose_project: Any, system: str, text: str, *, began: Any = None, **args: Any) -> Evidence:
    """The shipped item (with `args` changed) run on the fixture's project, the app of either seed (003's backend,
    004's api), the release begun at `began`."""
    check = shipped(system, text)
    check = check.model_copy(update={"args": {**check.args, **args}}) if args else check
    apps = dict.fromkeys(("backend", "api"), compose_project)
    return evaluate(SimpleNamespace(apps=apps, release=lambda: SimpleNamespace(created_at=began)), check)  # type: ignore[arg-type]


def set_backend_image(compose_project: Any, tag: str) -> None:
    path = Path(compose_project.config.compose_file)
    path.write_text(path.read_text().replace("/backend:1.0.0", f"/backend:{tag}"))


def logged(compose_project: Any, service: str, count: int, needle: str) -> None:
    """Until the service's log holds `count` lines with `needle`: what the app printed reaches docker's log a moment later."""
    import time

    deadline = time.monotonic() + 10
    while sum(needle in line for line in compose_project.logs(service)) < count:
        assert time.monotonic() < deadline, compose_project.logs(service)


def test_logs_without_an_error_line_since_the_release_began_are_clean(compose_project: Any) -> None:
    from datetime import UTC, datetime

    import httpx

    began = datetime.now(UTC)
    compose_project._compose("up", "-d")
    httpx.get(f"{compose_project.config.url}/health", timeout=5)
    logged(compose_project, "backend", 1, '"GET /health HTTP/1.1" 200')
    evidence = on_project(compose_project, "routing-ml-platform", CLEAN, began=began)
    assert evidence.passed, evidence.detail
    assert evidence.detail.endswith("none at ERROR or CRITICAL")
    assert evidence.numbers["backend"] == 2  # its start and the request


def test_an_error_line_since_the_release_began_fails_logs_clean_one_before_does_not(compose_project: Any) -> None:
    from datetime import UTC, datetime

    import httpx

    set_backend_image(compose_project, "sick-1.0.0")
    compose_project._compose("up", "-d")
    health = f"{compose_project.config.url}/health"
    httpx.get(health, timeout=5)
    logged(compose_project, "backend", 1, "ERROR:    Exception in ASGI application")
    began = datetime.now(UTC)  # the release begins after the first error: it is not this release's
    assert on_project(compose_project, "routing-ml-platform", CLEAN, began=began).passed
    httpx.get(health, timeout=5)
    logged(compose_project, "backend", 2, "ERROR:    Exception in ASGI application")
    evidence = on_project(compose_project, "routing-ml-platform", CLEAN, began=began)
    assert not evidence.passed
    assert "1 at ERROR or CRITICAL: backend: ERROR:    Exception in ASGI application: sick-1.0.0 cannot answer /health" in evidence.detail
    assert on_project(compose_project, "mlops-system", "No critical errors in logs", began=began).detail == evidence.detail


def test_the_api_that_logged_nothing_or_a_service_not_in_the_project_fails_logs_accessible(compose_project: Any) -> None:
    path = Path(compose_project.config.compose_file)
    path.write_text(path.read_text().replace("  nginx:\n", "  api:\n"))  # seed 004's api beside the backend
    compose_project._compose("up", "-d", "backend")
    never_started = on_project(compose_project, "mlops-system", "Application logs accessible")
    assert (never_started.passed, never_started.detail) == (False, "docker compose logs: nothing logged by api (api 0 lines)")
    compose_project._compose("up", "-d", "api")
    logged(compose_project, "api", 1, "Uvicorn running")
    readable = on_project(compose_project, "mlops-system", "Application logs accessible")
    assert (readable.passed, readable.detail) == (True, "docker compose logs: api 1 lines")
    unknown = on_project(compose_project, "mlops-system", "Application logs accessible", services=["web"])
    assert (unknown.passed, unknown.detail) == (False, "not services of the compose project (backend, api): web")


ROTATION = "Log rotation configured (if needed)"


@pytest.mark.parametrize(
    ("logging", "passed", "detail"),
    [
        (
            {"backend": "json-file", "nginx": "local"},
            True,
            "every service's log rotated: backend json-file max-size 10m, nginx local",
        ),
        (
            {"backend": "json-file", "nginx": None},
            False,
            "nginx logs to json-file without max-size: its log grows without end (backend json-file max-size 10m, nginx json-file)",
        ),
        (
            {"backend": "syslog", "nginx": "local"},
            False,
            "backend logs to syslog, which docker does not rotate (backend syslog, nginx local)",
        ),
    ],
    ids=["json-file-with-max-size-and-local", "one-service-without-logging", "syslog"],
)
def test_log_rotation_is_every_services_driver_as_compose_config_resolves_it(
    compose_project: Any, logging: dict[str, str | None], passed: bool, detail: str
) -> None:
    path = Path(compose_project.config.compose_file)
    text = path.read_text()
    for service, driver in logging.items():
        if driver is not None:
            options = "\n      options: {max-size: 10m, max-file: '3'}" if driver == "json-file" else ""
            text = text.replace(f"  {service}:\n", f"  {service}:\n    logging:\n      driver: {driver}{options}\n")
    path.write_text(text)
    evidence = on_project(compose_project, "mlops-system", ROTATION)
    assert (evidence.passed, evidence.detail) == (passed, detail)
