"""`kind: github_api`: a documented GitHub REST GET of one repository (`/repos/{owner}/{repo}/...`), its JSON answer held
to expectations.

    check:
      kind: github_api
      conn_id: github
      path: /repos/acme/ml-platform/environments/production
      expect: [{path: [protection_rules], contains: {type: required_reviewers}}]

Seed 001 ships through GitHub Actions: its environments' protection rules, its workflows and their runs are read from
the repository's REST API (API version 2022-11-28), never changed. Only GET, only under /repos/. The connection is an
http one: host (api.github.com, or a GitHub Enterprise Server's API host), schema and port; its password is a token
with read access to the repository, sent as `Authorization: Bearer`, never in the URL nor the evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator

from airflow_rollout.config import ConnId
from airflow_rollout.json_expectations import JsonGetCheck

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.evidence import Evidence

# GitHub's owner and repository names: letters, digits, '-', '_' and '.'; a '.' or '..' segment is refused below
RepoPath = Annotated[str, Field(pattern=r"^/repos/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$", max_length=300)]
API_VERSION = "2022-11-28"


class GitHubApiItemCheck(JsonGetCheck):
    """A GET of a repository's GitHub REST API whose JSON answer must meet the expectations."""

    kind: Literal["github_api"]
    conn_id: ConnId = Field(description="an http connection: host (api.github.com), schema, port; password a token")
    path: RepoPath = Field(description="the documented path, e.g. /repos/{owner}/{repo}/environments/production")

    @field_validator("path")
    @classmethod
    def _stays_in_the_repository(cls, path: str) -> str:
        if {".", ".."} & set(path.split("/")):
            raise ValueError(f"{path}: '.' and '..' name no repository, environment or workflow")
        return path


def run(_ctx: ReleaseContext, check: GitHubApiItemCheck) -> Evidence:
    import httpx
    from airflow.sdk import BaseHook

    from airflow_rollout.evidence import Evidence

    conn = BaseHook.get_connection(check.conn_id)
    base = f"{conn.schema or 'https'}://{conn.host}" + (f":{conn.port}" if conn.port else "")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    headers |= {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
    answer = httpx.get(base + check.path, params=check.params, headers=headers, timeout=30)
    if answer.status_code != httpx.codes.OK:
        return Evidence(False, f"GET {check.path} via {check.conn_id}: HTTP {answer.status_code} {answer.text.strip()[:200]}".rstrip())
    return check.judge(answer.json(), check.path, check.conn_id)
