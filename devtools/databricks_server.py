"""A local stand-in for the Databricks REST API: SQL statements, Apps, serving endpoints, Jobs, the model registry.

No workspace is reachable from here, so tests point the databricks provider's `DatabricksHook` (or any
HTTP client) at this server. It speaks the real paths, field names, states and error bodies
(`{"error_code", "message"}` with the real HTTP status) and wants a bearer token on every `/api/` call:

- SQL Statement Execution (`/api/2.0/sql/statements`, get, cancel) over the engine of
  `devtools.databricks_sql` (Unity Catalog names, Delta versions, grants; its docstring lists the
  dialect). Only `disposition` INLINE and `format` JSON_ARRAY; values come back as strings or null, and
  `result.data_array` is left out when there are no rows, as Databricks leaves it out. `wait_timeout` "0s"
  answers PENDING first (the statement runs at once; a get returns its end state), as the SQL statements
  operator expects. SQL warehouses (`/api/2.0/sql/warehouses`) are listed, got, started and stopped.
- Apps (`/api/2.0/apps`): real processes. A deployment's `source_code_path` (`/Workspace/...`) is the
  directory `<workspace_root>/Workspace/...`; in SNAPSHOT mode (the default) it is copied first, in
  AUTO_SYNC mode it runs in place. Its `app.yaml` (or `app.yml`) is read as Databricks reads it:
  `command` (an argument list, never a shell) and `env` (`name` + `value`; `valueFrom` is not supported).
  Without one, `app.py` runs with Python. In the command, a first word `python`/`python3` and `{python}`
  mean this interpreter, `{port}` the app's port, and `$NAME`/`${NAME}` any variable of the app's
  environment: `DATABRICKS_APP_PORT`, `DATABRICKS_APP_NAME`, `DATABRICKS_HOST` (this server) and those of
  `env`. The process runs in the source directory through `devtools.local_images` (one
  `LocalProcessApp` per app, `<state_dir>/databricks/apps/standin/<app>/`); a deployment stops the app's
  process first (one port per app), then starts the new one and waits until `app_readiness_path` answers
  2xx: deployment SUCCEEDED and app RUNNING, or FAILED and app CRASHED. The app's `url` is
  `http://127.0.0.1:<its port>`; a process that dies later shows as CRASHED.
- Serving endpoints (`/api/2.0/serving-endpoints`: list, get, PUT `{name}/config`); an endpoint's `ai_gateway`
  (its `rate_limits`: `calls` per `key` `user`/`endpoint` per `renewal_period`) is answered as it was set.
- Jobs (`/api/2.1/jobs/...` and `/api/2.2/jobs/...`: get, list, run-now, runs/get, runs/get-output of a task's
  run, runs/cancel); a run
  goes PENDING -> RUNNING -> TERMINATED (or INTERNAL_ERROR) over the job's `seconds`, ending as set. run-now's
  `idempotency_token` is honoured as Databricks documents it: a second request with the token of an existing
  run starts nothing and answers that run's id. The job's `seconds` are workspace time: the `time_scale` of
  `/_standin/config` compresses them (0.01 runs an hour's job in 36 s).
- The MLflow model registry, as Unity Catalog models use it (`/api/2.0/mlflow/registered-models/get`,
  `.../registered-models/alias` GET/POST/DELETE, `/api/2.0/mlflow/model-versions/get`).
- Workspace settings the checklists read, as a test set them (GET only): secret scopes
  (`/api/2.0/secrets/scopes/list`, `/api/2.0/secrets/list?scope=`: keys and timestamps, never values), IP
  access lists (`/api/2.0/ip-access-lists`), `/api/2.0/workspace-conf?keys=a,b`, cluster policies
  (`/api/2.0/policies/clusters/list` and `get?policy_id=`, `definition` a JSON string as the API sends it),
  instance pools (`/api/2.0/instance-pools/list`: name, node type, idle and capacity bounds, `state` ACTIVE),
  service principals (SCIM `/api/2.0/preview/scim/v2/ServicePrincipals[?filter=displayName eq "name"]`).
  The workspace's SQL warehouse configuration (`/api/2.0/sql/config/warehouses`: `sql_configuration_parameters`
  such as STATEMENT_TIMEOUT) and AI/BI dashboards (`/api/2.0/lakeview/dashboards`, trashed ones only with
  `show_trashed=true`). Workspace files are exported (`/api/2.0/workspace/export?path=&format=`: base64 `content`
  and `file_type`) from the workspace root, as a deployed app's source (its app.yaml) is read. An app answers
  `service_principal_id`, `_client_id`, `_name` and `compute_size` as a new app has them; the test's `apps` settings
  add fields (`user_api_scopes`, `effective_user_api_scopes`) or replace them (a None drops one).
  Unity Catalog's effective permissions (`/api/2.1/unity-catalog/effective-permissions/{catalog|schema|table}/
  {full_name}[?principal=]`) are read from the SQL engine's grants: each privilege as the API names it
  (USE_SCHEMA), with `inherited_from_type`/`_name` when it was granted on a parent.
  A warehouse's settings (warehouse_type, enable_photon, enable_serverless_compute, auto_stop_mins,
  min_num_clusters, max_num_clusters, cluster_size, spot_instance_policy) and a job's documented settings
  (email_notifications, webhook_notifications, schedule, timeout_seconds, ...) are what the test gave.

A control API for tests, under `/_standin/` (no token needed):

    GET  /_standin/statements        every SQL statement received, in order: statement_id, statement,
                                     parameters, warehouse_id, catalog, schema, state (SUCCEEDED, FAILED, or
                                     REJECTED when the request itself was refused), error
    POST /_standin/reset             forget all SQL objects, statements, faults, jobs, runs, models,
                                     serving endpoints; stop every app process, apps back to "never deployed"
    POST /_standin/faults            {"statement_contains": "ALTER TABLE", "message": "...", "error_code": "BAD_REQUEST",
                                      "times": null}: matching statements (case-insensitive) FAIL;
                                     {"path_contains": "/jobs/run-now", "status": 503, "error_code": "TEMPORARILY_UNAVAILABLE",
                                      "message": "...", "method": "POST", "times": 1}: matching requests answer that error
    GET|DELETE /_standin/faults      list | clear the faults
    POST /_standin/jobs              {"job_id": 7, "name": "etl", "outcome": "SUCCESS|FAILED|TIMEDOUT|CANCELED|INTERNAL_ERROR",
                                      "seconds": 0, "outcomes": ["FAILED", ...] (per run, then outcome),
                                      "state_message": "...", "tasks": ["task_key", ...], "parameters": [{"name", "default"}],
                                      "settings": {"schedule": {...}, "email_notifications": {...}, "tasks": [...], ...}}
    GET  /_standin/runs              every run: run_id, job_id, job_parameters, outcome
    POST /_standin/models            {"name": "cat.sch.model", "versions": 3 | [1, 2, 5], "aliases": {"champion": 2}}
    POST /_standin/serving-endpoints {"name": "ep", "ready": "READY|NOT_READY", "config_update":
                                      "NOT_UPDATING|IN_PROGRESS|UPDATE_FAILED", "served_entities": [...]}
    POST /_standin/warehouses        {"id": "abc123", "name": "...", "warehouse_type": "PRO", "enable_photon": true, ...}
    POST /_standin/settings          {"secret_scopes": [{"name", "backend_type", "keys": [...]}], "ip_access_lists": [...],
                                      "workspace_conf": {"enableIpAccessLists": "true"}, "cluster_policies": [{"name",
                                      "definition": {...}}], "instance_pools": [{"instance_pool_name", "node_type_id",
                                      "min_idle_instances", "max_capacity"}], "service_principals": [{"displayName",
                                      "active"}], "apps": {"<app>": {<documented App fields>}}, "warehouse_config": {...},
                                      "dashboards": [{"display_name", "lifecycle_state"}]}: each part given replaces
                                      what was there
    POST /_standin/config            {"time_scale": 0.01}: real seconds per second of workspace time (job runs, slow
                                     statements); {"slow_statements": {"DEEP CLONE": 600}}: a statement containing a
                                     key (case-insensitive) takes that many seconds of workspace time. It takes effect
                                     at once, but answers RUNNING (after its request's wait_timeout, also workspace
                                     time) and on each get until its time is up, as a long statement does

The Airflow connection (`DatabricksServer.airflow_connection()`): conn_type `databricks`, host `127.0.0.1`,
port, schema `http` (the hook builds `{schema}://{host}:{port}/api/...`), the token as password.

    python -m devtools.databricks_server --port 8770 --workspace-root .state/workspace \
        --state-dir .state/databricks --app dashboard=8771 --warehouse standin-warehouse
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from airflow_rollout.targets.base import AppNotReadyError
from devtools.databricks_sql import SqlEngine, SqlError, quote_name, type_name
from devtools.local_images import LocalImage, image_process
from devtools.local_postgres import free_port

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from airflow_rollout.targets.local_process import LocalProcessApp

log = logging.getLogger(__name__)

Json = dict[str, Any]

# Runs an app's command in its source directory: `python -c EXEC_IN <dir> <command...>` (no braces: the
# argument list goes through LocalProcessApp's `{placeholder}` formatting).
EXEC_IN = "import os, sys; os.chdir(sys.argv[1]); os.execvp(sys.argv[2], sys.argv[2:])"
APP_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,28}[a-z0-9]$"
_WAIT_TIMEOUT = re.compile(r"^(0|[5-9]|[1-4][0-9]|50)s$")


WAREHOUSE_SETTINGS = (
    "warehouse_type",
    "enable_photon",
    "enable_serverless_compute",
    "auto_stop_mins",
    "min_num_clusters",
    "max_num_clusters",
    "cluster_size",
    "spot_instance_policy",
)
# documented job settings a test may give (`settings` of POST /_standin/jobs); `tasks` (with e.g. max_retries) also
# names the job's task keys
JOB_SETTINGS = (
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
    "schedule",
    "timeout_seconds",
    "health",
    "tasks",
    "run_as",
    "trigger",
)


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _ms(moment: float) -> int:
    return int(moment * 1000)


@dataclass
class Fault:
    message: str
    error_code: str = "BAD_REQUEST"
    statement_contains: str | None = None
    path_contains: str | None = None
    method: str | None = None
    status: int = 500
    times: int | None = None  # None: every match

    def as_json(self) -> Json:
        return {
            "statement_contains": self.statement_contains,
            "path_contains": self.path_contains,
            "method": self.method,
            "status": self.status,
            "error_code": self.error_code,
            "message": self.message,
            "times": self.times,
        }


@dataclass
class _Deployment:
    deployment_id: str
    source_code_path: str
    mode: str
    created: float
    state: str = "IN_PROGRESS"
    message: str = "Preparing source code for new deployment."
    updated: float = 0.0

    def as_json(self, creator: str) -> Json:
        return {
            "deployment_id": self.deployment_id,
            "source_code_path": self.source_code_path,
            "mode": self.mode,
            "deployment_artifacts": {"source_code_path": self.source_code_path},
            "status": {"state": self.state, "message": self.message},
            "create_time": _iso(self.created),
            "update_time": _iso(self.updated or self.created),
            "creator": creator,
        }


@dataclass
class _App:
    name: str
    port: int
    created: float
    description: str = ""
    compute_state: str = "ACTIVE"
    compute_message: str = "App compute is running."
    app_state: str = "UNAVAILABLE"
    app_message: str = "App has not been deployed yet. Run your app by deploying source code"
    active: _Deployment | None = None
    pending: _Deployment | None = None
    deployments: list[_Deployment] = field(default_factory=list)
    process: LocalProcessApp | None = None
    updated: float = 0.0


@dataclass
class _Job:
    job_id: int
    name: str
    outcome: str = "SUCCESS"
    outcomes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    state_message: str = ""
    tasks: list[str] = field(default_factory=lambda: ["main"])
    parameters: list[Json] = field(default_factory=list)
    settings: Json = field(default_factory=dict)  # further documented job settings, as given
    created: float = field(default_factory=time.time)
    runs: int = 0


@dataclass
class _Run:
    run_id: int
    job: _Job
    number: int
    started: float
    outcome: str
    seconds: float
    parameters: dict[str, str]
    canceled_at: float | None = None


_OUTCOMES = {
    # outcome -> (life_cycle_state, result_state, termination code, termination type)
    "SUCCESS": ("TERMINATED", "SUCCESS", "SUCCESS", "SUCCESS"),
    "FAILED": ("TERMINATED", "FAILED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("TERMINATED", "TIMEDOUT", "RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("TERMINATED", "CANCELED", "USER_CANCELED", "SUCCESS"),
    "INTERNAL_ERROR": ("INTERNAL_ERROR", "FAILED", "INTERNAL_ERROR", "INTERNAL_ERROR"),
}


class _AppSourceError(Exception):
    """The source code of a deployment cannot be run (no app.yaml/app.py, a bad command, ...)."""


class Workspace:
    """All the state behind the API; every public method is one request and returns its JSON answer."""

    def __init__(
        self,
        *,
        workspace_root: Path,
        state_dir: Path,
        apps: dict[str, int],
        warehouses: tuple[str, ...],
        token: str | None,
        user: str,
        app_readiness_path: str,
        app_ready_timeout: float,
    ) -> None:
        self.workspace_root = workspace_root
        self.state_dir = state_dir
        self.token = token
        self.user = user
        self.app_readiness_path = app_readiness_path
        self.app_ready_timeout = app_ready_timeout
        self.base_url = ""  # set once the server listens
        self._configured_apps = dict(apps)
        self._configured_warehouses = tuple(warehouses)
        self._lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self.time_scale = 1.0  # real seconds per second of workspace time; a setting, kept across resets
        self.slow_statements: dict[str, float] = {}  # statement text -> its seconds of workspace time; a setting too
        self.sql = SqlEngine(user=user)
        self._init_state()

    def _init_state(self) -> None:
        now = time.time()
        self.statements: dict[str, Json] = {}
        self.statement_ends: dict[str, float] = {}  # a slow statement's id -> when (time.monotonic()) it is done
        self.statement_log: list[Json] = []
        self.faults: list[Fault] = []
        self.warehouses: dict[str, Json] = {wid: {"id": wid, "name": wid, "state": "RUNNING"} for wid in self._configured_warehouses}
        self.secret_scopes: list[Json] = []
        self.ip_access_lists: list[Json] = []
        self.workspace_conf: dict[str, str] = {}
        self.cluster_policies: list[Json] = []
        self.instance_pools: list[Json] = []
        self.notification_destinations: list[Json] = []
        self.experiments: list[Json] = []
        self.online_tables: dict[str, Json] = {}
        self.quality_monitors: dict[str, Json] = {}
        self.service_principals: list[Json] = []
        self.app_settings: dict[str, Json] = {}  # an app's documented fields a test gave, over the defaults (None drops one)
        self.warehouse_config: Json = {}  # GET /api/2.0/sql/config/warehouses: the workspace's SQL warehouse settings
        self.dashboards: list[Json] = []  # AI/BI (Lakeview) dashboards
        self.apps: dict[str, _App] = {name: _App(name=name, port=port, created=now) for name, port in self._configured_apps.items()}
        self.endpoints: dict[str, Json] = {}
        self.jobs: dict[int, _Job] = {}
        self.runs: dict[int, _Run] = {}
        self.run_tokens: dict[str, int] = {}  # run-now's idempotency_token -> the run it started
        self.models: dict[str, Json] = {}
        self._next_run = 1000

    # ---------------------------------------------------------------------------------- lifecycle

    def reset(self) -> Json:
        self.close()
        with self._lock:
            self.sql.reset()
            self._init_state()
        return {}

    def close(self) -> None:
        """Stop every app process and wait for deployments under way."""
        for thread in list(self._threads):
            thread.join(timeout=self.app_ready_timeout + 20)
        self._threads.clear()
        with self._lock:
            apps = list(self.apps.values())
        for app in apps:
            if app.process is not None:
                app.process.stop()

    def _background(self, target: Callable[[], None], name: str) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------------------------- faults

    def add_fault(self, body: Json) -> Json:
        if not body.get("statement_contains") and not body.get("path_contains"):
            raise _invalid("A fault needs statement_contains or path_contains.")
        fault = Fault(
            message=str(body.get("message") or "Injected failure"),
            error_code=str(body.get("error_code") or ("BAD_REQUEST" if body.get("statement_contains") else "INTERNAL_ERROR")),
            statement_contains=body.get("statement_contains"),
            path_contains=body.get("path_contains"),
            method=str(body["method"]).upper() if body.get("method") else None,
            status=int(body.get("status") or 500),
            times=int(body["times"]) if body.get("times") is not None else None,
        )
        with self._lock:
            self.faults.append(fault)
        return fault.as_json()

    def clear_faults(self) -> Json:
        with self._lock:
            self.faults.clear()
        return {}

    def _take_fault(self, match: Callable[[Fault], bool]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if match(fault):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def http_fault(self, method: str, path: str) -> Fault | None:
        return self._take_fault(
            lambda f: bool(f.path_contains) and f.path_contains in path and (f.method is None or f.method == method)  # type: ignore[operator]
        )

    # --------------------------------------------------------------------------------------- SQL

    def _warehouse(self, warehouse_id: str) -> Json:
        warehouse = self.warehouses.get(warehouse_id)
        if warehouse is None:
            raise _not_found(f"SQL warehouse {warehouse_id} does not exist.")
        return warehouse

    def warehouse_json(self, warehouse_id: str) -> Json:
        warehouse = self._warehouse(warehouse_id)
        return {
            "cluster_size": "2X-Small",
            "warehouse_type": "PRO",
            "enable_serverless_compute": True,
            "enable_photon": True,
            "auto_stop_mins": 120,
            "min_num_clusters": 1,
            "max_num_clusters": 1,
            "spot_instance_policy": "COST_OPTIMIZED",
            **warehouse,
            "creator_name": self.user,
            "odbc_params": {"hostname": "127.0.0.1", "path": f"/sql/1.0/warehouses/{warehouse_id}", "protocol": "https", "port": 443},
        }

    def set_warehouse_state(self, warehouse_id: str, state: str) -> Json:
        with self._lock:
            self._warehouse(warehouse_id)["state"] = state
        return {}

    def add_warehouse(self, body: Json) -> Json:
        warehouse_id = str(body.get("id") or "")
        if not warehouse_id:
            raise _invalid("id is required.")
        settings = {key: body[key] for key in WAREHOUSE_SETTINGS if key in body}
        with self._lock:
            self.warehouses[warehouse_id] = {
                "id": warehouse_id,
                "name": str(body.get("name") or warehouse_id),
                "state": "RUNNING",
                **settings,
            }
        return self.warehouse_json(warehouse_id)

    # ------------------------------------------------------------------------ workspace settings

    def set_settings(self, body: Json) -> Json:
        with self._lock:
            if "secret_scopes" in body:
                self.secret_scopes = [
                    {"name": str(s["name"]), "backend_type": str(s.get("backend_type") or "DATABRICKS"), "keys": list(s.get("keys") or [])}
                    for s in body["secret_scopes"]
                ]
            if "ip_access_lists" in body:
                self.ip_access_lists = [
                    {
                        "list_id": uuid.uuid4().hex,
                        "label": str(entry["label"]),
                        "list_type": str(entry.get("list_type") or "ALLOW"),
                        "ip_addresses": list(entry.get("ip_addresses") or []),
                        "address_count": len(entry.get("ip_addresses") or []),
                        "enabled": bool(entry.get("enabled", True)),
                        "created_at": _ms(time.time()),
                        "created_by": 1,
                    }
                    for entry in body["ip_access_lists"]
                ]
            if "workspace_conf" in body:
                self.workspace_conf = {str(k): str(v) for k, v in body["workspace_conf"].items()}
            if "cluster_policies" in body:
                self.cluster_policies = [
                    {
                        "policy_id": uuid.uuid4().hex[:16].upper(),
                        "name": str(policy["name"]),
                        "definition": json.dumps(policy.get("definition") or {}),  # a JSON string, as the API sends it
                        "created_at_timestamp": _ms(time.time()),
                        "is_default": False,
                    }
                    for policy in body["cluster_policies"]
                ]
            if "instance_pools" in body:
                self.instance_pools = [
                    {
                        "instance_pool_id": uuid.uuid4().hex[:20],
                        "instance_pool_name": str(pool["instance_pool_name"]),
                        "node_type_id": str(pool.get("node_type_id") or "Standard_DS3_v2"),
                        "min_idle_instances": int(pool.get("min_idle_instances") or 0),
                        "max_capacity": int(pool.get("max_capacity") or 0),
                        "idle_instance_autotermination_minutes": int(pool.get("idle_instance_autotermination_minutes") or 60),
                        "state": str(pool.get("state") or "ACTIVE"),
                    }
                    for pool in body["instance_pools"]
                ]
            if "service_principals" in body:
                self.service_principals = [
                    {
                        "id": str(1000 + index),
                        "applicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{sp['displayName']}")),
                        "displayName": str(sp["displayName"]),
                        "active": bool(sp.get("active", True)),
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
                    }
                    for index, sp in enumerate(body["service_principals"])
                ]
            self._set_monitoring_settings(body)
            self._set_app_and_sql_settings(body)
        return {}

    def _set_monitoring_settings(self, body: Json) -> None:
        """Notification destinations, MLflow experiments, online tables and quality monitors, as their APIs return them."""
        if "notification_destinations" in body:
            self.notification_destinations = [
                {"id": str(uuid.uuid4()), "display_name": str(d["display_name"]), "destination_type": str(d["destination_type"])}
                for d in body["notification_destinations"]
            ]
        if "experiments" in body:
            self.experiments = [
                {
                    "experiment_id": str(1000 + number),
                    "name": str(e["name"]),
                    "artifact_location": str(e.get("artifact_location", f"dbfs:/databricks/mlflow-tracking/{1000 + number}")),
                    "lifecycle_stage": str(e.get("lifecycle_stage") or "active"),
                    "creation_time": _ms(time.time()),
                }
                for number, e in enumerate(body["experiments"])
            ]
        if "online_tables" in body:
            self.online_tables = {
                str(t["name"]): {"name": str(t["name"]), "spec": dict(t.get("spec") or {}), "status": dict(t.get("status") or {})}
                for t in body["online_tables"]
            }
        if "quality_monitors" in body:
            self.quality_monitors = {str(m["table_name"]): json.loads(json.dumps(m)) for m in body["quality_monitors"]}

    def _set_app_and_sql_settings(self, body: Json) -> None:
        """Apps' identity and user authorization fields, the workspace's SQL warehouse configuration, AI/BI dashboards."""
        if "apps" in body:  # {app name: {service_principal_name, user_api_scopes, effective_user_api_scopes, compute_size, ...}}
            self.app_settings = json.loads(json.dumps(body["apps"]))
        if "warehouse_config" in body:  # {security_policy, sql_configuration_parameters: {configuration_pairs: [{key, value}]}, ...}
            self.warehouse_config = json.loads(json.dumps(body["warehouse_config"]))
        if "dashboards" in body:
            self.dashboards = [
                {
                    "dashboard_id": uuid.uuid5(uuid.NAMESPACE_URL, f"dashboard:{d['display_name']}").hex,
                    "display_name": str(d["display_name"]),
                    "path": f"/Workspace/Shared/{d['display_name']}.lvdash.json",
                    "lifecycle_state": str(d.get("lifecycle_state") or "ACTIVE"),
                    "create_time": _iso(time.time()),
                }
                for d in body["dashboards"]
            ]

    def export_workspace_file(self, path: str | None, export_format: str | None) -> Json:
        """A workspace file's bytes as the Workspace API's export answers them: base64 `content` and its `file_type`.
        A file (not a notebook) exports in SOURCE, AUTO and RAW alike; a directory only as DBC, which is not played."""
        import base64

        if export_format not in (None, "SOURCE", "AUTO", "RAW"):
            raise _invalid(f"format {export_format!r} is not supported for workspace files by the Databricks stand-in.")
        file = self.workspace_dir(path or "")
        if not file.is_file():
            raise _not_found(f"Path ({path}) doesn't exist.")
        return {"content": base64.b64encode(file.read_bytes()).decode(), "file_type": file.suffix.lstrip(".")}

    def warehouse_config_json(self) -> Json:
        with self._lock:
            return dict(json.loads(json.dumps(self.warehouse_config)))

    def list_dashboards(self, show_trashed: str | None) -> Json:
        """The Lakeview list: trashed dashboards only with show_trashed=true, as the API lists them."""
        with self._lock:
            shown = [dict(d) for d in self.dashboards if d["lifecycle_state"] == "ACTIVE" or show_trashed == "true"]
        return {"dashboards": shown}

    def list_notification_destinations(self) -> Json:
        with self._lock:
            return {"results": json.loads(json.dumps(self.notification_destinations))}

    def experiment_by_name(self, name: str | None) -> Json:
        with self._lock:
            found = next((e for e in self.experiments if e["name"] == name), None)
            if found is None:
                raise _not_found(f"Could not find experiment with name {name}")
            return {"experiment": dict(found)}

    def online_table_json(self, name: str) -> Json:
        with self._lock:
            if name not in self.online_tables:
                raise ApiError(404, "NOT_FOUND", f"Online table '{name}' does not exist.")
            return dict(json.loads(json.dumps(self.online_tables[name])))

    def quality_monitor_json(self, table_name: str) -> Json:
        with self._lock:
            if table_name not in self.quality_monitors:
                raise _not_found(f"Monitor for table '{table_name}' does not exist.")
            return dict(json.loads(json.dumps(self.quality_monitors[table_name])))

    def list_service_principals(self, scim_filter: str | None) -> Json:
        """SCIM's list, as `filter=displayName eq "name"` narrows it (the one filter the checklists send)."""
        wanted = None
        if scim_filter:
            match = re.fullmatch(r'\s*displayName\s+eq\s+"([^"]*)"\s*', scim_filter)
            if match is None:
                raise _invalid(f'Unsupported filter {scim_filter!r}: the stand-in knows displayName eq "name".')
            wanted = match[1]
        with self._lock:
            found = [dict(sp) for sp in self.service_principals if wanted is None or sp["displayName"] == wanted]
        return {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(found),
            "startIndex": 1,
            "itemsPerPage": len(found),
            "Resources": found,
        }

    def effective_permissions(self, securable_type: str, full_name: str, principal: str | None) -> Json:
        """Unity Catalog's effective permissions: the grants on the securable and those it inherits from its parents."""
        kind = securable_type.upper()
        if kind not in ("CATALOG", "SCHEMA", "TABLE"):
            raise _invalid(f"Unsupported securable type {securable_type!r}: the stand-in knows catalog, schema and table.")
        who = f"{quote_name(principal)} " if principal else ""
        try:
            rows = self.sql.execute(f"SHOW GRANTS {who}ON {kind} {quote_name(*full_name.split('.'))}").rows
        except SqlError as exc:
            raise _not_found(str(exc)) from exc
        assignments: dict[str, list[Json]] = {}
        for grantee, privilege, object_type, object_key in rows:
            own = (object_type, object_key) == (kind, full_name.lower())
            inherited = {} if own else {"inherited_from_type": object_type, "inherited_from_name": object_key}
            assignments.setdefault(grantee, []).append({"privilege": privilege.replace(" ", "_"), **inherited})
        return {"privilege_assignments": [{"principal": p, "privileges": privileges} for p, privileges in assignments.items()]}

    def list_scopes(self) -> Json:
        with self._lock:
            return {"scopes": [{"name": s["name"], "backend_type": s["backend_type"]} for s in self.secret_scopes]}

    def list_secrets(self, scope: str | None) -> Json:
        with self._lock:
            found = next((s for s in self.secret_scopes if s["name"] == scope), None)
            if found is None:
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Scope {scope} does not exist!")
            return {"secrets": [{"key": key, "last_updated_timestamp": _ms(time.time())} for key in found["keys"]]}

    def list_ip_access_lists(self) -> Json:
        with self._lock:
            return {"ip_access_lists": json.loads(json.dumps(self.ip_access_lists))}

    def get_workspace_conf(self, keys: str | None) -> Json:
        with self._lock:
            return {key: self.workspace_conf.get(key) for key in (keys or "").split(",") if key}

    def list_policies(self) -> Json:
        with self._lock:
            return {"policies": [dict(p) for p in self.cluster_policies], "total_count": len(self.cluster_policies)}

    def list_instance_pools(self) -> Json:
        with self._lock:
            return {"instance_pools": json.loads(json.dumps(self.instance_pools))}

    def get_policy(self, policy_id: str | None) -> Json:
        with self._lock:
            found = next((p for p in self.cluster_policies if p["policy_id"] == policy_id), None)
            if found is None:
                raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Can't find a cluster policy with id: {policy_id}.")
            return dict(found)

    def execute_statement(self, body: Json) -> Json:
        statement = body.get("statement")
        if not isinstance(statement, str) or not statement.strip():
            raise _invalid("statement is required.")
        record: Json = {
            "statement_id": None,
            "statement": statement,
            "parameters": body.get("parameters") or [],
            "warehouse_id": body.get("warehouse_id"),
            "catalog": body.get("catalog"),
            "schema": body.get("schema"),
            "state": "RUNNING",
        }
        with self._lock:
            self.statement_log.append(record)  # every statement received, a rejected request too
        try:
            statement_id, wait_timeout = self._accept_statement(body)
        except ApiError as exc:
            with self._lock:
                record["state"], record["error"] = "REJECTED", {"error_code": exc.error_code, "message": exc.message}
            raise
        record["statement_id"] = statement_id
        response = self._run_statement(statement_id, statement, record["parameters"], body)
        with self._lock:
            record["state"] = response["status"]["state"]
            if "error" in response["status"]:
                record["error"] = response["status"]["error"]
            self.statements[statement_id] = response
        if wait_timeout == "0s":
            return {"statement_id": statement_id, "status": {"state": "PENDING"}}
        seconds = max((s for text, s in self.slow_statements.items() if text in statement.lower()), default=0.0)
        if seconds:
            with self._lock:
                self.statement_ends[statement_id] = time.monotonic() + seconds * self.time_scale
            time.sleep(min(seconds, float(wait_timeout.removesuffix("s"))) * self.time_scale)  # the request's own wait
            return self.get_statement(statement_id)
        return response

    def _accept_statement(self, body: Json) -> tuple[str, str]:
        """Check the request as the API does; -> (the new statement id, wait_timeout)."""
        warehouse_id = body.get("warehouse_id")
        if not isinstance(warehouse_id, str) or not warehouse_id:
            raise _invalid("warehouse_id is required.")
        wait_timeout = str(body.get("wait_timeout") or "10s")
        if not _WAIT_TIMEOUT.match(wait_timeout):
            raise _invalid(f"wait_timeout must be 0s or between 5s and 50s, got {wait_timeout!r}.")
        if str(body.get("on_wait_timeout") or "CONTINUE") not in ("CONTINUE", "CANCEL"):
            raise _invalid("on_wait_timeout must be CONTINUE or CANCEL.")
        if str(body.get("disposition") or "INLINE") != "INLINE":
            raise _invalid("The Databricks stand-in supports only disposition INLINE.")
        if str(body.get("format") or "JSON_ARRAY") != "JSON_ARRAY":
            raise _invalid("The Databricks stand-in supports only format JSON_ARRAY.")
        if not isinstance(body.get("parameters") or [], list):
            raise _invalid("parameters must be a list of {name, value, type}.")
        with self._lock:
            self._warehouse(warehouse_id)["state"] = "RUNNING"  # a statement starts a stopped warehouse
        return "01ef" + uuid.uuid4().hex[4:8] + "-" + str(uuid.uuid4())[9:], wait_timeout

    def _run_statement(self, statement_id: str, statement: str, parameters: list[Json], body: Json) -> Json:
        lowered = statement.lower()
        fault = self._take_fault(lambda f: bool(f.statement_contains) and f.statement_contains.lower() in lowered)  # type: ignore[union-attr]
        if fault is not None:
            return {
                "statement_id": statement_id,
                "status": {"state": "FAILED", "error": {"error_code": fault.error_code, "message": fault.message}},
            }
        try:
            result = self.sql.execute(statement, parameters, catalog=body.get("catalog"), schema=body.get("schema"))
        except SqlError as exc:
            return {
                "statement_id": statement_id,
                "status": {"state": "FAILED", "error": {"error_code": "BAD_REQUEST", "message": str(exc)}},
            }
        rows = result.data_array()
        row_limit = body.get("row_limit")
        truncated = False
        if isinstance(row_limit, int) and 0 <= row_limit < len(rows):
            rows, truncated = rows[:row_limit], True
        columns = []
        for position, (name, spark_type) in enumerate(result.columns):
            column: Json = {"name": name, "type_text": spark_type.upper(), "type_name": type_name(spark_type), "position": position}
            if spark_type.startswith("decimal("):
                precision, scale = re.findall(r"\d+", spark_type)
                column |= {"type_precision": int(precision), "type_scale": int(scale)}
            columns.append(column)
        chunk: Json = {"chunk_index": 0, "row_offset": 0, "row_count": len(rows)}
        return {
            "statement_id": statement_id,
            "status": {"state": "SUCCEEDED"},
            "manifest": {
                "format": "JSON_ARRAY",
                "schema": {"column_count": len(columns), "columns": columns},
                "total_chunk_count": 1,
                "chunks": [chunk],
                "total_row_count": len(rows),
                "truncated": truncated,
            },
            "result": chunk | ({"data_array": rows} if rows else {}),
        }

    def get_statement(self, statement_id: str) -> Json:
        with self._lock:
            response = self.statements.get(statement_id)
            running = self.statement_ends.get(statement_id, 0.0) > time.monotonic()
        if response is None:
            raise _not_found(f"Statement {statement_id} does not exist.")
        return {"statement_id": statement_id, "status": {"state": "RUNNING"}} if running else response

    def cancel_statement(self, statement_id: str) -> Json:
        if self.get_statement(statement_id)["status"]["state"] == "RUNNING":  # only a slow one is still running
            with self._lock:
                self.statements[statement_id] = {"statement_id": statement_id, "status": {"state": "CANCELED"}}
                del self.statement_ends[statement_id]
        return {}

    def statement_records(self) -> list[Json]:
        with self._lock:
            return [dict(record) for record in self.statement_log]

    # -------------------------------------------------------------------------------------- apps

    def _app(self, name: str) -> _App:
        app = self.apps.get(name)
        if app is None:
            raise _not_found(f"App with name {name} does not exist or is deleted.")
        return app

    def app_json(self, name: str) -> Json:
        with self._lock:
            app = self._app(name)
            if app.app_state == "RUNNING" and app.process is not None and app.process.current() is None:
                app.app_state, app.app_message = "CRASHED", "App crashed unexpectedly: its process exited."
            body: Json = {
                "name": app.name,
                "description": app.description,
                "url": f"http://127.0.0.1:{app.port}",
                "create_time": _iso(app.created),
                "update_time": _iso(app.updated or app.created),
                "creator": self.user,
                "updater": self.user,
                "service_principal_name": f"app-{app.name}",
                "service_principal_id": 2000 + sorted(self.apps).index(app.name),
                "service_principal_client_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"app-sp:{app.name}")),
                "compute_size": "MEDIUM",
                "app_status": {"state": app.app_state, "message": app.app_message},
                "compute_status": {"state": app.compute_state, "message": app.compute_message},
            }
            for key, value in self.app_settings.get(app.name, {}).items():
                if value is None:
                    body.pop(key, None)
                else:
                    body[key] = json.loads(json.dumps(value))
            if app.active is not None:
                body["active_deployment"] = app.active.as_json(self.user)
                body["default_source_code_path"] = app.active.source_code_path
            if app.pending is not None:
                body["pending_deployment"] = app.pending.as_json(self.user)
            return body

    def list_apps(self) -> Json:
        with self._lock:
            names = sorted(self.apps)
        return {"apps": [self.app_json(name) for name in names]}

    def create_app(self, body: Json) -> Json:
        name = str(body.get("name") or "")
        if not re.match(APP_NAME_PATTERN, name):
            raise _invalid(f"App name {name!r} must be 2-30 characters: lower-case letters, digits and hyphens.")
        with self._lock:
            if name in self.apps:
                raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"An app with name {name} already exists.")
            port = self._configured_apps.get(name) or free_port()
            self.apps[name] = _App(name=name, port=port, created=time.time(), description=str(body.get("description") or ""))
        return self.app_json(name)

    def delete_app(self, name: str) -> Json:
        with self._lock:
            app = self._app(name)
            if app.pending is not None:
                raise ApiError(409, "RESOURCE_CONFLICT", f"App {name} has a deployment in progress.")
            del self.apps[name]
        if app.process is not None:
            app.process.stop()
        return {}

    def deploy(self, name: str, body: Json) -> Json:
        source = str(body.get("source_code_path") or "")
        mode = str(body.get("mode") or "SNAPSHOT")
        if mode not in ("SNAPSHOT", "AUTO_SYNC"):
            raise _invalid("mode must be SNAPSHOT or AUTO_SYNC.")
        with self._lock:
            app = self._app(name)
            if not source:
                if app.active is None:
                    raise _invalid("source_code_path is required for the first deployment of an app.")
                source = app.active.source_code_path
            directory = self.workspace_dir(source)
            if not directory.is_dir():
                raise _not_found(f"Source code path {source} does not exist in the workspace.")
            if app.compute_state != "ACTIVE":
                raise ApiError(400, "INVALID_STATE", f"App {name} compute is {app.compute_state}; start the app before deploying.")
            if app.pending is not None:
                raise ApiError(409, "RESOURCE_CONFLICT", f"Cannot deploy app {name} as there is an active deployment in progress.")
            deployment = _Deployment(deployment_id=uuid.uuid4().hex[:32], source_code_path=source, mode=mode, created=time.time())
            app.pending = deployment
            app.deployments.append(deployment)
            app.app_state, app.app_message = "DEPLOYING", "App is being deployed."
            app.updated = time.time()
            answer = deployment.as_json(self.user)
        self._background(lambda: self._run_deployment(app, deployment, directory), f"deploy-{name}")
        return answer

    def workspace_dir(self, source: str) -> Path:
        path = PurePosixPath(source)
        if not path.is_absolute() or ".." in path.parts or path.parts[1:2] != ("Workspace",):
            raise _invalid(f"source_code_path must be an absolute /Workspace/... path, got {source!r}.")
        return self.workspace_root.joinpath(*path.parts[1:])

    def _run_deployment(self, app: _App, deployment: _Deployment, directory: Path) -> None:
        try:
            if app.process is not None:
                app.process.stop()  # one port per app: the previous process goes first
            with self._lock:
                deployment.message = "Starting app with command from app.yaml."
            cwd = directory
            if deployment.mode == "SNAPSHOT":
                cwd = self.state_dir / "databricks" / "sources" / app.name / deployment.deployment_id
                shutil.copytree(directory, cwd, ignore=shutil.ignore_patterns("__pycache__", ".git"))
            process = self._app_process(app, deployment.deployment_id, cwd)
            with self._lock:
                app.process = process
            process.switch_to(deployment.deployment_id)
        except (AppNotReadyError, _AppSourceError, OSError, ValueError) as exc:
            if app.process is not None:
                app.process.stop()
            log.info("deployment %s of app %s failed: %s", deployment.deployment_id, app.name, exc)
            with self._lock:
                deployment.state, deployment.message, deployment.updated = "FAILED", f"Deployment failed: {exc}", time.time()
                app.app_state, app.app_message = "CRASHED", f"App crashed unexpectedly. Deployment {deployment.deployment_id} failed."
                app.pending, app.updated = None, time.time()
            return
        with self._lock:
            deployment.state, deployment.message, deployment.updated = "SUCCEEDED", "App started successfully", time.time()
            app.active, app.pending, app.updated = deployment, None, time.time()
            app.app_state, app.app_message = "RUNNING", "App is running"

    def _app_process(self, app: _App, version: str, cwd: Path) -> LocalProcessApp:
        env = {
            "DATABRICKS_APP_PORT": str(app.port),
            "DATABRICKS_APP_NAME": app.name,
            "DATABRICKS_HOST": self.base_url,
            "DATABRICKS_WORKSPACE_ID": "0",
        }
        command = self._app_command(cwd, env)
        image = LocalImage(command=["{python}", "-c", EXEC_IN, str(cwd), *command], readiness_path=self.app_readiness_path)
        return image_process(
            image,
            name=app.name,
            tag=version,
            port=app.port,
            state_dir=self.state_dir / "databricks",
            env=env,
            ready_timeout=self.app_ready_timeout,
        )

    @staticmethod
    def _app_command(cwd: Path, env: dict[str, str]) -> list[str]:
        """The command of app.yaml (adding its env to `env`), with variables expanded."""
        import yaml

        spec_path = next((cwd / name for name in ("app.yaml", "app.yml") if (cwd / name).is_file()), None)
        if spec_path is None:
            if (cwd / "app.py").is_file():
                return ["{python}", "app.py"]
            raise _AppSourceError("the source code has neither app.yaml nor app.py")
        try:
            spec = yaml.safe_load(spec_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise _AppSourceError(f"{spec_path.name} is not valid YAML: {exc}") from exc
        if not isinstance(spec, dict):
            raise _AppSourceError(f"{spec_path.name} must be a mapping")
        for entry in spec.get("env") or []:
            if not isinstance(entry, dict) or "name" not in entry:
                raise _AppSourceError(f"every env entry of {spec_path.name} needs a name")
            if "valueFrom" in entry:
                raise _AppSourceError("env valueFrom (app resources) is not supported by the Databricks stand-in")
            env[str(entry["name"])] = str(entry.get("value", ""))
        command = spec.get("command")
        if command is None:
            if (cwd / "app.py").is_file():
                return ["{python}", "app.py"]
            raise _AppSourceError(f"{spec_path.name} has no command and there is no app.py")
        if not isinstance(command, list) or not command or not all(isinstance(arg, (str, int, float)) for arg in command):
            raise _AppSourceError(f"command in {spec_path.name} must be a non-empty list of strings")

        def expand(arg: str) -> str:
            return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), arg)

        args = [expand(str(arg)) for arg in command]
        if args[0] in ("python", "python3"):
            args[0] = "{python}"
        return args

    def start_app(self, name: str) -> Json:
        with self._lock:
            app = self._app(name)
            if app.compute_state == "ACTIVE":
                return self.app_json(name)
            app.compute_state, app.compute_message = "STARTING", "App compute is starting."
            deployment = app.active
            app.updated = time.time()
        self._background(lambda: self._restart(app, deployment), f"start-{name}")
        return self.app_json(name)

    def _restart(self, app: _App, deployment: _Deployment | None) -> None:
        state, message = "UNAVAILABLE", "App has not been deployed yet. Run your app by deploying source code"
        if deployment is not None and app.process is not None:
            try:
                app.process.switch_to(deployment.deployment_id)
                state, message = "RUNNING", "App is running"
            except (AppNotReadyError, OSError) as exc:
                app.process.stop()
                state, message = "CRASHED", f"App crashed unexpectedly: {exc}"
        with self._lock:
            app.compute_state, app.compute_message = "ACTIVE", "App compute is running."
            app.app_state, app.app_message, app.updated = state, message, time.time()

    def stop_app(self, name: str) -> Json:
        with self._lock:
            app = self._app(name)
            if app.pending is not None:
                raise ApiError(409, "RESOURCE_CONFLICT", f"App {name} has a deployment in progress.")
        if app.process is not None:
            app.process.stop()
        with self._lock:
            app.compute_state, app.compute_message = "STOPPED", "App compute is stopped."
            app.app_state, app.app_message, app.updated = "UNAVAILABLE", "App is not running.", time.time()
        return self.app_json(name)

    def deployment_json(self, name: str, deployment_id: str) -> Json:
        with self._lock:
            app = self._app(name)
            for deployment in app.deployments:
                if deployment.deployment_id == deployment_id:
                    return deployment.as_json(self.user)
        raise _not_found(f"Deployment {deployment_id} of app {name} does not exist.")

    def list_deployments(self, name: str) -> Json:
        with self._lock:
            app = self._app(name)
            return {"app_deployments": [d.as_json(self.user) for d in reversed(app.deployments)]}

    # ---------------------------------------------------------------------------- serving endpoints

    def set_endpoint(self, body: Json) -> Json:
        name = str(body.get("name") or "")
        if not name:
            raise _invalid("name is required.")
        ready = str(body.get("ready") or "READY")
        config_update = str(body.get("config_update") or "NOT_UPDATING")
        if ready not in ("READY", "NOT_READY") or config_update not in ("NOT_UPDATING", "IN_PROGRESS", "UPDATE_FAILED", "UPDATE_CANCELED"):
            raise _invalid("ready must be READY|NOT_READY; config_update NOT_UPDATING|IN_PROGRESS|UPDATE_FAILED|UPDATE_CANCELED.")
        with self._lock:
            now = _ms(time.time())
            endpoint = self.endpoints.setdefault(
                name,
                {
                    "name": name,
                    "id": uuid.uuid4().hex,
                    "creator": self.user,
                    "creation_timestamp": now,
                    "config": {"served_entities": [], "config_version": 1},
                },
            )
            endpoint["state"] = {"ready": ready, "config_update": config_update}
            endpoint["last_updated_timestamp"] = now
            if "served_entities" in body:
                endpoint["config"] = {
                    "served_entities": list(body["served_entities"]),
                    "traffic_config": body.get("traffic_config") or {},
                    "config_version": int(endpoint["config"].get("config_version", 0)) + 1,
                }
            if "ai_gateway" in body:
                endpoint["ai_gateway"] = body["ai_gateway"]
            if "pending_config" in body:
                endpoint["pending_config"] = body["pending_config"]
            elif config_update != "IN_PROGRESS":
                endpoint.pop("pending_config", None)
            return dict(json.loads(json.dumps(endpoint)))

    def endpoint_json(self, name: str) -> Json:
        with self._lock:
            endpoint = self.endpoints.get(name)
            if endpoint is None:
                raise _not_found(f"Endpoint with name '{name}' does not exist.")
            return {**json.loads(json.dumps(endpoint)), "permission_level": "CAN_MANAGE", "route_optimized": False}

    def list_endpoints(self) -> Json:
        with self._lock:
            names = sorted(self.endpoints)
        return {"endpoints": [self.endpoint_json(name) for name in names]}

    def update_endpoint_config(self, name: str, body: Json) -> Json:
        self.endpoint_json(name)
        with self._lock:
            endpoint = self.endpoints[name]
            endpoint["config"] = {
                "served_entities": list(body.get("served_entities") or []),
                "traffic_config": body.get("traffic_config") or {},
                "config_version": int(endpoint["config"].get("config_version", 0)) + 1,
            }
            endpoint["last_updated_timestamp"] = _ms(time.time())
        return self.endpoint_json(name)

    # -------------------------------------------------------------------------------------- jobs

    def define_job(self, body: Json) -> Json:
        outcome = str(body.get("outcome") or "SUCCESS")
        outcomes = [str(o) for o in body.get("outcomes") or []]
        for value in [outcome, *outcomes]:
            if value not in _OUTCOMES:
                raise _invalid(f"outcome must be one of {', '.join(_OUTCOMES)}, got {value!r}.")
        settings = {key: value for key, value in (body.get("settings") or {}).items() if key in JOB_SETTINGS}
        keys = [str(task["task_key"]) for task in settings["tasks"]] if "tasks" in settings else body.get("tasks") or ["main"]
        with self._lock:
            job_id = int(body.get("job_id") or (max(self.jobs, default=100) + 1))
            self.jobs[job_id] = _Job(
                job_id=job_id,
                name=str(body.get("name") or f"job-{job_id}"),
                outcome=outcome,
                outcomes=outcomes,
                seconds=float(body.get("seconds") or 0),
                state_message=str(body.get("state_message") or ""),
                tasks=[str(t) for t in keys],
                parameters=list(body.get("parameters") or []),
                settings=settings,
            )
        return {"job_id": job_id}

    def configure(self, body: Json) -> Json:
        if "time_scale" in body:
            scale = float(body["time_scale"])
            if scale <= 0:
                raise _invalid(f"time_scale must be positive, got {scale}.")
            self.time_scale = scale
        if "slow_statements" in body:
            self.slow_statements = {str(text).lower(): float(seconds) for text, seconds in dict(body["slow_statements"]).items()}
        return {"time_scale": self.time_scale, "slow_statements": self.slow_statements}

    def _job(self, job_id: Any, *, status: int = 400) -> _Job:
        try:
            job = self.jobs.get(int(job_id))
        except (TypeError, ValueError):
            job = None
        if job is None:
            if status == 404:
                raise _not_found(f"Job {job_id} does not exist.")
            raise _invalid(f"Job {job_id} does not exist.")
        return job

    def job_json(self, job_id: Any) -> Json:
        with self._lock:
            job = self._job(job_id, status=404)
            return {
                "job_id": job.job_id,
                "creator_user_name": self.user,
                "run_as_user_name": self.user,
                "created_time": _ms(job.created),
                "settings": {
                    "name": job.name,
                    "tasks": [{"task_key": key} for key in job.tasks],
                    "parameters": job.parameters,
                    "max_concurrent_runs": 1,
                    "format": "MULTI_TASK",
                    **json.loads(json.dumps(job.settings)),
                },
            }

    def list_jobs(self, query: dict[str, str]) -> Json:
        with self._lock:
            ids = [job.job_id for job in self.jobs.values() if not query.get("name") or job.name == query["name"]]
        return {"jobs": [self.job_json(job_id) for job_id in sorted(ids)], "has_more": False}

    def run_now(self, body: Json) -> Json:
        parameters = body.get("job_parameters") or {}
        if not isinstance(parameters, dict):
            raise _invalid("job_parameters must be a map of names to values.")
        token = body.get("idempotency_token")
        if token is not None and not (isinstance(token, str) and 0 < len(token) <= 64):
            raise _invalid("idempotency_token must be a string of at most 64 characters.")
        with self._lock:
            job = self._job(body.get("job_id"))
            if token in self.run_tokens:
                existing = self.runs[self.run_tokens[token]]
                return {"run_id": existing.run_id, "number_in_job": existing.number}
            job.runs += 1
            outcome = job.outcomes.pop(0) if job.outcomes else job.outcome
            self._next_run += 1
            run = _Run(
                run_id=self._next_run,
                job=job,
                number=job.runs,
                started=time.time(),
                outcome=outcome,
                seconds=job.seconds * self.time_scale,
                parameters={str(k): str(v) for k, v in parameters.items()},
            )
            self.runs[run.run_id] = run
            if token is not None:
                self.run_tokens[token] = run.run_id
        return {"run_id": run.run_id, "number_in_job": run.number}

    def _run(self, run_id: Any) -> _Run:
        try:
            run = self.runs.get(int(run_id))
        except (TypeError, ValueError):
            run = None
        if run is None:
            raise _invalid(f"Run {run_id} does not exist.")
        return run

    def _run_state(self, run: _Run) -> tuple[Json, Json, float | None]:
        now = time.time()
        elapsed = now - run.started
        if run.canceled_at is not None:
            life, result, code, kind = _OUTCOMES["CANCELED"]
            return (
                {"life_cycle_state": life, "result_state": result, "state_message": "Run cancelled.", "user_cancelled_or_timedout": True},
                {"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": "Run cancelled."}},
                run.canceled_at,
            )
        if elapsed < run.seconds:
            if elapsed < run.seconds * 0.25:
                return {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}, {"state": "PENDING"}, None
            return {"life_cycle_state": "RUNNING", "state_message": "In run"}, {"state": "RUNNING"}, None
        life, result, code, kind = _OUTCOMES[run.outcome]
        message = run.job.state_message or (
            "" if run.outcome == "SUCCESS" else f"Task {run.job.tasks[0]} failed with outcome {run.outcome}."
        )
        return (
            {"life_cycle_state": life, "result_state": result, "state_message": message, "user_cancelled_or_timedout": False},
            {"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": message}},
            run.started + run.seconds,
        )

    def run_json(self, run_id: Any) -> Json:
        with self._lock:
            run = self._run(run_id)
            state, status, ended = self._run_state(run)
            job = run.job
            body: Json = {
                "job_id": job.job_id,
                "run_id": run.run_id,
                "number_in_job": run.number,
                "original_attempt_run_id": run.run_id,
                "run_name": job.name,
                "creator_user_name": self.user,
                "state": state,
                "status": status,
                "start_time": _ms(run.started),
                "setup_duration": 0,
                "cleanup_duration": 0,
                "execution_duration": _ms((ended or time.time()) - run.started),
                "run_duration": _ms((ended or time.time()) - run.started),
                "end_time": _ms(ended) if ended else 0,
                "run_page_url": f"{self.base_url}/?o=0#job/{job.job_id}/run/{run.run_id}",
                "run_type": "JOB_RUN",
                "trigger": "ONE_TIME",
                "format": "MULTI_TASK",
                "job_parameters": [
                    {"name": p.get("name"), "default": p.get("default"), "value": run.parameters.get(str(p.get("name")), p.get("default"))}
                    for p in job.parameters
                ]
                + [{"name": k, "value": v} for k, v in run.parameters.items() if k not in {str(p.get("name")) for p in job.parameters}],
                "tasks": [
                    {"task_key": key, "run_id": run.run_id * 100 + index, "state": state, "status": status, "start_time": _ms(run.started)}
                    for index, key in enumerate(job.tasks, start=1)
                ],
            }
            return body

    def run_output(self, run_id: Any) -> Json:
        """runs/get-output of one task's run (Databricks answers it for task runs only): its error when it failed."""
        try:
            parent, index = divmod(int(run_id), 100)
        except (TypeError, ValueError):
            parent, index = 0, 0
        with self._lock:
            run = self.runs.get(parent)
            if run is None or not 1 <= index <= len(run.job.tasks):
                raise _invalid(f"Run {run_id} does not exist or is not the run of a task.")
        task = next(t for t in self.run_json(parent)["tasks"] if t["run_id"] == int(run_id))
        answer: Json = {"metadata": task}
        if task["state"].get("result_state") not in (None, "SUCCESS"):
            answer["error"] = task["state"].get("state_message") or f"Task {task['task_key']} failed."
        return answer

    def cancel_run(self, body: Json) -> Json:
        with self._lock:
            run = self._run(body.get("run_id"))
            if self._run_state(run)[2] is None:
                run.canceled_at = time.time()
        return {}

    def run_records(self) -> list[Json]:
        with self._lock:
            return [
                {"run_id": r.run_id, "job_id": r.job.job_id, "job_parameters": dict(r.parameters), "outcome": r.outcome}
                for r in self.runs.values()
            ]

    # ------------------------------------------------------------------------------------ models

    def create_model(self, body: Json) -> Json:
        name = str(body.get("name") or "")
        if not name:
            raise _invalid("name is required.")
        raw_versions = body.get("versions", 1)
        versions = list(range(1, int(raw_versions) + 1)) if isinstance(raw_versions, int) else [int(v) for v in raw_versions]
        now = _ms(time.time())
        with self._lock:
            self.models[name] = {
                "name": name,
                "created": now,
                "updated": now,
                "versions": {str(v): {"created": now} for v in versions},
                "aliases": {},
            }
        for alias, version in (body.get("aliases") or {}).items():
            self.set_alias({"name": name, "alias": alias, "version": version})
        return self.registered_model_json(name)

    def _model(self, name: Any) -> Json:
        model = self.models.get(str(name or ""))
        if model is None:
            raise _not_found(f"Registered Model with name={name} not found")
        return model

    def registered_model_json(self, name: Any) -> Json:
        with self._lock:
            model = self._model(name)
            return {
                "registered_model": {
                    "name": model["name"],
                    "full_name": model["name"],
                    "creation_timestamp": model["created"],
                    "last_updated_timestamp": model["updated"],
                    "aliases": [{"alias": a, "version": v} for a, v in sorted(model["aliases"].items())],
                    "latest_versions": [self._version_json(model, max(model["versions"], key=int))] if model["versions"] else [],
                }
            }

    def _version_json(self, model: Json, version: str) -> Json:
        return {
            "name": model["name"],
            "version": version,
            "creation_timestamp": model["versions"][version]["created"],
            "last_updated_timestamp": model["updated"],
            "status": "READY",
            "current_stage": "None",
            "source": f"models:/{model['name']}/{version}",
            "aliases": sorted(a for a, v in model["aliases"].items() if v == version),
        }

    def model_version_json(self, query: dict[str, str]) -> Json:
        with self._lock:
            model = self._model(query.get("name"))
            version = str(query.get("version") or "")
            if version not in model["versions"]:
                raise _not_found(f"Model Version (name={model['name']}, version={version}) not found")
            return {"model_version": self._version_json(model, version)}

    @staticmethod
    def _check_alias(alias: str) -> None:
        if not alias or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias) or not re.fullmatch(r"[A-Za-z0-9_-]+", alias):
            raise _invalid(f"Invalid alias name {alias!r}: not 'latest', not v<number>, only letters, digits, '_' and '-'.")

    def get_alias(self, query: dict[str, str]) -> Json:
        with self._lock:
            model = self._model(query.get("name"))
            alias = str(query.get("alias") or "")
            version = model["aliases"].get(alias)
            if version is None:
                raise _not_found(f"Registered model alias {alias} not found.")
            return {"model_version": self._version_json(model, version)}

    def set_alias(self, body: Json) -> Json:
        alias = str(body.get("alias") or "")
        self._check_alias(alias)
        with self._lock:
            model = self._model(body.get("name"))
            version = str(body.get("version") or "")
            if version not in model["versions"]:
                raise _not_found(f"Model Version (name={model['name']}, version={version}) not found")
            model["aliases"][alias] = version
            model["updated"] = _ms(time.time())
        return {}

    def delete_alias(self, params: dict[str, str]) -> Json:
        with self._lock:
            model = self._model(params.get("name"))
            if model["aliases"].pop(str(params.get("alias") or ""), None) is not None:
                model["updated"] = _ms(time.time())
        return {}


