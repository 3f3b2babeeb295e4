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

With `deployed_file` on an app's path (`/api/2.0/apps/<name>`) the expectations hold of a file of the source the app
runs, not of the app's answer: the file at the active deployment's `deployment_artifacts.source_code_path` (the
snapshot the platform deployed) is exported through the Workspace API (`GET /api/2.0/workspace/export`, base64
`content`) and read as YAML, as Databricks reads an app's `app.yaml` (its `env` a list of `{name, value}`).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from airflow_rollout.config import ConnId
from airflow_rollout.json_expectations import JsonGetCheck

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.evidence import Evidence

ApiPath = Annotated[str, Field(pattern=r"^/api/2\.[0-2]/[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$", max_length=300)]
APP_PATH = re.compile(r"^/api/2\.0/apps/[a-z0-9-]+$")


class DatabricksApiItemCheck(JsonGetCheck):
    """A GET of the workspace's REST API whose JSON answer must meet the expectations."""

    kind: Literal["databricks_api"]
    conn_id: ConnId = Field(description="a databricks connection: host and token of the workspace")
    path: ApiPath = Field(description="the documented path, e.g. /api/2.0/secrets/scopes/list")
    deployed_file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+\.ya?ml$")] | None = Field(
        default=None, description="with an app's path: the YAML file of the source its active deployment runs (app.yaml)"
    )

    @model_validator(mode="after")
    def _deployed_file_of_an_app(self) -> DatabricksApiItemCheck:
        if self.deployed_file is not None and (not APP_PATH.match(self.path) or self.params):
            raise ValueError("deployed_file reads an app's source: the path must be /api/2.0/apps/<name>, without params")
        return self


def run(_ctx: ReleaseContext, check: DatabricksApiItemCheck) -> Evidence:
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    from airflow_rollout.evidence import Evidence
    from airflow_rollout.targets.databricks import api

    hook = DatabricksHook(databricks_conn_id=check.conn_id)
    answer = api(hook, "GET", check.path.removeprefix("/api/"), check.params or None)
    if check.deployed_file is None:
        return check.judge(answer, check.path, check.conn_id)
    source = ((answer.get("active_deployment") or {}).get("deployment_artifacts") or {}).get("source_code_path")
    if not source:
        return Evidence(False, f"GET {check.path} via {check.conn_id}: no active deployment, so no {check.deployed_file} deployed")
    file_path = f"{str(source).rstrip('/')}/{check.deployed_file}"
    exported = api(hook, "GET", "2.0/workspace/export", {"path": file_path, "format": "AUTO"})
    document, problem = _yaml_of(exported.get("content"))
    if problem:
        return Evidence(False, f"GET /api/2.0/workspace/export?path={file_path} via {check.conn_id}: {problem}")
    return check.judge(document, f"{check.path} (active deployment) -> {file_path}", check.conn_id)


def _yaml_of(content: Any) -> tuple[Any, str | None]:
    """The exported file's YAML document, or why it is none (not base64, not YAML)."""
    import yaml

    try:
        return yaml.safe_load(base64.b64decode(str(content or ""), validate=True)), None
    except (binascii.Error, ValueError, yaml.YAMLError) as exc:
        return None, f"the exported file is not base64-encoded YAML ({type(exc).__name__})"
