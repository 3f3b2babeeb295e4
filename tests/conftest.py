"""Shared fixtures: a real local PostgreSQL, a Slack receiver, a migrated Airflow metadata database."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest
from testenv import SESSION_DIR, SLACK_OUT, SLACK_PORT  # first: it sets Airflow's environment

from rollout.devtools import local_postgres, slack_receiver

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


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
    yield SLACK_OUT
    server.shutdown()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()
