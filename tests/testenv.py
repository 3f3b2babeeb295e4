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

from rollout.devtools import local_postgres, slack_receiver  # noqa: E402 - after the environment is set

APP_PORT = local_postgres.free_port()
SLACK_PORT = local_postgres.free_port()
SLACK_OUT = SESSION_DIR / "slack.jsonl"


def write_test_profiles() -> None:
    """The demo profile as shipped, but on free ports and with a private copy of its migrations."""
    SYSTEMS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "include" / "migrations" / "demo", MIGRATIONS_DIR)
    shutil.copytree(ROOT / "include" / "demo_app" / "releases", RELEASES_DIR)
    profile = yaml.safe_load((ROOT / "include" / "systems" / "demo.yaml").read_text())
    profile["app_targets"][0]["port"] = APP_PORT
    profile["slack_files"] = {"conn_id": "slack_files", "channel_id": "C0TESTS1"}
    profile["data_targets"][0]["migrations"]["path"] = str(MIGRATIONS_DIR)
    (SYSTEMS_DIR / "demo.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))


write_test_profiles()


def slack_messages() -> list[str]:
    return slack_receiver.read_messages(SLACK_OUT)
