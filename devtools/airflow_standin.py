"""A stand-in for a system's own Airflow 2 webserver, as its stable REST API (`/api/v1`) answers: seed 004's MLOps
system runs one beside its prediction API, as does seed 002's. It serves what a checklist reads (health, the DAGs,
their runs and task instances, import errors, a user), each in the documented shape, and asks for HTTP basic auth as
Airflow 2's docker-compose file configures it (`/api/v1/health` is open, as in Airflow). The tests change `dags`,
`dag_runs`, `task_instances`, `import_errors`, `users` and `scheduler` to break an item.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from devtools.json_api_standin import JsonApiStandin


def dag(dag_id: str, schedule: str | None, *, is_paused: bool = False) -> dict[str, Any]:
    """A DAG as GET /api/v1/dags/{dag_id} returns it; a cron preset or expression is a CronExpression, no schedule null."""
    return {
        "dag_id": dag_id,
        "is_paused": is_paused,
        "is_active": True,
        "fileloc": f"/opt/airflow/dags/{dag_id}.py",
        "schedule_interval": None if schedule is None else {"__type": "CronExpression", "value": schedule},
        "tags": [],
    }


def dag_run(dag_id: str, run_id: str, *, run_type: str, state: str, day: int) -> dict[str, Any]:
    """A DAG run as GET /api/v1/dags/{dag_id}/dagRuns lists it; `day` of December 2026 is its logical date."""
    logical = f"2026-12-{day:02d}T00:00:00+00:00"
    return {"dag_id": dag_id, "dag_run_id": run_id, "run_type": run_type, "state": state, "logical_date": logical} | {
        "execution_date": logical
    }


def task_instance(run: dict[str, Any], task_id: str, state: str) -> dict[str, Any]:
    """A task instance of `run` as GET /api/v1/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances lists it."""
    run_fields = {"dag_id": run["dag_id"], "dag_run_id": run["dag_run_id"], "start_date": run["logical_date"]}
    return {**run_fields, "task_id": task_id, "state": state, "try_number": 1}


def user(username: str, roles: list[str]) -> dict[str, Any]:
    """A user as GET /api/v1/users/{username} returns it."""
    return {"username": username, "active": True, "email": f"{username}@example.com", "roles": [{"name": r} for r in roles]}


def page(key: str, entries: list[dict[str, Any]], query: dict[str, list[str]], default_order: str) -> dict[str, Any]:
    """A collection as Airflow 2 pages it: filtered by `state` (repeatable), sorted by `order_by` (a leading `-`
    descends), `offset` and `limit` (100 by default); `total_entries` counts every entry the filter kept."""
    kept = [e for e in entries if "state" not in query or e["state"] in query["state"]]
    order = query.get("order_by", [default_order])[0]
    kept.sort(key=lambda e: str(e.get(order.lstrip("-"))), reverse=order.startswith("-"))
    offset, limit = int(query.get("offset", ["0"])[0]), int(query.get("limit", ["100"])[0])
    return {key: kept[offset : offset + limit], "total_entries": len(kept)}


class AirflowStandin(JsonApiStandin):
    """The webserver on 127.0.0.1 (a free port): `with AirflowStandin(...) as airflow:` then `airflow.port`."""

    def __init__(
        self, *, dags: list[dict[str, Any]], users: dict[str, tuple[str, dict[str, Any]]], import_errors: list[dict[str, Any]]
    ) -> None:
        self.dags = {d["dag_id"]: d for d in dags}
        self.users = users  # username -> (password, the user as the API returns it)
        self.import_errors = import_errors
        self.dag_runs: list[dict[str, Any]] = []  # every DAG's runs, each with its dag_id
        self.task_instances: list[dict[str, Any]] = []  # every run's task instances, each with its dag_id and dag_run_id
        self.metadatabase = "healthy"  # what /api/v1/health reports: "unhealthy" when the job table cannot be read
        self.scheduler = "healthy"  # what /api/v1/health reports: "unhealthy" when no scheduler heartbeat is recent
        super().__init__("airflow-standin")

    def answer(self, path: str, authorization: str | None, query: dict[str, list[str]] | None = None) -> tuple[int, Any]:
        if path == "/api/v1/health":
            beat = datetime.now(UTC).isoformat()
            scheduler = {"status": self.scheduler, "latest_scheduler_heartbeat": beat}
            return HTTPStatus.OK, {"metadatabase": {"status": self.metadatabase}, "scheduler": scheduler}
        if not self._authenticated(authorization):
            return HTTPStatus.UNAUTHORIZED, {"title": "Unauthorized", "status": 401, "type": "about:blank", "detail": None}
        parts = path.removeprefix("/api/v1/").split("/")
        if len(parts) == 2 and parts[0] == "dags" and parts[1] in self.dags:
            return HTTPStatus.OK, self.dags[parts[1]]
        if len(parts) == 2 and parts[0] == "users" and parts[1] in self.users:
            return HTTPStatus.OK, self.users[parts[1]][1]
        listed = self._collection(parts, query or {})
        if listed is not None:
            return HTTPStatus.OK, listed
        return HTTPStatus.NOT_FOUND, {"title": "Not Found", "status": 404, "type": "about:blank", "detail": f"{path} not found"}

    def _collection(self, parts: list[str], query: dict[str, list[str]]) -> dict[str, Any] | None:
        """The import errors, the DAGs (only_active defaults to true: every DAG here is active), a DAG's runs, or the task
        instances of one run or of every run (`~`) of a DAG; None for any other path."""
        if parts == ["importErrors"]:
            return {"import_errors": self.import_errors, "total_entries": len(self.import_errors)}
        if parts == ["dags"]:
            return {"dags": list(self.dags.values()), "total_entries": len(self.dags)}
        if len(parts) == 3 and parts[0] == "dags" and parts[1] in self.dags and parts[2] == "dagRuns":
            return page("dag_runs", [r for r in self.dag_runs if r["dag_id"] == parts[1]], query, "execution_date")
        if len(parts) == 5 and parts[0] == "dags" and parts[1] in self.dags and parts[2:5:2] == ["dagRuns", "taskInstances"]:
            tis = [t for t in self.task_instances if t["dag_id"] == parts[1] and parts[3] in ("~", t["dag_run_id"])]
            return page("task_instances", tis, query, "start_date")
        return None

    def _authenticated(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Basic "):
            return False
        username, _, password = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
        return username in self.users and self.users[username][0] == password
