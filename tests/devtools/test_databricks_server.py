"""The Databricks stand-in driven through the provider's real DatabricksHook: SQL on Delta tables, Apps, Jobs, models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import requests
from airflow.providers.databricks.exceptions import DatabricksApiError
from airflow.providers.databricks.hooks.databricks import DatabricksHook
from tenacity import stop_after_attempt, wait_fixed

from devtools.databricks_server import DatabricksServer
from devtools.local_postgres import free_port

TOKEN = "dapi-standin-token"
WAREHOUSE = "standin-warehouse"
TABLE = "`release-cat`.`app data`.`users-v2`"
FINGERPRINT = f"SELECT count(*) AS row_count, coalesce(sum(xxhash64(*)), 0) AS content_hash FROM {TABLE}"

APP_SERVER = textwrap.dedent(
    """
    import http.server, os
    version, port = os.environ["APP_VERSION"], int(os.environ["DATABRICKS_APP_PORT"])
    assert os.path.exists("app.yaml"), "runs in its source directory"
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = version.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


@pytest.fixture
def dbx(tmp_path, monkeypatch):
    server = DatabricksServer(
        workspace_root=tmp_path / "ws",
        state_dir=tmp_path / "state",
        apps={"dashboard": free_port()},
        token=TOKEN,
        app_ready_timeout=10,
    )
    with server:
        monkeypatch.setenv("AIRFLOW_CONN_DBX_STANDIN", server.airflow_connection())
        yield server


@pytest.fixture
def hook(dbx):
    return DatabricksHook(databricks_conn_id="dbx_standin", retry_args={"stop": stop_after_attempt(3), "wait": wait_fixed(0.05)})


def sql(hook: DatabricksHook, statement: str, parameters: list[dict] | None = None, **extra) -> dict:
    """Post a statement the way the SQL statements operator does (wait_timeout 0s), then read its end state."""
    body = {"statement": statement, "warehouse_id": WAREHOUSE, "wait_timeout": "0s", **extra}
    if parameters:
        body["parameters"] = parameters
    statement_id = hook.post_sql_statement(body)
    return hook._do_api_call(("GET", f"2.0/sql/statements/{statement_id}"))


def rows(response: dict) -> list[list]:
    assert response["status"]["state"] == "SUCCEEDED", response["status"]
    return response["result"].get("data_array", [])


def columns(response: dict) -> list[str]:
    return [column["name"] for column in response["manifest"]["schema"]["columns"]]


def history(hook: DatabricksHook) -> list[dict]:
    response = sql(hook, f"DESCRIBE HISTORY {TABLE}")
    return [dict(zip(columns(response), row, strict=True)) for row in rows(response)]