Route = tuple[str, "re.Pattern[str]", "Callable[[Workspace, re.Match[str], dict[str, str], Json], Json]"]


def _routes() -> list[Route]:
    jobs = r"/api/2\.[12]/jobs"
    table: list[tuple[str, str, Callable[[Workspace, re.Match[str], dict[str, str], Json], Json]]] = [
        ("POST", r"/api/2\.0/sql/statements/?", lambda w, m, q, b: w.execute_statement(b)),
        ("GET", r"/api/2\.0/sql/statements/([^/]+)", lambda w, m, q, b: w.get_statement(m[1])),
        ("POST", r"/api/2\.0/sql/statements/([^/]+)/cancel", lambda w, m, q, b: w.cancel_statement(m[1])),
        ("GET", r"/api/2\.0/sql/warehouses", lambda w, m, q, b: {"warehouses": [w.warehouse_json(i) for i in sorted(w.warehouses)]}),
        ("GET", r"/api/2\.0/sql/warehouses/([^/]+)", lambda w, m, q, b: w.warehouse_json(m[1])),
        ("POST", r"/api/2\.0/sql/warehouses/([^/]+)/start", lambda w, m, q, b: w.set_warehouse_state(m[1], "RUNNING")),
        ("POST", r"/api/2\.0/sql/warehouses/([^/]+)/stop", lambda w, m, q, b: w.set_warehouse_state(m[1], "STOPPED")),
        ("GET", r"/api/2\.0/apps", lambda w, m, q, b: w.list_apps()),
        ("POST", r"/api/2\.0/apps", lambda w, m, q, b: w.create_app(b)),
        ("GET", r"/api/2\.0/apps/([^/]+)", lambda w, m, q, b: w.app_json(m[1])),
        ("DELETE", r"/api/2\.0/apps/([^/]+)", lambda w, m, q, b: w.delete_app(m[1])),
        ("POST", r"/api/2\.0/apps/([^/]+)/start", lambda w, m, q, b: w.start_app(m[1])),
        ("POST", r"/api/2\.0/apps/([^/]+)/stop", lambda w, m, q, b: w.stop_app(m[1])),
        ("POST", r"/api/2\.0/apps/([^/]+)/deployments", lambda w, m, q, b: w.deploy(m[1], b)),
        ("GET", r"/api/2\.0/apps/([^/]+)/deployments", lambda w, m, q, b: w.list_deployments(m[1])),
        ("GET", r"/api/2\.0/apps/([^/]+)/deployments/([^/]+)", lambda w, m, q, b: w.deployment_json(m[1], m[2])),
        ("GET", r"/api/2\.0/serving-endpoints", lambda w, m, q, b: w.list_endpoints()),
        ("GET", r"/api/2\.0/serving-endpoints/([^/]+)", lambda w, m, q, b: w.endpoint_json(m[1])),
        ("PUT", r"/api/2\.0/serving-endpoints/([^/]+)/config", lambda w, m, q, b: w.update_endpoint_config(m[1], b)),
        ("GET", jobs + r"/get", lambda w, m, q, b: w.job_json(q.get("job_id"))),
        ("GET", jobs + r"/list", lambda w, m, q, b: w.list_jobs(q)),
        ("POST", jobs + r"/run-now", lambda w, m, q, b: w.run_now(b)),
        ("GET", jobs + r"/runs/get", lambda w, m, q, b: w.run_json(q.get("run_id"))),
        ("GET", jobs + r"/runs/get-output", lambda w, m, q, b: w.run_output(q.get("run_id"))),
        ("POST", jobs + r"/runs/cancel", lambda w, m, q, b: w.cancel_run(b)),
        ("GET", r"/api/2\.0/mlflow/registered-models/get", lambda w, m, q, b: w.registered_model_json(q.get("name"))),
        ("GET", r"/api/2\.0/mlflow/registered-models/alias", lambda w, m, q, b: w.get_alias(q)),
        ("POST", r"/api/2\.0/mlflow/registered-models/alias", lambda w, m, q, b: w.set_alias(b)),
        ("DELETE", r"/api/2\.0/mlflow/registered-models/alias", lambda w, m, q, b: w.delete_alias({**q, **b})),
        ("GET", r"/api/2\.0/mlflow/model-versions/get", lambda w, m, q, b: w.model_version_json(q)),
        ("GET", r"/_standin/statements", lambda w, m, q, b: {"statements": w.statement_records()}),
        ("POST", r"/_standin/reset", lambda w, m, q, b: w.reset()),
        ("GET", r"/_standin/faults", lambda w, m, q, b: {"faults": [f.as_json() for f in w.faults]}),
        ("POST", r"/_standin/faults", lambda w, m, q, b: w.add_fault(b)),
        ("DELETE", r"/_standin/faults", lambda w, m, q, b: w.clear_faults()),
        ("POST", r"/_standin/jobs", lambda w, m, q, b: w.define_job(b)),
        ("GET", r"/_standin/runs", lambda w, m, q, b: {"runs": w.run_records()}),
        ("POST", r"/_standin/models", lambda w, m, q, b: w.create_model(b)),
        ("POST", r"/_standin/serving-endpoints", lambda w, m, q, b: w.set_endpoint(b)),
        ("POST", r"/_standin/warehouses", lambda w, m, q, b: w.add_warehouse(b)),
        ("POST", r"/_standin/settings", lambda w, m, q, b: w.set_settings(b)),
        ("GET", r"/api/2\.0/secrets/scopes/list", lambda w, m, q, b: w.list_scopes()),
        ("GET", r"/api/2\.0/secrets/list", lambda w, m, q, b: w.list_secrets(q.get("scope"))),
        ("GET", r"/api/2\.0/ip-access-lists", lambda w, m, q, b: w.list_ip_access_lists()),
        ("GET", r"/api/2\.0/workspace-conf", lambda w, m, q, b: w.get_workspace_conf(q.get("keys"))),
        ("GET", r"/api/2\.0/policies/clusters/list", lambda w, m, q, b: w.list_policies()),
        ("GET", r"/api/2\.0/policies/clusters/get", lambda w, m, q, b: w.get_policy(q.get("policy_id"))),
        ("GET", r"/api/2\.0/instance-pools/list", lambda w, m, q, b: w.list_instance_pools()),
        ("GET", r"/api/2\.0/notification-destinations", lambda w, m, q, b: w.list_notification_destinations()),
        ("GET", r"/api/2\.0/mlflow/experiments/get-by-name", lambda w, m, q, b: w.experiment_by_name(q.get("experiment_name"))),
        ("GET", r"/api/2\.0/online-tables/([^/]+)", lambda w, m, q, b: w.online_table_json(m[1])),
        ("GET", r"/api/2\.1/unity-catalog/tables/([^/]+)/monitor", lambda w, m, q, b: w.quality_monitor_json(m[1])),
        ("GET", r"/api/2\.0/preview/scim/v2/ServicePrincipals", lambda w, m, q, b: w.list_service_principals(q.get("filter"))),
        (
            "GET",
            r"/api/2\.1/unity-catalog/effective-permissions/([^/]+)/([^/]+)",
            lambda w, m, q, b: w.effective_permissions(m[1], m[2], q.get("principal")),
        ),
        ("GET", r"/api/2\.0/sql/config/warehouses", lambda w, m, q, b: w.warehouse_config_json()),
        ("GET", r"/api/2\.0/lakeview/dashboards", lambda w, m, q, b: w.list_dashboards(q.get("show_trashed"))),
        ("GET", r"/api/2\.0/workspace/export", lambda w, m, q, b: w.export_workspace_file(q.get("path"), q.get("format"))),
    ]
    return [(method, re.compile(pattern + "$"), handler) for method, pattern, handler in table]


