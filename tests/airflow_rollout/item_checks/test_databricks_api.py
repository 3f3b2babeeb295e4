"""`kind: databricks_api` items of seeds 000 and 001 run as shipped against the Databricks stand-in, through
DatabricksHook: they pass on the workspace set up as the seeds ask, and each fails when the setting is not so."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import pytest
from pydantic import ValidationError
from seed_platforms import (
    APP_AND_SQL_SETTINGS,
    BATCH_JOB_SETTINGS,
    DATABRICKS_SYSTEMS,
    ML_PLATFORM_SETTINGS,
    ONTOS_APP_ENV,
    RETRAINING_JOB_SETTINGS,
    SERVED_ENTITIES,
    SERVING_AI_GATEWAY,
    WAREHOUSES,
    WORKSPACE_SETTINGS,
    context,
    ontos_app_yaml,
    shipped_checks,
)

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.databricks_api import DatabricksApiItemCheck


def test_the_seeds_databricks_api_items() -> None:
    assert len(shipped_checks("ontos-ml-workbench", "databricks_api")) == 13
    assert len(shipped_checks("databricks-ml-platform", "databricks_api")) == 23


@pytest.mark.parametrize("system", DATABRICKS_SYSTEMS)
def test_every_databricks_api_item_passes_on_the_workspace_the_seed_sets_up(workspace: Any, system: str) -> None:
    if system == "ontos-ml-workbench":
        deploy_workbench(workspace, ONTOS_APP_ENV)  # its app.yaml items read the source the app runs
    for text, check in shipped_checks(system, "databricks_api").items():
        evidence = evaluate(context(system), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
        assert evidence.detail.startswith(f"GET {check.path}"), evidence.detail


def deploy_workbench(server: Any, env: list[dict[str, str]]) -> None:
    """Seed 000's app deployed from a source whose app.yaml has this environment (the process serves files: the items
    read its app.yaml, not its answers)."""
    source = f"/Workspace/Users/deploy/Apps/ontos-ml-workbench-{abs(hash(json.dumps(env)))}"
    directory = server.workspace.workspace_dir(source)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.yaml").write_text(ontos_app_yaml([sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"], env))
    deployment = server.workspace.deploy("ontos-ml-workbench", {"source_code_path": source})
    assert server.wait_for_deployment("ontos-ml-workbench", deployment["deployment_id"])["status"]["state"] == "SUCCEEDED"


def settings_without(part: str, change: Any) -> dict[str, Any]:
    settings = copy.deepcopy(WORKSPACE_SETTINGS[part])
    change(settings)
    return {part: settings}


BREAKAGES: dict[tuple[str, str], tuple[Any, str]] = {
    ("databricks-ml-platform", "Secrets stored in Azure Key Vault"): (
        lambda w: w.set_settings(secret_scopes=[*WORKSPACE_SETTINGS["secret_scopes"], {"name": "local", "backend_type": "DATABRICKS"}]),
        'scopes[local].backend_type = "DATABRICKS" (differs)',
    ),
    ("databricks-ml-platform", "Databricks secret scopes configured"): (lambda w: w.set_settings(secret_scopes=[]), "found 0 value(s)"),
    ("databricks-ml-platform", "IP access lists configured (if required)"): (
        lambda w: w.set_settings(**settings_without("ip_access_lists", lambda lists: lists[0].update(enabled=False))),
        "enabled = false",
    ),
    ("ontos-ml-workbench", "IP access lists configured"): (lambda w: w.set_settings(ip_access_lists=[]), "found 0 value(s)"),
    ("ontos-ml-workbench", "Service principal created for app authentication"): (
        lambda w: w.set_settings(service_principals=[]),
        "found 0 value(s)",
    ),
    ("ontos-ml-workbench", "Permissions granted to service principal"): (
        lambda w: w.workspace.sql.execute("REVOKE MODIFY ON SCHEMA ontos_ml.workbench FROM `ontos-app-sp`"),
        'equals "MODIFY"',
    ),
    ("ontos-ml-workbench", "**Grant Permissions**"): (
        lambda w: w.workspace.sql.execute("REVOKE USE CATALOG ON CATALOG ontos_ml FROM `ontos-app-sp`"),
        'equals "USE_CATALOG"',
    ),
    ("ontos-ml-workbench", "Verify service principal has correct permissions"): (
        lambda w: w.workspace.sql.execute("GRANT CREATE TABLE ON SCHEMA ontos_ml.workbench TO `ontos-app-sp`"),
        '"CREATE_TABLE" (not one of them)',
    ),
    ("databricks-ml-platform", "Cluster policies enforced (instance types, auto-termination)"): (
        lambda w: w.set_settings(**settings_without("cluster_policies", lambda p: p[0]["definition"].pop("node_type_id"))),
        "node_type_id missing",
    ),
    ("databricks-ml-platform", "Photon engine enabled for performance"): (
        lambda w: w.add_warehouse("ml-prod-warehouse", **{**WAREHOUSES["ml-prod-warehouse"], "enable_photon": False}),
        "enable_photon = false",
    ),
    ("databricks-ml-platform", "Auto-scaling configured based on load patterns"): (
        lambda w: w.add_warehouse("ml-prod-warehouse", **{**WAREHOUSES["ml-prod-warehouse"], "max_num_clusters": 1}),
        "max_num_clusters = 1",
    ),
    ("databricks-ml-platform", "Model registry set up with staging/production stages"): (
        lambda w: w.create_model("ml.models.churn_classifier", versions=3, aliases={}),
        "found 0 value(s)",
    ),
    ("databricks-ml-platform", "Scheduling configured via Databricks Jobs"): (
        lambda w: w.define_job(
            job_id=101,
            name="batch-inference",
            settings={**BATCH_JOB_SETTINGS, "schedule": {**BATCH_JOB_SETTINGS["schedule"], "pause_status": "PAUSED"}},
        ),
        'pause_status = "PAUSED"',
    ),
    ("databricks-ml-platform", "Job success/failure alerts configured"): (
        lambda w: w.define_job(job_id=101, name="batch-inference", settings={"schedule": BATCH_JOB_SETTINGS["schedule"]}),
        "email_notifications missing",
    ),
    ("databricks-ml-platform", "Error handling and retry logic implemented"): (
        lambda w: w.define_job(job_id=101, name="batch-inference", settings={**BATCH_JOB_SETTINGS, "tasks": [{"task_key": "main"}]}),
        "settings.tasks[main].max_retries missing",
    ),
    ("databricks-ml-platform", "Endpoint scaling configured (min/max instances)"): (
        lambda w: w.set_serving_endpoint("churn-classifier", served_entities=[{**SERVED_ENTITIES[0], "scale_to_zero_enabled": True}]),
        "scale_to_zero_enabled = true",
    ),
    ("databricks-ml-platform", "Production cluster pools created"): (lambda w: w.set_settings(instance_pools=[]), "found 0 value(s)"),
    ("databricks-ml-platform", "Rate limiting configured"): (
        lambda w: w.set_serving_endpoint("churn-classifier", ai_gateway={**SERVING_AI_GATEWAY, "rate_limits": []}),
        "found 0 value(s)",
    ),
    ("databricks-ml-platform", "Service principals created for automated workloads"): (
        lambda w: w.define_job(
            job_id=101, name="batch-inference", settings={**BATCH_JOB_SETTINGS, "run_as": {"user_name": "alice@example.com"}}
        ),
        "service_principal_name missing",
    ),
    ("databricks-ml-platform", "Experiment tracking configured"): (
        lambda w: w.set_settings(experiments=[{**ML_PLATFORM_SETTINGS["experiments"][0], "lifecycle_stage": "deleted"}]),
        'lifecycle_stage = "deleted"',
    ),
    ("databricks-ml-platform", "Artifact storage configured (DBFS or external)"): (
        lambda w: w.set_settings(experiments=[{**ML_PLATFORM_SETTINGS["experiments"][0], "artifact_location": ""}]),
        "artifact_location",
    ),
    ("databricks-ml-platform", "Online tables created and syncing"): (
        lambda w: w.set_settings(
            online_tables=[{**ML_PLATFORM_SETTINGS["online_tables"][0], "status": {"detailed_state": "ONLINE_PIPELINE_FAILED"}}]
        ),
        'detailed_state = "ONLINE_PIPELINE_FAILED"',
    ),
    ("databricks-ml-platform", "Prediction drift detection configured"): (
        lambda w: w.set_settings(
            quality_monitors=[
                {k: v for k, v in ML_PLATFORM_SETTINGS["quality_monitors"][0].items() if k != "inference_log"} | {"snapshot": {}}
            ]
        ),
        "inference_log",
    ),
    ("databricks-ml-platform", "Slack integration configured"): (
        lambda w: w.set_settings(notification_destinations=[{"display_name": "ml-alerts", "destination_type": "EMAIL"}]),
        'destination_type = "EMAIL"',
    ),
    ("databricks-ml-platform", "Model retraining triggers defined"): (
        lambda w: w.define_job(
            job_id=102,
            name="churn-retraining",
            settings={**RETRAINING_JOB_SETTINGS, "trigger": {**RETRAINING_JOB_SETTINGS["trigger"], "pause_status": "PAUSED"}},
        ),
        'pause_status = "PAUSED"',
    ),
    ("ontos-ml-workbench", "Warehouse type: Pro or Serverless"): (
        lambda w: w.add_warehouse("ontos-prod-warehouse", **{**WAREHOUSES["ontos-prod-warehouse"], "warehouse_type": "CLASSIC"}),
        'warehouse_type = "CLASSIC"',
    ),
    ("ontos-ml-workbench", "Auto-stop configured (30-60 minutes)"): (
        lambda w: w.add_warehouse("ontos-prod-warehouse", **{**WAREHOUSES["ontos-prod-warehouse"], "auto_stop_mins": 0}),
        "auto_stop_mins = 0 (below the bound)",
    ),
    ("ontos-ml-workbench", "Spot instance policy configured (if applicable)"): (
        lambda w: w.add_warehouse(
            "ontos-prod-warehouse", **{**WAREHOUSES["ontos-prod-warehouse"], "spot_instance_policy": "POLICY_UNSPECIFIED"}
        ),
        "not one of them",
    ),
    ("ontos-ml-workbench", "Service principal authentication configured"): (
        lambda w: w.set_settings(apps=app_settings(service_principal_name="app-ontos-ml-workbench")),
        'service_principal_name = "app-ontos-ml-workbench" (differs)',
    ),
    ("ontos-ml-workbench", "OAuth 2.0 configured for user access"): (
        lambda w: w.set_settings(apps=app_settings(user_api_scopes=None, effective_user_api_scopes=None)),
        "effective_user_api_scopes missing",
    ),
    ("ontos-ml-workbench", "Query timeout configured"): (
        lambda w: w.set_settings(
            warehouse_config={
                **APP_AND_SQL_SETTINGS["warehouse_config"],
                "sql_configuration_parameters": {"configuration_pairs": [{"key": "STATEMENT_TIMEOUT", "value": "0"}]},
            }
        ),
        "does not contain it",
    ),
    ("ontos-ml-workbench", "Debug mode disabled: `DEBUG=false`"): (
        lambda w: deploy_workbench(w, [{"name": "DEBUG", "value": "true"}, {"name": "LOG_LEVEL", "value": "INFO"}]),
        "does not contain it",
    ),
    ("ontos-ml-workbench", "Log level set to INFO or WARNING"): (
        lambda w: deploy_workbench(w, [{"name": "DEBUG", "value": "false"}, {"name": "LOG_LEVEL", "value": "DEBUG"}]),
        "does not contain it",
    ),
    ("databricks-ml-platform", "Cost monitoring dashboards created"): (
        lambda w: w.set_settings(dashboards=[{"display_name": "ML Platform Cost Monitoring", "lifecycle_state": "TRASHED"}]),
        "does not contain it",
    ),
    ("databricks-ml-platform", "Email alerts set up for critical issues"): (
        lambda w: w.define_job(job_id=102, name="churn-retraining", settings={"trigger": RETRAINING_JOB_SETTINGS["trigger"]}),
        "jobs[1].settings.email_notifications missing",
    ),
    ("databricks-ml-platform", "PagerDuty integration (if applicable)"): (
        lambda w: w.set_settings(notification_destinations=[{"display_name": "ml-alerts", "destination_type": "SLACK"}]),
        'destination_type = "SLACK" (differs)',
    ),
}


def app_settings(**fields: Any) -> dict[str, Any]:
    """Seed 000's app with these fields changed (None: the app does not have it)."""
    app = copy.deepcopy(APP_AND_SQL_SETTINGS["apps"]["ontos-ml-workbench"])
    return {"ontos-ml-workbench": {**app, **fields}}


