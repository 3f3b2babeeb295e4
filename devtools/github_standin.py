"""A stand-in for the GitHub REST API (api.github.com) as a repository's deployment settings answer there: seed 001's
GitHub Actions read through it. It serves what a checklist reads, each in the documented shape (API version
2022-11-28): the repository's environments (GET /repos/{owner}/{repo}/environments and .../environments/{name}, with
their protection rules) and its workflows (.../actions/workflows, with their state). Every request
needs `Authorization: Bearer <token>`, as a private repository does; an unknown repository or environment is 404 with
GitHub's `{"message": "Not Found"}`. The tests change `environments` and `workflows` to break an item.
"""

from __future__ import annotations

import json
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from types import TracebackType

CREATED = "2026-11-01T09:00:00Z"


def environment(name: str, rules: list[dict[str, Any]], *, protected_branches: bool = False) -> dict[str, Any]:
    """An environment as GET /repos/{owner}/{repo}/environments/{name} returns it, its protection `rules` numbered."""
    numbered = [{"id": index, "node_id": f"GA_{name}_{index}", **rule} for index, rule in enumerate(rules, 1)]
    policy = {"protected_branches": True, "custom_branch_policies": False} if protected_branches else None
    return {
        "id": zlib.crc32(name.encode()),
        "node_id": f"EN_{name}",
        "name": name,
        "created_at": CREATED,
        "updated_at": CREATED,
        "can_admins_bypass": False,
        "protection_rules": numbered,
        "deployment_branch_policy": policy,
    }


def required_reviewers(*logins: str, prevent_self_review: bool = True) -> dict[str, Any]:
    """A required_reviewers protection rule naming these users."""
    reviewers = [{"type": "User", "reviewer": {"login": login, "id": index, "type": "User"}} for index, login in enumerate(logins, 1)]
    return {"type": "required_reviewers", "prevent_self_review": prevent_self_review, "reviewers": reviewers}


# the rule GitHub shows for an environment whose deployment_branch_policy limits the branches that may deploy to it
BRANCH_POLICY: dict[str, Any] = {"type": "branch_policy"}


def workflow(workflow_id: int, name: str, path: str, state: str = "active") -> dict[str, Any]:
    """A workflow as GET /repos/{owner}/{repo}/actions/workflows lists it."""
    return {"id": workflow_id, "node_id": f"W_{workflow_id}", "name": name, "path": path, "state": state} | {
        "created_at": CREATED,
        "updated_at": CREATED,
    }


class GitHubStandin:
    """api.github.com for one repository on 127.0.0.1 (a free port): `with GitHubStandin(...) as github:` then `github.port`."""

    def __init__(self, *, repository: str, token: str) -> None:
        self.repository = repository  # owner/name
        self.token = token
        self.environments: dict[str, dict[str, Any]] = {}
        self.workflows: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="github-standin", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, path: str, authorization: str | None) -> tuple[int, Any]:
        if authorization != f"Bearer {self.token}":
            return HTTPStatus.UNAUTHORIZED, {"message": "Bad credentials", "status": "401"}
        prefix = f"/repos/{self.repository}/"
        parts = path.removeprefix(prefix).split("/") if path.startswith(prefix) else []
        if parts == ["environments"]:
            listed = list(self.environments.values())
            return HTTPStatus.OK, {"total_count": len(listed), "environments": listed}
        if len(parts) == 2 and parts[0] == "environments" and parts[1] in self.environments:
            return HTTPStatus.OK, self.environments[parts[1]]
        if parts == ["actions", "workflows"]:
            return HTTPStatus.OK, {"total_count": len(self.workflows), "workflows": self.workflows}
        return HTTPStatus.NOT_FOUND, {"message": "Not Found", "status": "404"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                status, body = standin.answer(unquote(url.path), self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                """Quiet: the tests read the answers, not an access log."""

        return Handler

    def __enter__(self) -> GitHubStandin:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
