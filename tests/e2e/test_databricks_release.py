"""End to end: seeds 000 (Ontos ML Workbench) and 001 (Databricks ML platform), released with their shipped
profiles through the databricks provider's DatabricksHook against the local Databricks stand-in (SQL
statements on a warehouse with Delta versions, Apps played by local processes, serving endpoints, jobs,
the MLflow registry). The SQL the warehouse received is asserted as sent."""

from __future__ import annotations

import json
import os
import re

import pytest
from observe import checklist_results, ledger, run_signed_release
from seed_platforms import (
    BATCH_JOB_SETTINGS,
    RETRAINING_JOB_SETTINGS,
    SERVED_ENTITIES,
    SERVING_AI_GATEWAY,
    cluster_feature_tables,
    ml_github,
    ml_github_connection,
    ontos_app_yaml,
    set_table_properties,
    set_up_workspace,
)
from testenv import ROOT

pytestmark = pytest.mark.e2e

IMAGES = ROOT / "tests" / "fixtures" / "images"
ONTOS_TABLES = ["sheets", "templates", "training_sheets", "qa_pairs", "canonical_labels"]


@pytest.fixture
def workspace(postgres, slack, tmp_path):
    """The stand-in workspace: two warehouses, the workbench app (a source path per version), a model, an endpoint, a job."""
    from devtools.databricks_server import DatabricksServer

    for version in ("1.0.0", "1.1.0", "1.2.0-broken"):
        source = tmp_path / "root" / "Workspace" / "Users" / "deploy" / "Apps" / f"ontos-ml-workbench-{version}"
        source.mkdir(parents=True)
        command = ["{python}", str(IMAGES / "seed_service.py"), "--system", "ontos", "--version", version, "--port", "{port}"]
        (source / "app.yaml").write_text(ontos_app_yaml(command))
    ledger().ensure_schema()
    postgres.psql("rollout_ledger", "TRUNCATE rollout_release, rollout_lock CASCADE")
    with DatabricksServer(
        workspace_root=tmp_path / "root",
        state_dir=tmp_path / "state",
        apps={"ontos-ml-workbench": free_port()},
        warehouses=("ontos-prod-warehouse", "ml-prod-warehouse"),
        app_readiness_path="/api/health",
        app_ready_timeout=5,
    ) as server:
        set_up_workspace(server)  # the warehouses' and the workspace's settings the checklists' databricks_api items read
        for conn_id in ("ONTOS_DATABRICKS", "DATABRICKS_ML"):
            os.environ[f"AIRFLOW_CONN_{conn_id}"] = server.airflow_connection()
        for slack_conn in ("SLACK_ONTOS", "SLACK_ML"):
            os.environ[f"AIRFLOW_CONN_{slack_conn}"] = os.environ["AIRFLOW_CONN_SLACK_DEMO"]
        # the OAuth token the workbench's checks send; the app played here does not ask for one
        os.environ["AIRFLOW_CONN_ONTOS_APP_TOKEN"] = json.dumps({"conn_type": "generic", "password": "ontos-app-token"})
        yield server


def free_port() -> int:
    from devtools.local_postgres import free_port as port

    return port()


def context(system: str):
    from airflow_rollout.config import load_profile
    from airflow_rollout.context import SystemContext

    return SystemContext(profile=load_profile(system))


def migrate_to(system: str, version: str) -> None:
    from airflow_rollout.targets.databricks import UnityCatalogMigrator

    for target in context(system).data_targets:
        UnityCatalogMigrator(target=target).run(version, "test-setup")


@pytest.fixture
def ontos(workspace):
    """Seed 000 at 1.0.0: the schema files run, two sheets and QA pairs written, the app from its 1.0.0 path."""
    migrate_to("ontos-ml-workbench", "1.0.0")
    [target] = context("ontos-ml-workbench").data_targets
    target.warehouse.execute("INSERT INTO `ontos_ml`.`workbench`.`sheets` VALUES (1, 'intake', 1, NULL), (2, 'labels', 2, NULL)")
    target.warehouse.execute("INSERT INTO `ontos_ml`.`workbench`.`qa_pairs` VALUES (1, 1, 'why?', 'because'), (2, 1, 'how?', 'so')")
    set_table_properties(target)
    app = context("ontos-ml-workbench").apps["workbench"]
    app.switch_to("1.0.0")
    workspace.clear_statements = len(workspace.statements())
    return target