def test_the_hook_reaches_the_stand_in_through_an_env_var_connection(dbx, hook):
    assert json.loads(dbx.airflow_connection()) == {
        "conn_type": "databricks",
        "host": "127.0.0.1",
        "port": dbx.port,
        "schema": "http",
        "password": TOKEN,
    }
    assert hook._endpoint_url("api/2.0/sql/statements") == f"http://127.0.0.1:{dbx.port}/api/2.0/sql/statements"
    statement_id = hook.post_sql_statement({"statement": "SELECT 1 AS one", "warehouse_id": WAREHOUSE, "wait_timeout": "0s"})
    state = hook.get_sql_statement_state(statement_id)
    assert state.is_successful
    assert dbx.statements()[-1]["statement"] == "SELECT 1 AS one"
    assert hook.get_warehouse_state(WAREHOUSE).is_running
    # a synchronous call answers the result at once, values as strings
    answer = hook._do_api_call(
        ("POST", "2.0/sql/statements"), {"statement": "SELECT 7/2 AS half, 'x' AS s, NULL AS n", "warehouse_id": WAREHOUSE}
    )
    assert answer["result"]["data_array"] == [["3.5", "x", None]]
    assert [c["type_name"] for c in answer["manifest"]["schema"]["columns"]] == ["DOUBLE", "STRING", "STRING"]
    # no token, a wrong token, an unknown warehouse
    assert requests.get(f"{dbx.url}/api/2.0/sql/warehouses", timeout=5).status_code == 401
    wrong = requests.get(f"{dbx.url}/api/2.0/sql/warehouses", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 403
    with pytest.raises(DatabricksApiError) as excinfo:
        hook.post_sql_statement({"statement": "SELECT 1", "warehouse_id": "nope"})
    assert excinfo.value.http_status_code == 404
    assert "RESOURCE_DOES_NOT_EXIST" in str(excinfo.value)
    assert dbx.statements()[-1]["state"] == "REJECTED"


def test_delta_versions_restore_and_fingerprint(dbx, hook):
    for statement in (
        "CREATE CATALOG IF NOT EXISTS `release-cat`",
        "CREATE SCHEMA IF NOT EXISTS `release-cat`.`app data`",
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id BIGINT NOT NULL, name STRING, score DOUBLE) USING DELTA",
    ):
        rows(sql(hook, statement))
    inserted = sql(
        hook,
        f"INSERT INTO {TABLE} (id, name, score) VALUES (:id, :name, 1.5), (2, 'bob', 2.0)",
        [{"name": "id", "value": "1", "type": "BIGINT"}, {"name": "name", "value": "ann"}],
    )
    assert rows(inserted) == [["2", "2"]]
    assert columns(inserted) == ["num_affected_rows", "num_inserted_rows"]
    recorded = history(hook)[0]
    assert (recorded["version"], recorded["operation"]) == ("1", "WRITE")
    before = rows(sql(hook, FINGERPRINT))
    assert before[0][0] == "2"
    # the same contents in another order give the same fingerprint
    rows(sql(hook, "CREATE TABLE `release-cat`.`app data`.shuffled AS SELECT * FROM " + TABLE + " ORDER BY id DESC"))
    assert rows(sql(hook, FINGERPRINT.replace(TABLE, "`release-cat`.`app data`.shuffled"))) == before

    # the release: a backup (CTAS), a schema change and a data change
    rows(sql(hook, f"CREATE OR REPLACE TABLE `release-cat`.`app data`.`users-v2-backup` AS SELECT * FROM {TABLE}"))
    rows(sql(hook, f"ALTER TABLE {TABLE} ADD COLUMNS (email STRING COMMENT 'new')"))
    assert rows(sql(hook, f"UPDATE {TABLE} SET email = 'b@x', score = score + 1 WHERE id = 2")) == [["1"]]
    rows(sql(hook, f"DELETE FROM {TABLE} WHERE name = 'ann'"))
    after = rows(sql(hook, FINGERPRINT))
    assert after != before
    assert [row[0] for row in rows(sql(hook, f"DESCRIBE TABLE {TABLE}"))] == ["id", "name", "score", "email"]
    assert [h["operation"] for h in history(hook)][:3] == ["DELETE", "UPDATE", "ADD COLUMNS"]
    assert rows(sql(hook, f"SELECT name FROM {TABLE} VERSION AS OF {recorded['version']} ORDER BY id")) == [["ann"], ["bob"]]

    # back to the recorded version: contents, columns and fingerprint as they were; a new RESTORE version
    rows(sql(hook, f"RESTORE TABLE {TABLE} TO VERSION AS OF {recorded['version']}"))
    assert rows(sql(hook, FINGERPRINT)) == before
    assert rows(sql(hook, f"SELECT * FROM {TABLE} ORDER BY id")) == [["1", "ann", "1.5"], ["2", "bob", "2.0"]]
    assert rows(sql(hook, f"DESCRIBE TABLE {TABLE}")) == [["id", "bigint", None], ["name", "string", None], ["score", "double", None]]
    latest = history(hook)[0]
    assert latest["operation"] == "RESTORE"
    assert json.loads(latest["operationParameters"])["version"] == recorded["version"]
    assert int(latest["version"]) == 5
    assert len(rows(sql(hook, f"DESCRIBE HISTORY {TABLE} LIMIT 2"))) == 2

    listed = sql(hook, "SHOW TABLES IN `release-cat`.`app data`")
    assert columns(listed) == ["database", "tableName", "isTemporary"]
    assert [row[1] for row in rows(listed)] == ["shuffled", "users-v2", "users-v2-backup"]
    rows(sql(hook, "GRANT SELECT, MODIFY ON TABLE `release-cat`.`app data`.`users-v2` TO `release bots`"))
    rows(sql(hook, "GRANT USE SCHEMA ON SCHEMA `release-cat`.`app data` TO `release bots`"))
    grants = rows(sql(hook, f"SHOW GRANTS `release bots` ON TABLE {TABLE}"))
    assert ["release bots", "SELECT", "TABLE", "release-cat.app data.users-v2"] in grants
    assert ["release bots", "USE SCHEMA", "SCHEMA", "release-cat.app data"] in grants
    rows(sql(hook, f"VACUUM {TABLE}"))
    rows(sql(hook, "DROP TABLE IF EXISTS `release-cat`.`app data`.shuffled"))
    # unqualified names take the statement's catalog and schema
    assert rows(sql(hook, "SELECT count(*) AS n FROM `users-v2`", catalog="release-cat", schema="app data")) == [["2"]]


