"""End to end: seed 002's AI ETL Assistant, released with the shipped profile through the Kubernetes target
and the migration Job, against the local Kubernetes API stand-in (its pods are local processes answering
real HTTP) and a real PostgreSQL. A rollback puts back each Deployment's recorded pod template."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from observe import checklist_results, ledger, run_signed_release
from seed_platforms import (
    ai_etl_airflow,
    ai_etl_airflow_connection,
    ai_etl_backend_secrets,
    ai_etl_deployment,
    create_ai_etl_platform,
    fill_ai_etl_clickhouse,
    set_up_ai_etl_monitoring,
    shipped_checks,
)
from testenv import ROOT, SERVER_PORTS

pytestmark = pytest.mark.e2e

SYSTEM = "ai-etl-assistant"
NAMESPACE = "ai-etl-prod"
IMAGES = ROOT / "tests" / "fixtures" / "images"
REGISTRY = "registry.example.com/ai-etl"
PORTS = SERVER_PORTS[SYSTEM]
DEPLOYMENTS = {  # name: (image, seed service, seed port, readiness path)
    "backend": ("backend", "ai-etl-backend", "8000", "/health/ready"),
    "frontend": ("frontend", "ai-etl-frontend", "3000", "/"),
    "llm-gateway": ("llm-gateway", "web", "8080", "/health"),
}


REDIS_PASSWORD = "e2e-redis-password"
# seed 002's Redis Setup: AOF on, allkeys-lru under a maxmemory limit, a password, and a replica (below)
SEED_REDIS = {"requirepass": REDIS_PASSWORD, "masterauth": REDIS_PASSWORD, "appendonly": "yes", "maxmemory": "256mb"}
SEED_CLICKHOUSE = {"max_memory_usage": "10000000000", "max_threads": "16", "max_query_size": "1000000000"}


@pytest.fixture
def tcp_services():
    """Redis, ClickHouse, monitoring and Airflow as seed 002 sets them up: a real redis-server and its replica, the
    ClickHouse stand-in with the seed's settings and replicated tables in sync, Prometheus and Grafana with the seed's
    retention, metrics, alerts and dashboards, the system's Airflow healthy; each answers the checklist's items as the
    configured servers would."""
    from devtools.clickhouse_standin import ClickHouseStandIn
    from devtools.monitoring_standin import MonitoringStandIn
    from devtools.redis_server import RedisServer

    with (
        tempfile.TemporaryDirectory(prefix="ai-etl-redis-") as directory,
        MonitoringStandIn(grafana_token="e2e-grafana-token") as monitoring,
        ai_etl_airflow() as airflow,
        ExitStack() as stack,  # the servers started below stop however the set-up or the module ends
    ):
        os.environ["AIRFLOW_CONN_AI_ETL_AIRFLOW"] = ai_etl_airflow_connection(airflow)
        set_up_ai_etl_monitoring(monitoring)
        os.environ["AIRFLOW_CONN_AI_ETL_PROMETHEUS"] = monitoring.prometheus_connection()
        os.environ["AIRFLOW_CONN_AI_ETL_GRAFANA"] = monitoring.grafana_connection()
        os.environ["AIRFLOW_CONN_AI_ETL_ALERTMANAGER"] = monitoring.alertmanager_connection()
        os.environ["AIRFLOW_CONN_AI_ETL_LOKI"] = monitoring.loki_connection()
        master = stack.enter_context(RedisServer(Path(directory) / "master", {**SEED_REDIS, "maxmemory-policy": "allkeys-lru"}))
        stack.enter_context(RedisServer(Path(directory) / "replica", {**SEED_REDIS, "replicaof": f"127.0.0.1 {master.port}"}))
        wait_for_replica(master.port)
        clickhouse = ClickHouseStandIn(user="etl", password="e2e-clickhouse-password", settings=SEED_CLICKHOUSE)
        fill_ai_etl_clickhouse(clickhouse)
        clickhouse.execute("INSERT INTO system.disks VALUES (?, ?, ?)", [("default", 60 * 2**30, 100 * 2**30)])
        clickhouse.start()
        stack.callback(clickhouse.stop)
        redis_conn = {"conn_type": "redis", "host": "127.0.0.1", "port": master.port, "password": REDIS_PASSWORD}
        os.environ["AIRFLOW_CONN_AI_ETL_REDIS"] = json.dumps(redis_conn)
        clickhouse_conn = {
            "conn_type": "generic",
            "host": "127.0.0.1",
            "port": clickhouse.port,
            "login": "etl",
            "password": clickhouse.password,
        }
        os.environ["AIRFLOW_CONN_AI_ETL_CLICKHOUSE"] = json.dumps(clickhouse_conn)
        yield


def wait_for_replica(port: int) -> None:
    """Until the master counts its replica connected: the replica's first sync runs after both have started."""
    import redis

    client = redis.Redis(port=port, password=REDIS_PASSWORD)
    deadline = time.monotonic() + 60
    while client.info("replication")["connected_slaves"] < 1:
        assert time.monotonic() < deadline, "the replica never connected to the master"
        time.sleep(0.1)


