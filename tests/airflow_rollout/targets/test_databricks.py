"""Databricks targets: identifiers quoted, SQL files split into statements, versions read back from source paths."""

from __future__ import annotations

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