def sent_sql(workspace, since: int = 0) -> list[str]:
    return [s["statement"] for s in workspace.statements()[since:]]


def test_ontos_good_release_migrates_the_tables_and_deploys_the_new_source_path(release_dag, workspace, ontos):
    dag_run, record = run_signed_release(release_dag, "ontos-ml-workbench", "1.1.0")

    assert (dag_run.state, record.status, record.previous_version) == ("success", "promoted", "1.0.0")
    app = context("ontos-ml-workbench").apps["workbench"]
    assert app.snapshot() == {"source_code_path": "/Workspace/Users/deploy/Apps/ontos-ml-workbench-1.1.0"}
    assert "owner string" in ontos.fingerprint()["workbench.sheets"]["columns"].lower()
    sql = sent_sql(workspace, workspace.clear_statements)
    for table in ONTOS_TABLES:
        assert f"DESCRIBE HISTORY `ontos_ml`.`workbench`.`{table}` LIMIT 1" in sql
        copy = rf"`ontos_ml_backups`.`workbench`.`{table}_backup_[0-9a-f]{{12}}`"
        assert any(re.fullmatch(rf"CREATE TABLE {copy} AS SELECT \* FROM `ontos_ml`.`workbench`.`{table}`", s) for s in sql)
    assert "ALTER TABLE ontos_ml.workbench.sheets ADD COLUMNS (owner STRING)" in sql  # the migration file, as written
    assert "GRANT USE CATALOG ON CATALOG `ontos_ml` TO `ontos-app-sp`" in sql
    assert "GRANT USE SCHEMA, SELECT, MODIFY ON SCHEMA `ontos_ml`.`workbench` TO `ontos-app-sp`" in sql
    assert "SHOW TABLES IN `ontos_ml`.`workbench`" in sql
    assert ledger().migrations(dag_run.run_id) == ["unity_catalog: 1.1.0/01_sheet_owner.sql"]
    items = checklist_results(dag_run.run_id, "ontos-ml-workbench")
    # the played app refuses a request without the token, as a Databricks App does; the release sent it
    assert items["Verify token-based auth works"].passed, items["Verify token-based auth works"].detail
    assert "without a token: HTTP 401 (refused)" in items["Verify token-based auth works"].detail
    assert items["Foreign key constraints verified"].passed, items["Foreign key constraints verified"].detail
    assert items["Post in team Slack channel"].detail == "release-started message delivered to Slack through slack_ontos"
    for text in ("Warehouse type: Pro or Serverless", "Auto-stop configured (30-60 minutes)", "Table properties optimized"):
        assert items[text].passed, items[text].detail
    assert items["Verify unauthenticated requests are rejected"].detail.startswith("GET /api/v1/sheets: HTTP 401 in ")
    proven = ["CORS origins restricted to production domain", "TLS/SSL certificates configured", "HTTPS enforced"]
    assert {text: items[text].detail for text in [*proven, "Verify encryption in transit (HTTPS)"] if not items[text].passed} == {}
    # the service principal the workspace knows, and the grants the migrate step gave it, read back before and after
    granted = ["Service principal created for app authentication", "Permissions granted to service principal", "**Grant Permissions**"]
    granted += ["Verify service principal has correct permissions", "Data encryption in transit enabled"]
    assert {text: items[text].detail for text in granted if not items[text].passed} == {}
    # the app's identity and user authorization, the warehouses' statement timeout, the LABEL stage's list of pairs
    read = ["Service principal authentication configured", "OAuth 2.0 configured for user access", "Query timeout configured"]
    assert {text: items[text].detail for text in [*read, "Review Q&A pairs"] if not items[text].passed} == {}
    # the app.yaml of the source the app runs (debug off, logging at INFO), and the home page's assets
    deployed = ["Debug mode disabled: `DEBUG=false`", "Log level set to INFO or WARNING", "Verify static assets load (images, fonts)"]
    assert {text: items[text].detail for text in deployed if not items[text].passed} == {}
    assert "-> /Workspace/Users/deploy/Apps/ontos-ml-workbench-1.1.0/app.yaml" in items["Log level set to INFO or WARNING"].detail
    # the log the running app wrote, at /logz with the token and refused without it
    logs = items["Verify application logs are available"]
    assert logs.passed and "without a token: HTTP 401 (refused)" in logs.detail, logs.detail


