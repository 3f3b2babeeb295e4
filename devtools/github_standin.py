"""A stand-in for the GitHub REST API (api.github.com) as a repository's deployment settings answer there: seed 001's
GitHub Actions read through it. It serves what a checklist reads, each in the documented shape (API version
2022-11-28): an environment of the repository (GET /repos/{owner}/{repo}/environments/{name}, with its protection
rules), its workflows (.../actions/workflows, with their state) and the check runs of a branch's head commit
(.../commits/{ref}/check-runs, by `check_name` and `status`: a GitHub Actions job is one). Every request
needs `Authorization: Bearer <token>`, as a private repository does; an unknown repository or environment is 404 with
GitHub's `{"message": "Not Found"}`. The tests change `environments`, `workflows` and
`head_check_runs` to break an item.
"""

from __future__ import annotations

import zlib
from http import HTTPStatus
from typing import Any

from devtools.json_api_standin import JsonApiStandin

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


def check_run(name: str, conclusion: str | None, app: str = "github-actions") -> dict[str, Any]:
    """A check run as GET /repos/{owner}/{repo}/commits/{ref}/check-runs lists it: a GitHub Actions job is one, named as
    the job; `conclusion` None while it still runs."""
    status = "completed" if conclusion else "in_progress"
    run = {"id": zlib.crc32(name.encode()), "name": name, "head_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "status": status}
    return run | {"conclusion": conclusion, "started_at": CREATED, "completed_at": CREATED if conclusion else None, "app": {"slug": app}}


class GitHubStandin(JsonApiStandin):
    """api.github.com for one repository on 127.0.0.1 (a free port): `with GitHubStandin(...) as github:` then `github.port`."""

    def __init__(self, *, repository: str, token: str) -> None:
        self.repository = repository  # owner/name
        self.token = token
        self.environments: dict[str, dict[str, Any]] = {}
        self.workflows: list[dict[str, Any]] = []
        self.head_check_runs: dict[str, list[dict[str, Any]]] = {}  # branch -> the check runs of its head commit
        super().__init__("github-standin")

    def answer(self, path: str, authorization: str | None, query: dict[str, list[str]]) -> tuple[int, Any]:
        if authorization != f"Bearer {self.token}":
            return HTTPStatus.UNAUTHORIZED, {"message": "Bad credentials", "status": "401"}
        prefix = f"/repos/{self.repository}/"
        parts = path.removeprefix(prefix).split("/") if path.startswith(prefix) else []
        if len(parts) == 2 and parts[0] == "environments" and parts[1] in self.environments:
            return HTTPStatus.OK, self.environments[parts[1]]
        if parts == ["actions", "workflows"]:
            return HTTPStatus.OK, {"total_count": len(self.workflows), "workflows": self.workflows}
        if len(parts) == 3 and parts[0] == "commits" and parts[2] == "check-runs" and parts[1] in self.head_check_runs:
            runs = [r for r in self.head_check_runs[parts[1]] if r["name"] in query.get("check_name", [r["name"]])]
            runs = [r for r in runs if r["status"] in query.get("status", [r["status"]])]
            return HTTPStatus.OK, {"total_count": len(runs), "check_runs": runs}
        return HTTPStatus.NOT_FOUND, {"message": "Not Found", "status": "404"}
