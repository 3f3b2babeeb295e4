"""The tests' environment: a private Airflow home and state directory, free ports, the test profiles.

Airflow reads its configuration when first imported, so conftest imports this module before anything
imports Airflow. Tests import its names (ports, directories, `slack_messages`) from here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SESSION_DIR = Path(tempfile.mkdtemp(prefix="rollout-tests-"))
SYSTEMS_DIR = SESSION_DIR / "systems"
MIGRATIONS_DIR = SESSION_DIR / "migrations" / "demo"
RELEASES_DIR = SESSION_DIR / "demo_releases"  # tests add builds of their own here

os.environ.update(
    AIRFLOW_HOME=str(SESSION_DIR / "airflow"),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{SESSION_DIR / 'airflow' / 'airflow.db'}",
    AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    ROLLOUT_SYSTEMS_DIR=str(SYSTEMS_DIR),
    ROLLOUT_STATE_DIR=str(SESSION_DIR / "state"),
    DEMO_RELEASES_DIR=str(RELEASES_DIR),
)
(SESSION_DIR / "airflow").mkdir(parents=True)

from devtools import local_postgres, slack_receiver  # noqa: E402 - after the environment is set

APP_PORT = local_postgres.free_port()
SLACK_PORT = local_postgres.free_port()
SLACK_OUT = SESSION_DIR / "slack.jsonl"

# The servers of seeds 003 (/opt/routing-ml) and 004 (/opt/mlops), played in the session directory, their
# services on free ports.
SERVERS = {
    "routing-ml-platform": ("/opt/routing-ml", SESSION_DIR / "opt-routing-ml", ("8000", "3000", "3001")),
    "mlops-system": ("/opt/mlops", SESSION_DIR / "opt-mlops", ("8000",)),
    "ai-etl-assistant": ("/opt/ai-etl", SESSION_DIR / "opt-ai-etl", ("8000", "3000", "8080")),  # a cluster: ports only
}
SERVER_PORTS = {system: {port: local_postgres.free_port() for port in ports} for system, (_, _, ports) in SERVERS.items()}


def write_test_profiles() -> None:
    """The demo profile as shipped, but on free ports and with a private copy of its migrations; the
    seed systems' profiles; the Alembic-managed test service's profile (`alembic-svc`)."""
    SYSTEMS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "include" / "migrations" / "demo", MIGRATIONS_DIR)
    shutil.copytree(ROOT / "include" / "demo_app" / "releases", RELEASES_DIR)
    profile = yaml.safe_load((ROOT / "include" / "systems" / "demo.yaml").read_text())
    profile["app_targets"][0]["port"] = APP_PORT
    profile["slack_files"] = {"conn_id": "slack_files", "channel_id": "C0TESTS1"}
    profile["data_targets"][0]["migrations"]["path"] = str(MIGRATIONS_DIR)
    (SYSTEMS_DIR / "demo.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    for shipped in (ROOT / "include" / "systems").glob("*.yaml"):
        if shipped.stem != "demo":  # the seed systems' profiles as shipped, their servers moved into the session
            text = shipped.read_text()
            (SYSTEMS_DIR / shipped.name).write_text(on_session_server(shipped.stem, text) if shipped.stem in SERVERS else text)
    (SYSTEMS_DIR / "alembic-svc.yaml").write_text(yaml.safe_dump(alembic_svc_profile(), sort_keys=False))


def on_session_server(system: str, text: str) -> str:
    """A file of a seed system's server (profile, compose file) with its directory and ports moved to this session's."""
    seed_dir, session_dir, _ = SERVERS[system]
    text = text.replace(seed_dir, str(session_dir))
    for seed_port, port in SERVER_PORTS[system].items():
        text = text.replace(f"127.0.0.1:{seed_port}", f"127.0.0.1:{port}").replace(f'"{seed_port}:', f'"{port}:')
    return text


# A third-party-like service managed by real Alembic (tests/fixtures/alembic_service): each version refuses
# to start on a database revision it does not know, and 1.1.0 runs workers that outlive their leader.
ALEMBIC_SERVICE = ROOT / "tests" / "fixtures" / "alembic_service"
ALEMBIC_SVC_PORT = local_postgres.free_port()


def alembic_svc_profile() -> dict:
    """Its profile: migrations by the service's own `manage.py`, one local process, checks as the demo's."""
    database_url = {"DATABASE_URL": "alembic_svc_db"}
    return {
        "name": "alembic-svc",
        "description": "Notes API managed by Alembic (tests/fixtures/alembic_service)",
        "ledger_conn_id": "rollout_ledger",
        "slack_conn_id": "slack_demo",
        "data_targets": [
            {
                "name": "notes_db",
                "kind": "postgres",
                "conn_id": "alembic_svc_db",
                "schemas": ["public"],
                "volatile_tables": ["worker_heartbeats"],  # 1.1.0's workers write it while it serves
                "migrations": {
                    "kind": "command",
                    "command": ["{python}", str(ALEMBIC_SERVICE / "manage.py"), "migrate", "--version", "{version}"],
                    "env_from_connections": database_url,
                },
            }
        ],
        "app_targets": [
            {
                "name": "notes_api",
                "kind": "local_process",
                "command": ["{python}", str(ALEMBIC_SERVICE / "server.py"), "--version", "{version}", "--port", "{port}"],
                "port": ALEMBIC_SVC_PORT,
                "env_from_connections": database_url,
                "readiness": {"path": "/health", "timeout_seconds": 20},
                "stop_timeout_seconds": 3,
            }
        ],
        "checks": [
            {
                "name": "health",
                "kind": "http",
                "app": "notes_api",
                "path": "/health",
                "expect_json": {"status": "ok", "version": "{version}"},
                "critical": True,
            },
            {
                "name": "notes_smoke",
                "kind": "http",
                "app": "notes_api",
                "path": "/api/notes",
                "expect_shape": {"type": "list", "keys": ["id", "title"]},
                "critical": True,
            },
            {
                "name": "notes_latency",
                "kind": "latency",
                "app": "notes_api",
                "path": "/api/notes",
                "requests": 200,
                "concurrency": 5,
                "critical": False,
            },
        ],
    }


write_test_profiles()


def slack_messages() -> list[str]:
    return slack_receiver.read_messages(SLACK_OUT)


def slack_payloads() -> list[dict]:
    """The webhook messages as sent: the plain-text fallback `text` and the Block Kit `blocks`."""
    return slack_receiver.read_payloads(SLACK_OUT)
