"""Databricks targets: identifiers quoted, SQL files split into statements, versions read back from source paths."""

from __future__ import annotations

import re

import pytest

from airflow_rollout.config import ProfileError, parse_profile
from airflow_rollout.targets.databricks import DatabricksApp, DatabricksAppTarget, quote, split_statements


def test_every_part_of_a_name_is_backtick_quoted() -> None:
    assert quote("ontos_ml", "workbench", "sheets") == "`ontos_ml`.`workbench`.`sheets`"
    assert quote("odd`name") == "`odd``name`"


def test_a_sql_file_is_split_into_its_statements() -> None:
    text = "-- header\nCREATE SCHEMA IF NOT EXISTS a.b;\nINSERT INTO a.b.t VALUES (1, 'x;y');\n\nSELECT 1"
    assert split_statements(text) == ["CREATE SCHEMA IF NOT EXISTS a.b", "INSERT INTO a.b.t VALUES (1, 'x;y')", "SELECT 1"]


def test_the_version_is_read_back_from_the_deployed_source_path() -> None:
    app = DatabricksApp(
        config=DatabricksAppTarget(
            kind="databricks_app", name="workbench", conn_id="db", app_name="ontos", source_code_path="/Workspace/Apps/ontos-{version}/src"
        )
    )
    assert app.source_path("1.2.0") == "/Workspace/Apps/ontos-1.2.0/src"
    assert app.version_of("/Workspace/Apps/ontos-1.2.0/src") == "1.2.0"
    assert app.version_of("/Workspace/Apps/other") is None


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"catalog": "ontos-ml"}, "data_targets[0].catalog"),
        ({"tables": ["sheets; DROP TABLE x"]}, "data_targets[0].tables[0]"),
        ({"grants": [{"privileges": ["SELECT"], "securable": "SCHEMA", "to": "sp`; DROP"}]}, "data_targets[0].grants[0].to"),
        ({"grants": [{"privileges": ["SELECT"], "on": "SCHEMA", "to": "sp"}]}, "securable"),
    ],
)
def test_unity_catalog_names_are_validated_before_any_sql(change, complaint) -> None:
    target = {
        "name": "uc",
        "kind": "unity_catalog",
        "conn_id": "db",
        "warehouse_id": "wh",
        "catalog": "ontos_ml",
        "schema": "workbench",
        "tables": ["sheets"],
        "backup_catalog": "ontos_ml_backups",
    }
    profile = {
        "name": "x",
        "ledger_conn_id": "l",
        "data_targets": [{**target, **change}],
        "app_targets": [{"name": "a", "kind": "mlflow_alias", "conn_id": "db", "model": "ml.models.m", "alias": "champion"}],
        "checks": [{"name": "e", "kind": "serving_endpoint", "conn_id": "db", "endpoint": "e"}],
    }
    with pytest.raises(ProfileError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        parse_profile(profile, "x.yaml")


def test_a_databricks_app_source_path_must_name_the_version() -> None:
    with pytest.raises(ValueError, match=r"must contain \{version\}"):
        DatabricksAppTarget(kind="databricks_app", name="w", conn_id="db", app_name="ontos", source_code_path="/Workspace/Apps/ontos")


@pytest.fixture
def dbx(tmp_path, monkeypatch):
    from devtools.databricks_server import DatabricksServer

    with DatabricksServer(workspace_root=tmp_path / "ws", state_dir=tmp_path / "state", apps={}) as server:
        monkeypatch.setenv("AIRFLOW_CONN_DBX_STANDIN", server.airflow_connection())
        yield server


def test_a_long_job_run_is_handed_to_the_providers_trigger_and_found_again_after_it(dbx) -> None:
    """An hour's job (time-compressed by the stand-in): inside a task the check defers with DatabricksExecutionTrigger;
    the step's next run, with the same idempotency token, finds the same run finished instead of starting one."""
    from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

    from airflow_rollout.config import DatabricksJobCheck
    from airflow_rollout.targets.databricks import run_job
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place

    dbx.set_time_scale(0.001)  # 3600 s of workspace time: 3.6 s here
    job_id = dbx.define_job(name="batch-inference", seconds=3600)
    check = DatabricksJobCheck(name="batch", kind="databricks_job", conn_id="dbx_standin", job_id=job_id)

    with deferring(), pytest.raises(WaitDeferred) as deferred:
        run_job(check, idempotency_token="release-1-batch")
    trigger = deferred.value.trigger
    assert isinstance(trigger, DatabricksExecutionTrigger)
    assert deferred.value.timeout == check.timeout_seconds
    event = wait_in_place(trigger, deferred.value.what, timeout=60)  # what the triggerer does
    assert '"result_state": "SUCCESS"' in event["run_state"]

    with deferring():
        result = run_job(check, idempotency_token="release-1-batch")

    [run] = dbx.workspace.run_records()
    assert result.passed and result.metrics["run_id"] == run["run_id"] == trigger.run_id, result
    assert result.metrics["seconds"] >= 3.0  # the run's own duration, not the second call's


def test_a_job_run_outside_a_task_waits_with_the_same_trigger_in_place(dbx) -> None:
    from airflow_rollout.config import DatabricksJobCheck
    from airflow_rollout.targets.databricks import run_job

    dbx.set_time_scale(0.001)
    job_id = dbx.define_job(name="batch-inference", seconds=1000, outcome="FAILED", state_message="drift over threshold")
    check = DatabricksJobCheck(name="batch", kind="databricks_job", conn_id="dbx_standin", job_id=job_id)

    result = run_job(check, idempotency_token="release-2-batch")

    assert not result.passed
    assert "FAILED" in result.detail and "drift over threshold" in result.detail, result.detail


def test_a_statement_outlasting_its_wait_defers_and_the_next_run_sends_none_twice(dbx) -> None:
    """A step's two statements, the second an hour long (time-compressed): the step defers with the provider's statement
    trigger; its next run, given the journal the deferral carried, follows both by id: the INSERT is not sent again."""
    from airflow.providers.databricks.triggers.databricks import DatabricksSQLStatementExecutionTrigger

    from airflow_rollout.targets.databricks import Warehouse
    from airflow_rollout.waits import WaitDeferred, WaitFailedError, deferring, wait_in_place

    warehouse = Warehouse(conn_id="dbx_standin", warehouse_id="standin-warehouse")
    for statement in ("CREATE CATALOG c", "CREATE SCHEMA c.s", "CREATE TABLE c.s.t (id INT)"):
        warehouse.execute(statement)
    dbx.set_time_scale(0.001)  # 3600 s of workspace time: 3.6 s here
    dbx.workspace.configure({"slow_statements": {"SELECT count(*)": 3600}})

    def step() -> list[list[str]]:
        warehouse.execute("INSERT INTO c.s.t VALUES (1)")
        return warehouse.execute("SELECT count(*) FROM c.s.t")

    with deferring(), pytest.raises(WaitDeferred) as deferred:
        step()
    assert isinstance(deferred.value.trigger, DatabricksSQLStatementExecutionTrigger)
    sent = len(dbx.workspace.statement_records())
    event = wait_in_place(deferred.value.trigger, deferred.value.what, timeout=60)  # what the triggerer does
    assert '"state": "SUCCEEDED"' in event["state"], event

    with deferring(sent=deferred.value.sent):
        assert step() == [["1"]]  # one row inserted: the INSERT was followed, not sent again
    assert len(dbx.workspace.statement_records()) == sent

    with deferring(failure="trigger timeout"), pytest.raises(WaitFailedError, match="trigger timeout"):
        step()  # the run after a failed wait sends nothing
    assert len(dbx.workspace.statement_records()) == sent


def test_a_backup_deferred_across_midnight_resumes_its_copy_instead_of_copying_again(dbx, monkeypatch, tmp_path) -> None:
    """The copy statement outlasts its wait and the day changes before the step runs again: the copy is named after
    the backup, not the day, so the resumed step sends the same CTAS, which the journal follows instead of sending."""
    import datetime as real

    from airflow_rollout.targets import databricks
    from airflow_rollout.targets.databricks import UnityCatalogDataTarget, UnityCatalogTarget, Warehouse
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place

    warehouse = Warehouse(conn_id="dbx_standin", warehouse_id="standin-warehouse")
    for statement in ("CREATE CATALOG c", "CREATE CATALOG c_backups", "CREATE SCHEMA c.s", "CREATE TABLE c.s.t (id INT)"):
        warehouse.execute(statement)
    warehouse.execute("INSERT INTO c.s.t VALUES (1)")
    target = UnityCatalogDataTarget(
        config=UnityCatalogTarget(
            kind="unity_catalog",
            name="t",
            conn_id="dbx_standin",
            warehouse_id="standin-warehouse",
            catalog="c",
            schema="s",
            tables=["t"],
            backup_catalog="c_backups",
        )
    )
    dbx.set_time_scale(0.001)
    dbx.workspace.configure({"slow_statements": {"CREATE TABLE `c_backups`": 3600}})

    class AtDay(real.datetime):
        day = real.datetime(2026, 12, 1, 23, 59, tzinfo=real.UTC)

        @classmethod
        def now(cls, tz: real.tzinfo | None = None) -> AtDay:  # type: ignore[override]
            return cls.fromtimestamp(cls.day.timestamp(), tz)

    monkeypatch.setattr(databricks, "datetime", AtDay)
    destination = tmp_path / "t-release-1.json"
    with deferring(), pytest.raises(WaitDeferred) as deferred:
        target.backup(destination)
    wait_in_place(deferred.value.trigger, deferred.value.what, timeout=60)

    AtDay.day = real.datetime(2026, 12, 2, 0, 1, tzinfo=real.UTC)
    with deferring(sent=deferred.value.sent):
        record = target.backup(destination)
    copies = [r["statement"] for r in dbx.workspace.statement_records() if r["statement"].startswith("CREATE TABLE `c_backups`")]
    assert len(copies) == 1, copies
    assert record.fingerprint["s.t"]["rows"] == 1


def test_a_long_statement_outside_a_task_is_waited_for_in_place(dbx) -> None:
    from airflow_rollout.targets.databricks import Warehouse

    warehouse = Warehouse(conn_id="dbx_standin", warehouse_id="standin-warehouse")
    dbx.set_time_scale(0.001)
    dbx.workspace.configure({"slow_statements": {"SELECT 42": 2000}})

    assert warehouse.execute("SELECT 42") == [["42"]]


def standin_web_app() -> DatabricksApp:
    """The stand-in's App `web`, deployed from a versioned workspace path, ready when `/` answers."""
    from airflow_rollout.config import Readiness

    return DatabricksApp(
        config=DatabricksAppTarget(
            kind="databricks_app",
            name="web",
            conn_id="dbx_standin",
            app_name="web",
            source_code_path="/Workspace/Apps/web-{version}",
            readiness=Readiness(path="/", timeout_seconds=30),
        )
    )


def test_an_app_deployment_waits_in_the_triggerer_and_the_next_run_follows_it_instead_of_deploying_again(dbx_app) -> None:
    """Each wait of a deploy (compute start, the deployment, the app up) defers inside a task; each run of the step
    after a wait carries on from what it finds, so the App gets one deployment, however many runs it took."""
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place
    from tests.airflow_rollout.test_triggers import app_api

    app = standin_web_app()
    app_api("POST", "2.0/apps/web/stop")
    app.wait_quiesced()

    deferrals = []
    while True:  # what StepOperator and the triggerer do: run the step, and again after each trigger fired
        try:
            with deferring():
                app.switch_to("1.0.0")
            break
        except WaitDeferred as deferred:
            deferrals.append(type(deferred.trigger).__name__)
            assert wait_in_place(deferred.trigger, deferred.what, timeout=30) == {"status": "success"}
        assert len(deferrals) < 10

    assert deferrals[0] == "DatabricksAppComputeTrigger" and "DatabricksAppServingTrigger" in deferrals
    assert [d["source_code_path"] for d in app_api("GET", "2.0/apps/web/deployments")["app_deployments"]] == ["/Workspace/Apps/web-1.0.0"]
    assert app.current().version == "1.0.0"


def run_as_a_task(step):
    """What StepOperator and the triggerer do: run the step, and again after each trigger it deferred on fired."""
    from airflow_rollout.waits import WAIT_FAILED, WaitDeferred, deferring, wait_in_place

    deferrals, failure = [], None
    while len(deferrals) < 10:
        try:
            with deferring(failure=failure):
                return step(), deferrals
        except WaitDeferred as deferred:
            deferrals.append(type(deferred.trigger).__name__)
            event = wait_in_place(deferred.trigger, deferred.what, timeout=30)
            failure = event.get("message") if event["status"] == WAIT_FAILED else None
    raise AssertionError(f"still deferring after {deferrals}")


def test_after_a_failed_deployment_and_a_stop_the_recorded_path_is_deployed_again(dbx_app) -> None:
    from airflow_rollout.targets.base import AppNotReadyError
    from tests.airflow_rollout.test_triggers import app_api

    app = standin_web_app()
    run_as_a_task(lambda: app.switch_to("1.0.0"))
    recorded = app.snapshot()
    with pytest.raises(AppNotReadyError, match=re.escape("runs /Workspace/Apps/web-1.0.0, not /Workspace/Apps/web-2.0.0-broken")):
        run_as_a_task(lambda: app.switch_to("2.0.0-broken"))
    deployments = app_api("GET", "2.0/apps/web/deployments")["app_deployments"]
    assert [d["status"]["state"] for d in deployments] == ["FAILED", "SUCCEEDED"]  # the failed one was not deployed again
    app.quiesce()
    run_as_a_task(app.wait_quiesced)

    run_as_a_task(lambda: app.restore(recorded))

    assert app.current().version == "1.0.0"
