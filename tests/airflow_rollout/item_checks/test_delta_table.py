"""`kind: delta_table` items of seeds 000 and 001 run as shipped on the Databricks stand-in's SQL warehouse:
SHOW TBLPROPERTIES and DESCRIBE DETAIL through the SQL Statement Execution API."""

from __future__ import annotations

from typing import Any

import pytest
from seed_platforms import DATABRICKS_SYSTEMS, context, set_table_properties, shipped_checks

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.delta_table import DeltaTableItemCheck


def test_the_seeds_delta_table_items() -> None:
    assert set(shipped_checks("ontos-ml-workbench", "delta_table")) == {"Data retention policies defined", "Table properties optimized"}
    assert set(shipped_checks("databricks-ml-platform", "delta_table")) == {
        "Delta table properties optimized (optimize write, auto-compact)",
        "Liquid clustering enabled on feature tables",
        "Partition strategy implemented for large tables",
    }


@pytest.mark.parametrize("system", DATABRICKS_SYSTEMS)
def test_every_delta_table_item_passes_on_tables_with_the_seed_s_properties(workspace: Any, system: str) -> None:
    for text, check in shipped_checks(system, "delta_table").items():
        evidence = evaluate(context(system), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
        assert evidence.detail.startswith(("SHOW TBLPROPERTIES `", "DESCRIBE DETAIL `")), evidence.detail


def test_one_table_without_auto_compaction_fails_table_properties_optimized(workspace: Any) -> None:
    [target] = context("ontos-ml-workbench").data_targets
    target.warehouse.execute(f"ALTER TABLE {target.table('qa_pairs')} SET TBLPROPERTIES ('delta.autoOptimize.autoCompact' = 'false')")
    found = evaluate(context("ontos-ml-workbench"), shipped_checks("ontos-ml-workbench", "delta_table")["Table properties optimized"])
    assert not found.passed
    assert "SHOW TBLPROPERTIES `ontos_ml`.`workbench`.`qa_pairs` on warehouse ontos-prod-warehouse: " in found.detail
    assert (
        '[delta.autoOptimize.autoCompact]: FAILED, expected a value, each equals true: delta.autoOptimize.autoCompact = "false" (differs)'
        in found.detail
    )


def test_tables_without_retention_properties_fail_retention_defined(workspace: Any) -> None:
    from airflow_rollout.targets.databricks import UnityCatalogMigrator

    workspace.reset()
    [target] = context("ontos-ml-workbench").data_targets
    UnityCatalogMigrator(target=target).run("1.0.0", "test-setup")
    set_table_properties(target, {"delta.autoOptimize.optimizeWrite": "true"})
    found = evaluate(context("ontos-ml-workbench"), shipped_checks("ontos-ml-workbench", "delta_table")["Data retention policies defined"])
    assert not found.passed
    assert "delta.logRetentionDuration missing" in found.detail


@pytest.mark.parametrize("text", ["Liquid clustering enabled on feature tables", "Partition strategy implemented for large tables"])
def test_a_feature_table_without_clustering_keys_fails_its_layout_items(workspace: Any, text: str) -> None:
    [target] = context("databricks-ml-platform").data_targets
    target.warehouse.execute(f"ALTER TABLE {target.table('customer_features')} CLUSTER BY NONE")
    check = shipped_checks("databricks-ml-platform", "delta_table")[text]
    found = evaluate(context("databricks-ml-platform"), check)
    assert not found.passed
    assert "DESCRIBE DETAIL `ml`.`features`.`customer_features` on warehouse ml-prod-warehouse: " in found.detail
    assert "found 0 value(s)" in found.detail, found.detail


def test_the_detail_is_named_by_the_manifest(workspace: Any) -> None:
    check = DeltaTableItemCheck(
        kind="delta_table",
        target="feature_store",
        table="customer_features",
        read="detail",
        expect=[{"path": ["format"], "equals": "delta"}, {"path": ["properties", "delta.autoOptimize.optimizeWrite"], "equals": True}],
    )
    found = evaluate(context("databricks-ml-platform"), check)
    assert found.passed, found.detail
    assert found.detail.startswith('DESCRIBE DETAIL `ml`.`features`.`customer_features` on warehouse ml-prod-warehouse: format = "delta"')
    wrong = DeltaTableItemCheck.model_validate({**check.model_dump(), "expect": [{"path": ["format"], "equals": "parquet"}]})
    assert not evaluate(context("databricks-ml-platform"), wrong).passed


def test_a_target_that_is_not_unity_catalog_fails_with_the_reason() -> None:
    check = DeltaTableItemCheck(kind="delta_table", target="app_db", read="properties", expect=[{"path": ["x"]}])
    found = evaluate(_postgres_context(), check)
    assert not found.passed
    assert "not Unity Catalog" in found.detail


def _postgres_context() -> Any:
    from types import SimpleNamespace

    target = SimpleNamespace(config=SimpleNamespace(name="app_db", kind="postgres"))
    return SimpleNamespace(data_targets=[target])
