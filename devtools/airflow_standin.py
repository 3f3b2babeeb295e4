"""A stand-in for a system's own Airflow 2 webserver, as its stable REST API (`/api/v1`) answers: seed 004's MLOps
system runs one beside its prediction API. It serves what a checklist reads (health, the DAGs, a DAG, import errors, a user),
each in the documented shape, and asks for HTTP basic auth as Airflow 2's docker-compose file configures it
(`/api/v1/health` is open, as in Airflow). The tests change `dags`, `import_errors` and `users` to break an item.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from types import TracebackType


def dag(dag_id: str, schedule: str, *, is_paused: bool = False) -> dict[str, Any]:
    """A DAG as GET /api/v1/dags/{dag_id} returns it; a cron preset or expression is a CronExpression."""
    return {
        "dag_id": dag_id,
        "is_paused": is_paused,
        "is_active": True,
        "fileloc": f"/opt/airflow/dags/{dag_id}.py",
        "schedule_interval": {"__type": "CronExpression", "value": schedule},
        "tags": [],
    }


def user(username: str, roles: list[str]) -> dict[str, Any]:
    """A user as GET /api/v1/users/{username} returns it."""
    return {"username": username, "active": True, "email": f"{username}@example.com", "roles": [{"name": r} for r in roles]}


class AirflowStandin:
    """The webserver on 127.0.0.1 (a free port): `with AirflowStandin(...) as airflow:` then `airflow.port`."""

    def __init__(
        self, *, dags: list[dict[str, Any]], users: dict[str, tuple[str, dict[str, Any]]], import_errors: list[dict[str, Any]]
    ) -> None:
        self.dags = {d["dag_id"]: d for d in dags}
        self.users = users  # username -> (password, the user as the API returns it)
        self.import_errors = import_errors
        self.metadatabase = "healthy"  # what /api/v1/health reports: "unhealthy" when the job table cannot be read
        self.scheduler = "healthy"  # what /api/v1/health reports: "unhealthy" when no scheduler heartbeat is recent
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="airflow-standin", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, path: str, authorization: str | None) -> tuple[int, Any]:
        if path == "/api/v1/health":
            beat = datetime.now(UTC).isoformat()
            scheduler = {"status": self.scheduler, "latest_scheduler_heartbeat": beat}
            return HTTPStatus.OK, {"metadatabase": {"status": self.metadatabase}, "scheduler": scheduler}
        if not self._authenticated(authorization):
            return HTTPStatus.UNAUTHORIZED, {"title": "Unauthorized", "status": 401, "type": "about:blank", "detail": None}
        parts = path.removeprefix("/api/v1/").split("/")
        # the collections, each its first page: the stand-in holds fewer entries than a page
        collections = {"importErrors": ("import_errors", self.import_errors), "dags": ("dags", list(self.dags.values()))}
        if len(parts) == 1 and parts[0] in collections:
            key, entries = collections[parts[0]]
            return HTTPStatus.OK, {key: entries, "total_entries": len(entries)}
        if len(parts) == 2 and parts[0] == "dags" and parts[1] in self.dags:
            return HTTPStatus.OK, self.dags[parts[1]]
        if len(parts) == 2 and parts[0] == "users" and parts[1] in self.users:
            return HTTPStatus.OK, self.users[parts[1]][1]
        return HTTPStatus.NOT_FOUND, {"title": "Not Found", "status": 404, "type": "about:blank", "detail": f"{path} not found"}

    def _authenticated(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Basic "):
            return False
        username, _, password = base64.b64decode(authorization.removeprefix("Basic ")).decode().partition(":")
        return username in self.users and self.users[username][0] == password

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = standin.answer(unquote(urlsplit(self.path).path), self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                """Quiet: the tests read the answers, not an access log."""

        return Handler

    def __enter__(self) -> AirflowStandin:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
