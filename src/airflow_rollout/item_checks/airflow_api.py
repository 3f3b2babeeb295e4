"""`kind: airflow_api`: a GET of a system's own Airflow 2 stable REST API (`/api/v1/...`), its JSON answer held to
expectations.

    check:
      kind: airflow_api
      conn_id: mlops_airflow
      path: /api/v1/importErrors
      expect: [{path: [total_entries], equals: 0}]

Seed 004's system runs an Airflow of its own beside its API (`airflow db init`, the webserver on port 8080): its
DAGs, import errors and users are read from that Airflow's REST API, logged in with HTTP basic auth as the
connection's login (the auth backend Airflow 2's docker-compose file enables). Only GET, only under /api/v1/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from airflow_rollout.config import ConnId
from airflow_rollout.json_expectations import JsonGetCheck

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.evidence import Evidence

# a segment after the first may be `~`, Airflow's "every" (the task instances of every run of a DAG)
AirflowApiPath = Annotated[str, Field(pattern=r"^/api/v1/[A-Za-z0-9_-]+(/([A-Za-z0-9_.-]+|~))*$", max_length=300)]


class AirflowApiItemCheck(JsonGetCheck):
    """A GET of the system's Airflow REST API whose JSON answer must meet the expectations."""

    kind: Literal["airflow_api"]
    conn_id: ConnId = Field(description="the system's Airflow webserver: host, port, schema (http or https), login and password")
    path: AirflowApiPath = Field(description="the documented path, e.g. /api/v1/dags/data_collection_dag")


def run(_ctx: ReleaseContext, check: AirflowApiItemCheck) -> Evidence:
    import httpx
    from airflow.sdk import BaseHook

    from airflow_rollout.evidence import Evidence

    conn = BaseHook.get_connection(check.conn_id)
    base = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8080}"
    with httpx.Client(base_url=base, auth=(conn.login or "", conn.password or ""), timeout=30) as client:
        answer = client.get(check.path, params=check.params)
    if answer.status_code != httpx.codes.OK:
        return Evidence(False, f"GET {check.path} via {check.conn_id}: HTTP {answer.status_code}")
    return check.judge(answer.json(), check.path, check.conn_id)
