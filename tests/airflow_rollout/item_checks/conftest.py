"""The Databricks stand-in for the databricks_api and delta_table items: seeds 000 and 001's workspace as the seeds set it up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from seed_platforms import DATABRICKS_SYSTEMS, cluster_feature_tables, context, set_table_properties, set_up_workspace

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def databricks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devtools.databricks_server import DatabricksServer
    from devtools.local_postgres import free_port

    root = tmp_path_factory.mktemp("databricks")
    with DatabricksServer(
        workspace_root=root / "ws",
        state_dir=root / "state",
        warehouses=("ontos-prod-warehouse", "ml-prod-warehouse"),
        apps={"ontos-ml-workbench": free_port()},  # seed 000's app, never deployed here: its identity and scopes are read
    ) as server:
        yield server


@pytest.fixture
def workspace(databricks: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Both seeds' tables created by their schema files, with the seed's properties; the settings; job and endpoint."""
    from seed_platforms import BATCH_JOB_SETTINGS, RETRAINING_JOB_SETTINGS, SERVED_ENTITIES, SERVING_AI_GATEWAY

    from airflow_rollout.targets.databricks import UnityCatalogMigrator

    databricks.reset()
    for conn_id in ("ONTOS_DATABRICKS", "DATABRICKS_ML"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", databricks.airflow_connection())
    set_up_workspace(databricks)
    for system in DATABRICKS_SYSTEMS:
        for target in context(system).data_targets:
            UnityCatalogMigrator(target=target).run("1.0.0", "test-setup")
            set_table_properties(target)
            if system == "databricks-ml-platform":
                cluster_feature_tables(target)
    databricks.define_job(job_id=101, name="batch-inference", settings=BATCH_JOB_SETTINGS)
    databricks.define_job(job_id=102, name="churn-retraining", settings=RETRAINING_JOB_SETTINGS)
    databricks.create_model("ml.models.churn_classifier", versions=3, aliases={"champion": 2})
    databricks.set_serving_endpoint("churn-classifier", served_entities=SERVED_ENTITIES, ai_gateway=SERVING_AI_GATEWAY)
    return databricks