def test_failures_are_failed_statements_with_a_message(dbx, hook):
    for statement in ("CREATE CATALOG c", "CREATE SCHEMA c.s", "CREATE TABLE c.s.t (id BIGINT)"):
        rows(sql(hook, statement))
    requests.post(
        f"{dbx.url}/_standin/faults", json={"statement_contains": "alter table", "message": "injected: no ALTER today"}, timeout=5
    )
    failed = sql(hook, "ALTER TABLE c.s.t ADD COLUMNS (x STRING)")
    assert failed["status"] == {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": "injected: no ALTER today"}}
    state = hook.get_sql_statement_state(failed["statement_id"])
    assert (state.state, state.error_message) == ("FAILED", "injected: no ALTER today")
    assert rows(sql(hook, "DESCRIBE TABLE c.s.t")) == [["id", "bigint", None]]  # nothing changed

    for statement, error_class in (
        ("MERGE INTO c.s.t USING c.s.t AS o ON t.id = o.id WHEN MATCHED THEN DELETE", "UNSUPPORTED_FEATURE"),
        ("SELECT * FROM c.s.missing", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT nope FROM c.s.t", "UNRESOLVED_COLUMN"),
        ("INSERT INTO c.s.t VALUES ('not a number')", "DELTA_FAILED_TO_MERGE_FIELDS"),
        ("CREATE TABLE c.s.t (id BIGINT)", "TABLE_OR_VIEW_ALREADY_EXISTS"),
        ("CREATE TABLE c.s.u (tags ARRAY<STRING>)", "UNSUPPORTED_FEATURE"),
        ("SELECT 1; SELECT 2", "MULTIPLE_STATEMENTS"),
        ("SELECT :missing", "UNBOUND_SQL_PARAMETER"),
    ):
        response = sql(hook, statement)
        assert response["status"]["state"] == "FAILED", statement
        assert f"[{error_class}" in response["status"]["error"]["message"], response["status"]["error"]
    assert [s["state"] for s in dbx.statements()][-8:] == ["FAILED"] * 8
    assert dbx.statements()[3]["statement"].startswith("ALTER TABLE")

    # an HTTP fault (503 once): the hook retries and gets through
    dbx.add_fault(
        path_contains="/api/2.0/sql/statements", method="POST", status=503, error_code="TEMPORARILY_UNAVAILABLE", message="busy", times=1
    )
    assert rows(sql(hook, "SELECT count(*) AS n FROM c.s.t")) == [["0"]]

    requests.post(f"{dbx.url}/_standin/reset", timeout=5)
    assert dbx.statements() == []
    assert sql(hook, "SELECT * FROM c.s.t")["status"]["state"] == "FAILED"


def _write_app(dbx: DatabricksServer, path: str, version: str, command: list[str] | None = None) -> str:
    directory = dbx.workspace.workspace_root.joinpath(*path.strip("/").split("/"))
    directory.mkdir(parents=True)
    (directory / "server.py").write_text(APP_SERVER)
    spec = {"command": command or ["python", "server.py"], "env": [{"name": "APP_VERSION", "value": version}]}
    (directory / "app.yaml").write_text(json.dumps(spec))  # JSON is YAML
    return path


def _deploy(dbx: DatabricksServer, hook: DatabricksHook, path: str) -> dict:
    deployment = hook._do_api_call(("POST", "2.0/apps/dashboard/deployments"), {"source_code_path": path, "mode": "SNAPSHOT"})
    assert deployment["status"]["state"] == "IN_PROGRESS"
    deadline = time.monotonic() + 20
    while deployment["status"]["state"] == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.1)
        deployment = hook._do_api_call(("GET", f"2.0/apps/dashboard/deployments/{deployment['deployment_id']}"))
    return deployment


def test_app_deployments_run_real_processes(dbx, hook):
    v1 = _write_app(dbx, "/Workspace/Users/me@example.com/dashboard-v1", "1.0")
    v2 = _write_app(dbx, "/Workspace/Users/me@example.com/dashboard-v2", "2.0")
    broken = _write_app(dbx, "/Workspace/Users/me@example.com/dashboard-broken", "3.0", ["python", "-c", "raise SystemExit(3)"])
    app = hook._do_api_call(("GET", "2.0/apps/dashboard"))
    assert app["app_status"]["state"] == "UNAVAILABLE" and app["compute_status"]["state"] == "ACTIVE"
    url = app["url"]

    assert _deploy(dbx, hook, v1)["status"]["state"] == "SUCCEEDED"
    assert requests.get(url, timeout=5).text == "1.0"
    first_pid = dbx.workspace.apps["dashboard"].process.current().pid

    assert _deploy(dbx, hook, v2)["status"]["state"] == "SUCCEEDED"
    assert requests.get(url, timeout=5).text == "2.0"
    assert not psutil.pid_exists(first_pid)
    app = hook._do_api_call(("GET", "2.0/apps/dashboard"))
    assert app["app_status"]["state"] == "RUNNING"
    assert app["active_deployment"]["source_code_path"] == v2

    failed = _deploy(dbx, hook, broken)
    assert failed["status"]["state"] == "FAILED"
    app = hook._do_api_call(("GET", "2.0/apps/dashboard"))
    assert app["app_status"]["state"] == "CRASHED"
    assert app["active_deployment"]["source_code_path"] == v2
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)

    assert _deploy(dbx, hook, v2)["status"]["state"] == "SUCCEEDED"  # the rollback
    assert requests.get(url, timeout=5).text == "2.0"
    listed = hook._do_api_call(("GET", "2.0/apps/dashboard/deployments"))["app_deployments"]
    assert [d["status"]["state"] for d in listed] == ["SUCCEEDED", "FAILED", "SUCCEEDED", "SUCCEEDED"]
    with pytest.raises(DatabricksApiError) as excinfo:
        hook._do_api_call(("POST", "2.0/apps/dashboard/deployments"), {"source_code_path": "/Workspace/Users/nobody/app"})
    assert excinfo.value.http_status_code == 404

    last_pid = dbx.workspace.apps["dashboard"].process.current().pid
    dbx.stop()
    assert not psutil.pid_exists(last_pid)


