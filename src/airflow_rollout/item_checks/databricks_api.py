"""`kind: databricks_api`: a documented Databricks REST GET through the provider's `DatabricksHook`, its JSON
answer held to expectations.

    check:
      kind: databricks_api
      conn_id: ontos_databricks
      path: /api/2.0/sql/warehouses/ontos-prod-warehouse
      expect:
        - {path: [warehouse_type], equals: PRO}
        - {path: [enable_photon], equals: true}

Only GET, only under /api/2.x/: a checklist item reads the workspace's settings (warehouse type, secret scopes,
IP access lists, cluster policies, job notifications, serving endpoint scaling, model signatures), never changes
them. Query parameters (`params`) are sent as the documented GET parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from airflow_rollout.config import ConnId
from airflow_rollout.json_expectations import JsonGetCheck

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.evidence import Evidence

ApiPath = Annotated[str, Field(pattern=r"^/api/2\.[0-2]/[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$", max_length=300)]


class DatabricksApiItemCheck(JsonGetCheck):
    """A GET of the workspace's REST API whose JSON answer must meet the expectations."""

    kind: Literal["databricks_api"]
    conn_id: ConnId = Field(description="a databricks connection: host and token of the workspace")
    path: ApiPath = Field(description="the documented path, e.g. /api/2.0/secrets/scopes/list")


def run(_ctx: ReleaseContext, check: DatabricksApiItemCheck) -> Evidence:
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    from airflow_rollout.targets.databricks import api

    answer = api(DatabricksHook(databricks_conn_id=check.conn_id), "GET", check.path.removeprefix("/api/"), check.params or None)
    return check.judge(answer, check.path, check.conn_id)
