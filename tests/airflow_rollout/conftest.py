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


@pytest.fixture
def dbx_app(tmp_path, monkeypatch):
    """The Databricks stand-in with app `web`: sources 1.0.0 (serves) and 2.0.0-broken (exits at once) in the workspace."""
    import sys

    from devtools.databricks_server import DatabricksServer
    from devtools.local_postgres import free_port

    serve = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
    for version, command in (("1.0.0", serve), ("2.0.0-broken", [sys.executable, "-c", "raise SystemExit(3)"])):
        source = tmp_path / "ws" / "Workspace" / "Apps" / f"web-{version}"
        source.mkdir(parents=True)
        (source / "app.yaml").write_text(f"command: {command!r}\n")
    apps = {"web": free_port()}
    with DatabricksServer(workspace_root=tmp_path / "ws", state_dir=tmp_path / "state", apps=apps, app_ready_timeout=5) as server:
        monkeypatch.setenv("AIRFLOW_CONN_DBX_STANDIN", server.airflow_connection())
        yield server