def test_job_runs_end_as_defined(dbx, hook):
    good = dbx.define_job(name="nightly-etl", outcome="SUCCESS", seconds=1.0)
    bad = dbx.define_job(name="backfill", outcome="FAILED", state_message="Task main failed: boom")
    good_run = hook.run_now({"job_id": good, "job_parameters": {"release": "1.2.3"}})
    bad_run = hook.run_now({"job_id": bad})
    assert hook.get_run_state(good_run).life_cycle_state in ("PENDING", "RUNNING")
    deadline = time.monotonic() + 5
    while not hook.get_run_state(good_run).is_terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    state = hook.get_run_state(good_run)
    assert (state.life_cycle_state, state.result_state, state.is_successful) == ("TERMINATED", "SUCCESS", True)
    run = hook.get_run(good_run)
    assert run["job_id"] == good and run["tasks"][0]["task_key"] == "main"
    assert run["job_parameters"] == [{"name": "release", "value": "1.2.3"}]
    assert hook.get_run_page_url(good_run).startswith(dbx.url)
    failed = hook.get_run_state(bad_run)
    assert (failed.life_cycle_state, failed.result_state, failed.state_message) == ("TERMINATED", "FAILED", "Task main failed: boom")
    assert hook.find_job_id_by_name("backfill") == bad
    assert dbx.runs()[0]["job_parameters"] == {"release": "1.2.3"}
    with pytest.raises(DatabricksApiError):
        hook.run_now({"job_id": 999999})


