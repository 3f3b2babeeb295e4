"""The ledger's versioned schema against a real PostgreSQL: a ledger of an older build is brought up to date in place."""

from __future__ import annotations

import json

import pytest

from airflow_rollout.ledger import SCHEMA_V1, SCHEMA_VERSIONS, Attempt, Ledger, this_host

pytestmark = pytest.mark.e2e

DATABASE = "ledger_upgrade"


@pytest.fixture
def version_1_ledger(postgres, monkeypatch) -> Ledger:
    """A ledger database as schema version 1 left it, holding one release with one step attempt (its host unknown)."""
    postgres.psql("postgres", f'DROP DATABASE IF EXISTS "{DATABASE}"')
    postgres.create_database(DATABASE)
    postgres.psql(DATABASE, SCHEMA_V1)
    postgres.psql(DATABASE, "CREATE TABLE rollout_ledger_schema (version integer PRIMARY KEY, applied_at timestamptz DEFAULT now())")
    postgres.psql(DATABASE, "INSERT INTO rollout_ledger_schema (version) VALUES (1)")
    postgres.psql(DATABASE, "INSERT INTO rollout_release (release_id, system, version, status) VALUES ('r1', 'demo', '1.1.0', 'running')")
    postgres.psql(
        DATABASE,
        "INSERT INTO rollout_step_attempt (release_id, phase, step, run_id, try_number, status)"
        " VALUES ('r1', 'backup', 'backup_data', 'r1', 1, 'succeeded')",
    )
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_UPGRADE", postgres.airflow_conn_json(DATABASE))
    return Ledger(conn_id="ledger_upgrade")


def test_a_version_1_ledger_is_upgraded_in_place_and_then_keeps_each_attempts_host(version_1_ledger):
    ledger = version_1_ledger

    ledger.ensure_schema()

    assert ledger.database.schema_version() == len(SCHEMA_VERSIONS) == 4
    ledger.step_started("r1", "migrate", "migrate_data", Attempt(run_id="r1", try_number=1, hostname="worker-a"))
    ledger.step_started("r1", "migrate", "migrate_data", Attempt(run_id="r1", try_number=2, hostname="worker-b"))
    ledger.step_started("r1", "deploy", "deploy_apps", Attempt(run_id="r1", try_number=1))
    attempts = [(a.step, a.try_number, a.hostname) for a in ledger.step_attempts("r1")]
    assert attempts == [
        ("backup_data", 1, None),  # written before the ledger kept hosts: kept, its host unknown
        ("migrate_data", 1, "worker-a"),
        ("migrate_data", 2, "worker-b"),  # a retry on another worker is told apart from the attempt it follows
        ("deploy_apps", 1, this_host()),  # by default, the host of the process that runs the step
    ]
    assert json.loads(ledger.record_as_json("r1"))["attempts"][1]["hostname"] == "worker-a"
    ledger.close()
