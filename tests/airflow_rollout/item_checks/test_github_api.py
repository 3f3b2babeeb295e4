"""`kind: github_api` items of seed 001 run as shipped against a stand-in of the GitHub REST API: they pass on the
repository its CI/CD sets up, and each fails when the repository is not so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError
from seed_platforms import ML_GITHUB_REPOSITORY, context, ml_github, ml_github_connection, shipped_checks

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.github_api import GitHubApiItemCheck

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with ml_github() as server:
        monkeypatch.setenv("AIRFLOW_CONN_GITHUB", ml_github_connection(server))
        yield server


def items() -> dict[str, Any]:
    return shipped_checks("databricks-ml-platform", "github_api")


def test_every_github_item_passes_on_the_repository_the_seed_sets_up(github: Any) -> None:
    assert set(items()) == {
        "Dev, staging, prod workflows configured",
        "Environment protection rules enabled",
        "Manual approvals required for production",
        "Integration tests running in CI pipeline",
    }
    for text, check in items().items():
        evidence = evaluate(context("databricks-ml-platform"), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
        query = "?" + "&".join(f"{name}={value}" for name, value in check.params.items()) if check.params else ""
        assert evidence.detail.startswith(f"GET {check.path}{query} via github: "), evidence.detail  # what was read, from where
    approvals = evaluate(context("databricks-ml-platform"), items()["Manual approvals required for production"])
    assert '"ml-lead", "ops-lead"' in approvals.detail, approvals.detail


def drop_rules(github: Any, *types: str) -> None:
    production = github.environments["production"]
    production["protection_rules"] = [rule for rule in production["protection_rules"] if rule["type"] not in types]


BREAKAGES: dict[str, list[tuple[Any, str]]] = {
    "Dev, staging, prod workflows configured": [
        # the staging workflow disabled in the Actions tab
        (lambda g: g.workflows[1].update(state="disabled_manually"), "does not contain it"),
        # no workflow deploys to production
        (lambda g: g.workflows.pop(2), "does not contain it"),
    ],
    "Environment protection rules enabled": [
        # production deploys from any branch, at once, with nobody asked
        (lambda g: drop_rules(g, "required_reviewers", "branch_policy"), "protection_rules = [] (empty)"),
    ],
    "Manual approvals required for production": [
        # only a branch policy: a job deploys to production without anyone approving it
        (lambda g: drop_rules(g, "required_reviewers"), "does not contain it"),
        # an administrator may deploy without waiting for the reviewers (GitHub's default)
        (lambda g: g.environments["production"].update(can_admins_bypass=True), "can_admins_bypass = true (differs)"),
        # no production environment at all: the workflow's `environment: production` was never set up
        (lambda g: g.environments.pop("production"), "HTTP 404"),
    ],
    "Integration tests running in CI pipeline": [
        # the newest commit of main broke the integration tests
        (lambda g: g.head_check_runs["main"][1].update(conclusion="failure"), '"failure" (differs)'),
        # still running: not yet shown to pass on what is merged
        (lambda g: g.head_check_runs["main"][1].update(status="in_progress", conclusion=None), "null (differs)"),
        # the job was dropped from CI (or its workflow disabled): nothing ran them on the newest commit
        (lambda g: g.head_check_runs["main"].pop(1), "found 0 value(s)"),
    ],
}


def test_every_github_item_has_a_failing_case() -> None:
    assert set(BREAKAGES) == set(items())


@pytest.mark.parametrize(("text", "case"), [(text, index) for text, cases in sorted(BREAKAGES.items()) for index in range(len(cases))])
def test_a_github_item_fails_when_the_repository_is_not_so(github: Any, text: str, case: int) -> None:
    breaks, evidence = BREAKAGES[text][case]
    breaks(github)
    found = evaluate(context("databricks-ml-platform"), items()[text])
    assert not found.passed
    assert evidence in found.detail, found.detail


def test_a_token_github_refuses_fails_with_its_status(github: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB", ml_github_connection(github).replace("ml-github-e2e-token", "revoked"))
    found = evaluate(context("databricks-ml-platform"), items()["Environment protection rules enabled"])
    assert not found.passed
    path = f"/repos/{ML_GITHUB_REPOSITORY}/environments/production"
    assert found.detail.startswith(f"GET {path} via github: HTTP 401"), found.detail
    assert "revoked" not in found.detail  # the token is never shown


def test_a_path_that_is_not_a_repository_get_is_refused() -> None:
    for path in ("/repos/acme/ml-platform", "/repos/acme/../orgs/acme", "/user/repos", "repos/a/b/environments", "/repos/a/b/c?x=1"):
        with pytest.raises(ValidationError):
            GitHubApiItemCheck(kind="github_api", conn_id="github", path=path, expect=[{"path": ["a"]}])