def test_model_aliases_and_serving_endpoints(dbx, hook):
    name = "release-cat.models.churn"
    dbx.create_model(name, versions=3)
    with pytest.raises(DatabricksApiError) as excinfo:
        hook._do_api_call(("GET", "2.0/mlflow/registered-models/alias"), {"name": name, "alias": "champion"})
    assert excinfo.value.http_status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in str(excinfo.value)

    hook._do_api_call(("POST", "2.0/mlflow/registered-models/alias"), {"name": name, "alias": "champion", "version": "1"})
    got = hook._do_api_call(("GET", "2.0/mlflow/registered-models/alias"), {"name": name, "alias": "champion"})
    assert (got["model_version"]["version"], got["model_version"]["aliases"]) == ("1", ["champion"])
    hook._do_api_call(("POST", "2.0/mlflow/registered-models/alias"), {"name": name, "alias": "champion", "version": 2})
    model = hook._do_api_call(("GET", "2.0/mlflow/registered-models/get"), {"name": name})["registered_model"]
    assert model["aliases"] == [{"alias": "champion", "version": "2"}]
    version = hook._do_api_call(("GET", "2.0/mlflow/model-versions/get"), {"name": name, "version": "1"})["model_version"]
    assert version["aliases"] == []
    with pytest.raises(DatabricksApiError):  # no such version
        hook._do_api_call(("POST", "2.0/mlflow/registered-models/alias"), {"name": name, "alias": "champion", "version": "9"})
    # the hook sends no body with DELETE: name and alias go in the query
    hook._do_api_call(("DELETE", f"2.0/mlflow/registered-models/alias?name={name}&alias=champion"))
    with pytest.raises(DatabricksApiError):
        hook._do_api_call(("GET", "2.0/mlflow/registered-models/alias"), {"name": name, "alias": "champion"})

    requests.post(
        f"{dbx.url}/_standin/serving-endpoints",
        json={
            "name": "churn-ep",
            "ready": "NOT_READY",
            "config_update": "IN_PROGRESS",
            "served_entities": [{"entity_name": name, "entity_version": "2"}],
        },
        timeout=5,
    )
    endpoint = hook._do_api_call(("GET", "2.0/serving-endpoints/churn-ep"))
    assert endpoint["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    assert endpoint["config"]["served_entities"][0]["entity_version"] == "2"
    dbx.set_serving_endpoint("churn-ep")
    assert hook._do_api_call(("GET", "2.0/serving-endpoints/churn-ep"))["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    with pytest.raises(DatabricksApiError) as excinfo:
        hook._do_api_call(("GET", "2.0/serving-endpoints/nope"))
    assert excinfo.value.http_status_code == 404


def test_command_line(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.databricks_server",
            "--port",
            str(port),
            "--workspace-root",
            str(tmp_path),
            "--state-dir",
            str(tmp_path / "s"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"databricks stand-in at http://127.0.0.1:{port}"
        answer = requests.get(f"http://127.0.0.1:{port}/api/2.0/sql/warehouses", headers={"Authorization": "Bearer t"}, timeout=5)
        assert answer.json()["warehouses"][0]["id"] == WAREHOUSE
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_workspace_settings_answer_with_their_documented_fields(dbx, hook):
    dbx.set_settings(
        secret_scopes=[{"name": "prod", "backend_type": "AZURE_KEYVAULT", "keys": ["token"]}],
        workspace_conf={"enableIpAccessLists": "true"},
        cluster_policies=[{"name": "jobs", "definition": {"autotermination_minutes": {"type": "fixed", "value": 30}}}],
    )
    dbx.add_warehouse("wh", warehouse_type="CLASSIC", enable_photon=False)
    assert hook._do_api_call(("GET", "2.0/secrets/scopes/list")) == {"scopes": [{"name": "prod", "backend_type": "AZURE_KEYVAULT"}]}
    [secret] = hook._do_api_call(("GET", "2.0/secrets/list"), {"scope": "prod"})["secrets"]
    assert secret["key"] == "token" and "value" not in secret
    with pytest.raises(DatabricksApiError, match="RESOURCE_DOES_NOT_EXIST"):
        hook._do_api_call(("GET", "2.0/secrets/list"), {"scope": "none"})
    conf = hook._do_api_call(("GET", "2.0/workspace-conf"), {"keys": "enableIpAccessLists,enableTokensConfig"})
    assert conf == {"enableIpAccessLists": "true", "enableTokensConfig": None}
    [policy] = hook._do_api_call(("GET", "2.0/policies/clusters/list"))["policies"]
    assert json.loads(policy["definition"]) == {"autotermination_minutes": {"type": "fixed", "value": 30}}
    assert hook._do_api_call(("GET", "2.0/policies/clusters/get"), {"policy_id": policy["policy_id"]})["name"] == "jobs"
    warehouse = hook._do_api_call(("GET", "2.0/sql/warehouses/wh"))
    assert (warehouse["warehouse_type"], warehouse["enable_photon"], warehouse["state"]) == ("CLASSIC", False, "RUNNING")
    assert hook._do_api_call(("GET", "2.0/ip-access-lists")) == {"ip_access_lists": []}


def test_service_principals_and_effective_permissions_answer_as_documented(dbx, hook):
    dbx.set_settings(service_principals=[{"displayName": "app-sp"}, {"displayName": "other", "active": False}])
    listed = hook._do_api_call(("GET", "2.0/preview/scim/v2/ServicePrincipals"), {"filter": 'displayName eq "app-sp"'})
    assert (listed["totalResults"], [sp["displayName"] for sp in listed["Resources"]]) == (1, ["app-sp"])
    assert listed["Resources"][0]["active"] is True and listed["Resources"][0]["applicationId"]
    for statement in (
        "CREATE CATALOG c",
        "CREATE SCHEMA c.s",
        "GRANT USE CATALOG ON CATALOG c TO `app-sp`",
        "GRANT SELECT ON SCHEMA c.s TO `app-sp`",
        "GRANT SELECT ON SCHEMA c.s TO `someone`",
    ):
        assert sql(hook, statement)["status"]["state"] == "SUCCEEDED", statement
    # the schema's own grant, and the catalog's one it inherits; `principal` narrows to one grantee
    answer = hook._do_api_call(("GET", "2.1/unity-catalog/effective-permissions/schema/c.s"), {"principal": "app-sp"})
    assert answer == {
        "privilege_assignments": [
            {
                "principal": "app-sp",
                "privileges": [
                    {"privilege": "USE_CATALOG", "inherited_from_type": "CATALOG", "inherited_from_name": "c"},
                    {"privilege": "SELECT"},
                ],
            }
        ]
    }
    every = hook._do_api_call(("GET", "2.1/unity-catalog/effective-permissions/schema/c.s"))["privilege_assignments"]
    assert [a["principal"] for a in every] == ["app-sp", "someone"]
    with pytest.raises(DatabricksApiError, match="RESOURCE_DOES_NOT_EXIST"):
        hook._do_api_call(("GET", "2.1/unity-catalog/effective-permissions/schema/c.none"))


def test_app_identity_warehouse_config_and_dashboards_answer_as_documented(dbx, hook):
    app = hook._do_api_call(("GET", "2.0/apps/dashboard"))
    assert app["service_principal_name"] == "app-dashboard" and app["service_principal_client_id"] and app["service_principal_id"]
    assert "user_api_scopes" not in app  # a new app acts only as its service principal
    dbx.set_settings(
        apps={"dashboard": {"user_api_scopes": ["sql"], "effective_user_api_scopes": ["sql"], "service_principal_client_id": None}},
        warehouse_config={"sql_configuration_parameters": {"configuration_pairs": [{"key": "STATEMENT_TIMEOUT", "value": "600"}]}},
        dashboards=[{"display_name": "Costs"}, {"display_name": "Old", "lifecycle_state": "TRASHED"}],
    )
    app = hook._do_api_call(("GET", "2.0/apps/dashboard"))
    assert app["effective_user_api_scopes"] == ["sql"] and "service_principal_client_id" not in app
    config = hook._do_api_call(("GET", "2.0/sql/config/warehouses"))
    assert config["sql_configuration_parameters"]["configuration_pairs"] == [{"key": "STATEMENT_TIMEOUT", "value": "600"}]
    listed = hook._do_api_call(("GET", "2.0/lakeview/dashboards"))["dashboards"]
    assert [(d["display_name"], d["lifecycle_state"]) for d in listed] == [("Costs", "ACTIVE")]
    trashed_too = hook._do_api_call(("GET", "2.0/lakeview/dashboards"), {"show_trashed": "true"})["dashboards"]
    assert [d["display_name"] for d in trashed_too] == ["Costs", "Old"]


def test_workspace_files_export_as_base64_content(dbx, hook, tmp_path):
    import base64

    source = tmp_path / "ws" / "Workspace" / "Apps" / "dashboard-1.0.0"
    source.mkdir(parents=True)
    (source / "app.yaml").write_text("env:\n  - {name: DEBUG, value: 'false'}\n")
    for export_format in ("SOURCE", "AUTO", "RAW"):
        exported = hook._do_api_call(
            ("GET", "2.0/workspace/export"), {"path": "/Workspace/Apps/dashboard-1.0.0/app.yaml", "format": export_format}
        )
        assert base64.b64decode(exported["content"]).decode() == "env:\n  - {name: DEBUG, value: 'false'}\n"
        assert exported["file_type"] == "yaml"
    with pytest.raises(DatabricksApiError, match="RESOURCE_DOES_NOT_EXIST"):
        hook._do_api_call(("GET", "2.0/workspace/export"), {"path": "/Workspace/Apps/dashboard-1.0.0/app.yml"})
    with pytest.raises(DatabricksApiError, match="INVALID_PARAMETER_VALUE"):
        hook._do_api_call(("GET", "2.0/workspace/export"), {"path": "/Workspace/../etc/passwd"})
    with pytest.raises(DatabricksApiError, match="INVALID_PARAMETER_VALUE"):
        hook._do_api_call(("GET", "2.0/workspace/export"), {"path": "/Workspace/Apps/dashboard-1.0.0/app.yaml", "format": "DBC"})