def test_every_databricks_api_item_has_a_failing_case() -> None:
    assert set(BREAKAGES) == {(system, text) for system in DATABRICKS_SYSTEMS for text in shipped_checks(system, "databricks_api")}


@pytest.mark.parametrize("key", sorted(BREAKAGES), ids=lambda k: k[1][:40].lower().replace(" ", "-"))
def test_a_databricks_api_item_fails_when_the_workspace_is_not_so(workspace: Any, key: tuple[str, str]) -> None:
    system, text = key
    breaks, evidence = BREAKAGES[key]
    breaks(workspace)
    found = evaluate(context(system), shipped_checks(system, "databricks_api")[text])
    assert not found.passed
    assert "FAILED" in found.detail and evidence in found.detail, found.detail


def test_a_path_that_is_not_a_documented_api_get_is_refused() -> None:
    for path in ("/api/2.0/../secrets", "api/2.0/secrets/scopes/list", "/api/3.0/x", "https://evil.example/api/2.0/x", "/api/2.0/a?b=c"):
        with pytest.raises(ValidationError):
            DatabricksApiItemCheck(kind="databricks_api", conn_id="x", path=path, expect=[{"path": ["a"]}])


def test_an_app_yaml_item_fails_without_a_deployment_and_on_a_source_without_the_file(workspace: Any) -> None:
    debug = shipped_checks("ontos-ml-workbench", "databricks_api")["Debug mode disabled: `DEBUG=false`"]
    never_deployed = evaluate(context("ontos-ml-workbench"), debug)
    assert not never_deployed.passed
    assert "no active deployment, so no app.yaml deployed" in never_deployed.detail
    deploy_workbench(workspace, ONTOS_APP_ENV)
    source = workspace.workspace.app_json("ontos-ml-workbench")["active_deployment"]["source_code_path"]
    app_yaml = workspace.workspace.workspace_dir(source)
    (app_yaml / "app.yaml").write_text("command: [unclosed\n")
    assert "not base64-encoded YAML (" in evaluate(context("ontos-ml-workbench"), debug).detail
    (app_yaml / "app.yaml").unlink()
    with pytest.raises(Exception, match="doesn't exist"):
        evaluate(context("ontos-ml-workbench"), debug)


def test_deployed_file_reads_an_apps_source_only() -> None:
    expect = [{"path": ["env"]}]
    for path, params in (("/api/2.0/sql/warehouses/x", {}), ("/api/2.0/apps/web", {"a": "b"})):
        with pytest.raises(ValidationError, match="deployed_file reads an app's source"):
            DatabricksApiItemCheck(kind="databricks_api", conn_id="x", path=path, params=params, deployed_file="app.yaml", expect=expect)
    with pytest.raises(ValidationError, match="deployed_file"):
        DatabricksApiItemCheck(kind="databricks_api", conn_id="x", path="/api/2.0/apps/web", deployed_file="../app.yaml", expect=expect)