def test_ontos_bad_release_redeploys_the_previous_path_and_restores_every_table_version(release_dag, workspace, ontos):
    before = ontos.fingerprint()
    versions = {table: ontos.table_version(table) for table in ONTOS_TABLES}

    dag_run, record = run_signed_release(release_dag, "ontos-ml-workbench", "1.2.0-broken")

    assert record.status == "rolled_back"
    app = context("ontos-ml-workbench").apps["workbench"]
    assert app.snapshot() == {"source_code_path": "/Workspace/Users/deploy/Apps/ontos-ml-workbench-1.0.0"}
    assert ontos.fingerprint() == before  # the 1.1.0 migration's column is gone again
    sql = sent_sql(workspace, workspace.clear_statements)
    # Every table back to the Delta version recorded before the release, by time travel (within retention).
    restores = {s for s in sql if s.startswith("RESTORE TABLE")}
    assert restores == {f"RESTORE TABLE `ontos_ml`.`workbench`.`{table}` TO VERSION AS OF {versions[table]}" for table in ONTOS_TABLES}
    steps = {s.step: s.status for s in ledger().steps(dag_run.run_id)}
    assert steps["verify_restored"] == "succeeded"


# --- seed 001 ---------------------------------------------------------------------------------------------


@pytest.fixture
def ml_platform(workspace, monkeypatch):
    """Seed 001 at 1.0.0: the feature table with rows, model versions 1-3 with champion on 2, a ready endpoint, the batch job;
    its GitHub repository's environments and workflows."""
    migrate_to("databricks-ml-platform", "1.0.0")
    [target] = context("databricks-ml-platform").data_targets
    target.warehouse.execute("INSERT INTO `ml`.`features`.`customer_features` VALUES (1, 34, 120.5, NULL), (2, 51, 80.0, NULL)")
    set_table_properties(target)
    cluster_feature_tables(target)
    workspace.create_model("ml.models.churn_classifier", versions=3, aliases={"champion": 2})
    workspace.set_serving_endpoint(
        "churn-classifier", ready="READY", config_update="NOT_UPDATING", served_entities=SERVED_ENTITIES, ai_gateway=SERVING_AI_GATEWAY
    )
    workspace.define_job(job_id=102, name="churn-retraining", settings=RETRAINING_JOB_SETTINGS)
    with ml_github() as github:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB", ml_github_connection(github))
        yield target


def champion() -> str | None:
    return context("databricks-ml-platform").apps["champion"].aliased_version()


def test_ml_release_moves_the_champion_alias_checks_the_endpoint_and_runs_the_batch_job(release_dag, workspace, ml_platform):
    workspace.define_job(job_id=101, name="batch-inference", outcome="SUCCESS", seconds=1, settings=BATCH_JOB_SETTINGS)

    dag_run, record = run_signed_release(release_dag, "databricks-ml-platform", "1.1.0")

    assert (dag_run.state, record.status) == ("success", "promoted")
    assert champion() == "3"
    assert ledger().app_states(dag_run.run_id)["champion"].snapshot == {"model_version": "2"}
    measured = {m.name: m for m in ledger().measurements(dag_run.run_id)}
    assert measured["endpoint_ready"].passed and "READY" in measured["endpoint_ready"].detail
    assert measured["batch_inference"].passed and "SUCCESS" in measured["batch_inference"].detail
    items = checklist_results(dag_run.run_id, "databricks-ml-platform")
    automated = (
        "Photon engine enabled for performance",
        "Job success/failure alerts configured",
        "Endpoint scaling configured (min/max instances)",
        "Rate limiting configured",
        "Production cluster pools created",
        "Service principals created for automated workloads",
        "Experiment tracking configured",
        "Artifact storage configured (DBFS or external)",
        "Online tables created and syncing",
        "Prediction drift detection configured",
        "Slack integration configured",
        "Model retraining triggers defined",
        "Cost monitoring dashboards created",
        "Email alerts set up for critical issues",
        "PagerDuty integration (if applicable)",
        "Partition strategy implemented for large tables",
        "Dev, staging, prod workflows configured",
        "Environment protection rules enabled",
        "Manual approvals required for production",
        "Integration tests running in CI pipeline",
    )
    for text in (
        *automated,
        "Delta table properties optimized (optimize write, auto-compact)",
        "Liquid clustering enabled on feature tables",
    ):
        assert items[text].passed, items[text].detail