ROUTES = _routes()


class _Handler(BaseHTTPRequestHandler):
    workspace: ClassVar[Workspace]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def _answer(self, status: int, body: Json) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError as exc:
                raise ApiError(400, "MALFORMED_REQUEST", f"Invalid JSON given in the body of the request: {exc}") from exc
            if not isinstance(body, dict):
                raise ApiError(400, "MALFORMED_REQUEST", "The body of the request must be a JSON object.")
            if method == "GET":  # Databricks reads a GET's parameters from a JSON body too: the provider's async hook sends them so
                query = {**{key: str(value) for key, value in body.items()}, **query}
            if path.startswith("/api/"):
                self._authenticate()
                fault = self.workspace.http_fault(method, path)
                if fault is not None:
                    raise ApiError(fault.status, fault.error_code, fault.message)
            self._answer(200, self._route(method, path, query, body))
        except ApiError as exc:
            self._answer(exc.status, {"error_code": exc.error_code, "message": exc.message})
        except Exception as exc:  # an answer rather than a dropped connection, which the hook would retry
            log.exception("the Databricks stand-in failed on %s %s", method, self.path)
            self._answer(500, {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"})

    def _authenticate(self) -> None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        token = self.workspace.token
        if token is not None and header[7:].strip() != token:
            raise ApiError(403, "PERMISSION_DENIED", "Invalid access token.")

    def _route(self, method: str, path: str, query: dict[str, str], body: Json) -> Json:
        allowed = False
        for route_method, pattern, handler in ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            if route_method == method:
                return handler(self.workspace, match, query, body)
            allowed = True
        if allowed:
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path}.")
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {path}' (not served by the Databricks stand-in).")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class DatabricksServer:
    """The stand-in on a thread of this process; a context manager that stops every process it started.

    with DatabricksServer(workspace_root=tmp / "ws", state_dir=tmp / "state", apps={"dash": 8771}) as dbx:
        os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = dbx.airflow_connection()
        dbx.add_fault(statement_contains="ALTER TABLE", message="boom")
    """

    def __init__(
        self,
        *,
        workspace_root: Path,
        state_dir: Path,
        apps: dict[str, int] | None = None,
        warehouses: tuple[str, ...] = ("standin-warehouse",),
        port: int = 0,
        host: str = "127.0.0.1",
        token: str | None = None,
        user: str = "standin@example.com",
        app_readiness_path: str = "/",
        app_ready_timeout: float = 30.0,
    ) -> None:
        self.workspace = Workspace(
            workspace_root=workspace_root,
            state_dir=state_dir,
            apps=apps or {},
            warehouses=warehouses,
            token=token,
            user=user,
            app_readiness_path=app_readiness_path,
            app_ready_timeout=app_ready_timeout,
        )
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DatabricksServer:
        self.workspace.state_dir.mkdir(parents=True, exist_ok=True)
        handler = type("Handler", (_Handler,), {"workspace": self.workspace})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self.workspace.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="databricks-standin-http", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def airflow_connection(self, token: str | None = None) -> str:
        """The Airflow connection, JSON for `AIRFLOW_CONN_<ID>`: the hook calls `{schema}://{host}:{port}/api/...`."""
        return json.dumps(
            {
                "conn_type": "databricks",
                "host": self._host,
                "port": self.port,
                "schema": "http",
                "password": token or self.workspace.token or "standin-token",
            }
        )

    def app_url(self, name: str) -> str:
        return str(self.workspace.app_json(name)["url"])

    def statements(self) -> list[Json]:
        """Every SQL statement received, in order (statement_id, statement, parameters, warehouse_id, catalog, schema, state)."""
        return self.workspace.statement_records()

    def runs(self) -> list[Json]:
        return self.workspace.run_records()

    def reset(self) -> None:
        self.workspace.reset()

    def add_fault(
        self,
        *,
        message: str,
        statement_contains: str | None = None,
        path_contains: str | None = None,
        method: str | None = None,
        status: int = 500,
        error_code: str | None = None,
        times: int | None = None,
    ) -> None:
        self.workspace.add_fault(
            {
                "message": message,
                "statement_contains": statement_contains,
                "path_contains": path_contains,
                "method": method,
                "status": status,
                "error_code": error_code,
                "times": times,
            }
        )

    def clear_faults(self) -> None:
        self.workspace.clear_faults()

    def define_job(
        self,
        *,
        job_id: int | None = None,
        name: str | None = None,
        outcome: str = "SUCCESS",
        seconds: float = 0,
        outcomes: list[str] | None = None,
        state_message: str = "",
        tasks: list[str] | None = None,
        settings: Json | None = None,
    ) -> int:
        body = {
            "settings": settings or {},
            "job_id": job_id,
            "name": name,
            "outcome": outcome,
            "seconds": seconds,
            "outcomes": outcomes,
            "state_message": state_message,
            "tasks": tasks,
        }
        return int(self.workspace.define_job(body)["job_id"])

    def set_time_scale(self, scale: float) -> None:
        """Real seconds per second of workspace time from now on: a job of `seconds` 3600 runs 36 s at 0.01."""
        self.workspace.configure({"time_scale": scale})

    def set_slow_statements(self, seconds_by_text: dict[str, float]) -> None:
        """Statements containing a key take that many seconds of workspace time (see `/_standin/config`)."""
        self.workspace.configure({"slow_statements": seconds_by_text})

    def set_serving_endpoint(
        self,
        name: str,
        *,
        ready: str = "READY",
        config_update: str = "NOT_UPDATING",
        served_entities: list[Json] | None = None,
        ai_gateway: Json | None = None,
    ) -> Json:
        body: Json = {"name": name, "ready": ready, "config_update": config_update}
        if served_entities is not None:
            body["served_entities"] = served_entities
        if ai_gateway is not None:
            body["ai_gateway"] = ai_gateway
        return self.workspace.set_endpoint(body)

    def set_settings(self, **parts: Any) -> Json:
        """Secret scopes, IP access lists, workspace conf, cluster policies, instance pools, service principals,
        notification destinations, experiments, online tables, quality monitors: as `POST /_standin/settings`."""
        return self.workspace.set_settings(parts)

    def add_warehouse(self, warehouse_id: str, **settings: Any) -> Json:
        return self.workspace.add_warehouse({"id": warehouse_id, **settings})

    def create_model(self, name: str, *, versions: int | list[int] = 1, aliases: dict[str, int] | None = None) -> Json:
        return self.workspace.create_model({"name": name, "versions": versions, "aliases": aliases or {}})

    def wait_for_deployment(self, app: str, deployment_id: str, timeout: float = 60) -> Json:
        """The deployment once it left IN_PROGRESS."""
        deadline = time.monotonic() + timeout
        while True:
            deployment = self.workspace.deployment_json(app, deployment_id)
            if deployment["status"]["state"] != "IN_PROGRESS" or time.monotonic() > deadline:
                return deployment
            time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.workspace.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DatabricksServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _app_port(text: str) -> tuple[str, int]:
    name, _, port = text.partition("=")
    if not name or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PORT, got {text!r}")
    return name, int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workspace-root", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--app", type=_app_port, action="append", default=[], help="an app and its port: NAME=PORT (repeatable)")
    parser.add_argument("--warehouse", action="append", default=[], help="a SQL warehouse id (repeatable; default standin-warehouse)")
    parser.add_argument("--token", help="the one bearer token accepted (default: any)")
    parser.add_argument("--app-readiness-path", default="/")
    parser.add_argument("--app-ready-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    server = DatabricksServer(
        workspace_root=args.workspace_root,
        state_dir=args.state_dir,
        apps=dict(args.app),
        warehouses=tuple(args.warehouse) or ("standin-warehouse",),
        port=args.port,
        host=args.host,
        token=args.token,
        app_readiness_path=args.app_readiness_path,
        app_ready_timeout=args.app_ready_timeout,
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with server:
        print(f"databricks stand-in at {server.url}", flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
