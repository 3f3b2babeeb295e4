from __future__ import annotations

import os

import pytest


@pytest.fixture
def scratch_db(postgres):
    """A fresh database `unit`, reachable through the Airflow connection `unit_db`."""
    postgres.psql("postgres", "DROP DATABASE IF EXISTS unit WITH (FORCE)")
    postgres.create_database("unit")
    os.environ["AIRFLOW_CONN_UNIT_DB"] = postgres.airflow_conn_json("unit")
    return postgres