def test_ml_release_whose_batch_job_fails_moves_the_alias_back_and_restores_the_features(release_dag, workspace, ml_platform):
    workspace.define_job(job_id=101, name="batch-inference", outcome="FAILED", seconds=1, settings=BATCH_JOB_SETTINGS)
    before = ml_platform.fingerprint()
    version = ml_platform.table_version("customer_features")

    _dag_run, record = run_signed_release(release_dag, "databricks-ml-platform", "1.1.0")

    assert record.status == "rolled_back"
    assert any("batch_inference" in reason for reason in record.decision_reasons or [])
    assert champion() == "2"  # moved to 3 by the deploy, back to 2 by the rollback
    assert ml_platform.fingerprint() == before
    assert f"RESTORE TABLE `ml`.`features`.`customer_features` TO VERSION AS OF {version}" in sent_sql(workspace)


def test_a_backup_older_than_delta_retention_is_restored_from_its_copy(workspace, ontos, tmp_path):
    """Past VACUUM's retention RESTORE ... VERSION AS OF may find no files: the CTAS copy is used instead."""
    from airflow_rollout.targets.databricks import UnityCatalogDataTarget

    expired = UnityCatalogDataTarget(config=ontos.config.model_copy(update={"delta_retention_days": 1e-9}))
    before = expired.fingerprint()
    record = expired.backup(expired.backup_path(tmp_path, "old-release"))
    expired.warehouse.execute("DELETE FROM `ontos_ml`.`workbench`.`qa_pairs` WHERE id = 1")
    since = len(workspace.statements())

    expired.restore(record.location, record.sha256)

    assert expired.fingerprint() == before
    sql = sent_sql(workspace, since)
    assert not any(s.startswith("RESTORE TABLE") for s in sql)
    assert any(s.startswith("CREATE OR REPLACE TABLE `ontos_ml`.`workbench`.`qa_pairs` AS SELECT * FROM `ontos_ml_backups`") for s in sql)


def test_ml_weekly_maintenance_runs_the_seeds_monitoring_sql(workspace, ml_platform):
    """Seed 001's job success rate and drift queries, as the checklist's weekly items, on the warehouse."""
    from datetime import UTC, datetime

    from airflow_rollout.maintenance import checklist_weekly_items

    sql = ml_platform.warehouse.execute
    sql("CREATE TABLE IF NOT EXISTS `ml`.`monitoring`.`job_runs` (job_name STRING, status STRING, run_timestamp TIMESTAMP)")
    now = "current_timestamp()"
    sql(f"INSERT INTO `ml`.`monitoring`.`job_runs` VALUES ('batch', 'SUCCESS', {now}), ('batch', 'FAILED', {now})")
    drift_columns = "feature_name STRING, drift_detected BOOLEAN, check_timestamp TIMESTAMP"
    sql(f"CREATE TABLE IF NOT EXISTS `ml`.`monitoring`.`feature_drift_metrics` ({drift_columns})")
    sql("INSERT INTO `ml`.`monitoring`.`feature_drift_metrics` VALUES ('age', false, current_timestamp())")

    found = {f.check: f for f in checklist_weekly_items(context("databricks-ml-platform"), datetime.now(UTC))}

    success_rate = found["checklist s7.3 Operational Monitoring"]
    assert not success_rate.ok and "below 0.95" in success_rate.detail  # one run in two failed this week
    assert found["checklist s7.1.4 Data drift detection configured"].ok
    assert any("ml.monitoring.job_runs" in s for s in sent_sql(workspace))