@pytest.fixture
def cluster(postgres, slack, tcp_services, tmp_path):
    """ai-etl-prod with 1.0.0 running: the three Deployments ready, the database migrated, the backend's Secret, and
    the namespace's Pod Security labels, HPAs, quota, RBAC and Ingress the checklist's kubernetes items read."""
    from kubernetes import client

    from devtools.kube_apiserver import KubeApiServer
    from devtools.local_images import LocalImage

    service = ["{python}", str(IMAGES / "seed_service.py"), "--version", "{version}", "--port", "{port}", "--system"]
    images = {
        f"{REGISTRY}/{image}": LocalImage(
            command=[*service, system], bin_dir=IMAGES / "alembic-app" / "bin" if image == "backend" else None
        )
        for image, system, _, _ in DEPLOYMENTS.values()
    }
    postgres.psql("postgres", "DROP DATABASE IF EXISTS ai_etl WITH (FORCE)")
    postgres.create_database("ai_etl")
    os.environ["AIRFLOW_CONN_AI_ETL_DB"] = postgres.airflow_conn_json("ai_etl")
    os.environ["AIRFLOW_CONN_SLACK_AI_ETL"] = os.environ["AIRFLOW_CONN_SLACK_DEMO"]
    migrate = subprocess.run(
        [str(IMAGES / "alembic-app" / "bin" / "alembic"), "upgrade", "head"],
        env={
            **os.environ,
            "DATABASE_URL": postgres.uri("ai_etl"),
            "STANDIN_IMAGE_TAG": "1.0.0",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    ledger().ensure_schema()
    postgres.psql("rollout_ledger", "TRUNCATE rollout_release, rollout_lock CASCADE")
    with KubeApiServer(image_map=images, state_dir=tmp_path / "kube", ready_delay=0.2) as kube:
        os.environ["AIRFLOW_CONN_AI_ETL_KUBE"] = kube.airflow_connection(NAMESPACE)
        api = client.ApiClient(client.Configuration(host=kube.url))
        client.CoreV1Api(api).create_namespaced_secret(
            NAMESPACE,
            {
                "metadata": {"name": "ai-etl-backend-env"},
                "stringData": {**ai_etl_backend_secrets(), "DATABASE_URL": postgres.uri("ai_etl")},
            },
        )
        create_ai_etl_platform(api)
        apps = client.AppsV1Api(api)
        for name, (image, _, seed_port, path) in DEPLOYMENTS.items():
            port = PORTS[seed_port]
            container = {
                "name": name,
                "image": f"{REGISTRY}/{image}:1.0.0",
                "ports": [{"containerPort": port}],
                "readinessProbe": {"httpGet": {"path": path, "port": port}, "periodSeconds": 1},
                "env": [{"name": "BROKEN_VERSIONS", "value": "1.2.5" if name == "llm-gateway" else ""}],
            }
            if name == "backend":
                container["envFrom"] = [{"secretRef": {"name": "ai-etl-backend-env"}}]
                # the seed's livenessProbe, which the checklist's "Configure liveness probes" reads
                container["livenessProbe"] = {"httpGet": {"path": "/health/live", "port": port}, "periodSeconds": 10}
            deployment = ai_etl_deployment(name, container)
            deployment["spec"]["progressDeadlineSeconds"] = 8  # the seed's default is 600: a stall is found in seconds here
            apps.create_namespaced_deployment(NAMESPACE, deployment)
        wait_rolled_out(apps)
        yield apps


def wait_rolled_out(apps, timeout: float = 60) -> None:
    from airflow_rollout.targets.kubernetes import rollout_problem

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(rollout_problem(apps.read_namespaced_deployment(name, NAMESPACE)) is None for name in DEPLOYMENTS):
            return
        time.sleep(0.3)
    raise TimeoutError("the stand-in's Deployments did not roll out")


def images(apps) -> dict[str, str]:
    return {
        name: apps.read_namespaced_deployment(name, NAMESPACE).spec.template.spec.containers[0].image.rsplit(":", 1)[1]
        for name in DEPLOYMENTS
    }


def templates(apps) -> dict[str, dict]:
    return {
        name: apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment(name, NAMESPACE).spec.template)
        for name in DEPLOYMENTS
    }


def data_target():
    from airflow_rollout.config import load_profile
    from airflow_rollout.targets.postgres import PostgresDataTarget

    return PostgresDataTarget(config=load_profile(SYSTEM).data_targets[0])


MONITORING_SERVERS = tuple(f"{server} http://127.0.0.1:" for server in ("Prometheus", "Grafana", "Alertmanager", "Loki"))


def test_good_rollout_migrates_with_a_job_and_is_promoted(release_dag, cluster):
    dag_run, record = run_signed_release(release_dag, SYSTEM, "1.1.0")

    assert (dag_run.state, record.status, record.previous_version) == ("success", "promoted", "1.0.0")
    assert images(cluster) == dict.fromkeys(DEPLOYMENTS, "1.1.0")
    assert "priority integer" in data_target().fingerprint()["public.routing_items"]["columns"]  # the Job's alembic ran
    [migration] = ledger().migrations(dag_run.run_id)
    assert "job ai-etl-assistant-migrate-" in migration and "alembic upgrade head" in migration
    states = ledger().app_states(dag_run.run_id)
    assert states["backend"].snapshot["template"]["spec"]["containers"][0]["image"] == f"{REGISTRY}/backend:1.0.0"
    # each rollout waited in the triggerer and the deploy step's next run measured it from the recorded start
    assert all(state.downtime_seconds is not None and state.switch_began is not None for state in states.values())
    items = checklist_results(dag_run.run_id, SYSTEM)
    assert items["**Configure liveness probes**"].detail.startswith("the livenessProbe of backend GETs /health/live on port ")
    assert items["**Configure readiness probes**"].detail.startswith("the readinessProbe of backend GETs /health/ready on port ")
    assert items["**Test database connectivity**"].passed  # SELECT 1 on app_db
    for text in shipped_checks(SYSTEM, "kubernetes"):  # every item the checklist reads from the cluster
        assert items[text].passed, items[text].detail
        assert items[text].detail.startswith("GET /ap") and "via ai_etl_kube" in items[text].detail
    for text in shipped_checks(SYSTEM, "monitoring"):  # Prometheus's retention, metrics and alerts; Grafana's dashboards; on-call
        assert items[text].passed, items[text].detail
        assert items[text].detail.startswith(MONITORING_SERVERS), items[text].detail
    # the seed's Redis, ClickHouse, ingress certificate and headers, read from the servers set up as the seed asks
    proven = [
        "Enable AOF (Append-Only File)",
        "Configure memory policies (allkeys-lru)",
        "Set maxmemory limit",
        "Configure master-slave replication",
        "**Optimize for analytics**",
        "Configure ReplicatedMergeTree engines",
        "Test replica synchronization",
        "Configure TTL for old metrics",
        "Set up partitioning by date",
        "Obtain valid SSL certificates (Let's Encrypt or commercial)",
        "Enable HTTPS everywhere",
        "Set HSTS headers",
        "**Enable security headers**",
        "Set appropriate autovacuum settings",
        "Airflow",
        "Airflow API",
        "Cache static assets",
        "Set up CloudFlare/CloudFront",
    ]
    assert {text: items[text].detail for text in proven if not items[text].passed} == {}
    assert items["Set maxmemory limit"].detail.endswith("CONFIG GET maxmemory -> '268435456'")
    # the seed's two "Enable compression" items, each read in its own section: ClickHouse's codecs and the CDN's gzip
    clickhouse, cdn = (
        checklist_results(dag_run.run_id, SYSTEM, section)["Enable compression"]
        for section in ("ClickHouse Setup", "Infrastructure Optimization")
    )
    assert clickhouse.passed and "system.columns" in clickhouse.detail, clickhouse.detail
    assert cdn.passed and "Content-Encoding" in cdn.detail, cdn.detail
    # the local PostgreSQL neither archives WAL nor speaks TLS: these items fail, as they would on such a server
    assert not items["Configure Point-in-Time Recovery (PITR)"].passed
    assert items["Enable encryption in transit (TLS)"].detail.endswith("-> False (expected True)")


def test_stalled_rollout_is_rolled_back_to_the_recorded_template(release_dag, cluster):
    before_templates, before_data = templates(cluster), data_target().fingerprint()

    dag_run, record = run_signed_release(release_dag, SYSTEM, "1.2.0-broken")

    assert record.status == "rolled_back"
    assert any("progress deadline" in reason for reason in record.decision_reasons or [])
    assert templates(cluster) == before_templates
    wait_rolled_out(cluster)
    assert data_target().fingerprint() == before_data
    restored = ledger().steps(dag_run.run_id)
    assert any(s.step == "verify_restored" and s.status == "succeeded" for s in restored)


def test_partial_rollout_of_two_of_three_deployments_restores_all_three(release_dag, cluster):
    before_templates, before_data = templates(cluster), data_target().fingerprint()

    dag_run, record = run_signed_release(release_dag, SYSTEM, "1.2.5")  # the gateway's 1.2.5 never gets ready

    assert record.status == "rolled_back"
    states = ledger().app_states(dag_run.run_id)
    assert (states["backend"].deployed_version, states["frontend"].deployed_version) == ("1.2.5", "1.2.5")
    assert states["llm-gateway"].deployed_version is None
    assert templates(cluster) == before_templates
    assert images(cluster) == dict.fromkeys(DEPLOYMENTS, "1.0.0")
    assert data_target().fingerprint() == before_data


def test_failing_migration_job_restores_the_data_and_leaves_the_deployments(release_dag, cluster):
    before_templates, before_data = templates(cluster), data_target().fingerprint()

    _dag_run, record = run_signed_release(release_dag, SYSTEM, "1.3.0")

    assert record.status == "rolled_back"
    assert any("migration job" in reason and "failed" in reason for reason in record.decision_reasons or [])
    assert data_target().fingerprint() == before_data
    assert templates(cluster) == before_templates
