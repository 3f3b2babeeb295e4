"""Fixtures of the end-to-end tests: the parsed DAGs and the demo system at its starting point."""

from __future__ import annotations

from pathlib import Path

import pytest
from observe import STATE_DIR


@pytest.fixture(scope="session")
def dags(airflow_db, postgres, slack):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).parents[2] / "dags"))
    assert not bag.import_errors
    return bag.dags


@pytest.fixture
def release_dag(dags):
    return dags["release"]


@pytest.fixture
def demo(postgres, slack):
    """The demo system at its starting point (data and app of 1.0.0), an empty ledger and Slack log."""
    from rollout.config import load_profile
    from rollout.devtools import demo_system
    from rollout.ledger import Ledger

    profile = load_profile("demo")
    ledger = Ledger(conn_id=profile.ledger_conn_id)
    ledger.ensure_schema()
    postgres.psql("rollout_ledger", "TRUNCATE rollout_release, rollout_lock, rollout_notification CASCADE")
    Path(slack).write_text("")
    demo_system.reset(profile, STATE_DIR)
    yield profile
    demo_system.stop_apps(profile, STATE_DIR)
