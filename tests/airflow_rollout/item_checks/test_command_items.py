"""`command` items with a least version, run as shipped: seed 003's Docker and Compose items pass on the docker
stand-in's Engine 27.3.1 and Compose 2.29.7, and fail on a Docker 19.03 without the Compose plugin; seed 004's
`docker compose ls` passes on the stand-in and fails there, or where no Engine answers."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from seed_platforms import shipped_checks
from testenv import ROOT

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.checklists import CommandItemCheck

if TYPE_CHECKING:
    from pathlib import Path

ROUTING = "routing-ml-platform"
DOCKER = "Docker installed (version 20.10+)"
COMPOSE = "Docker Compose installed (version 2.0+)"

# what a Docker 19.03 answers: its Engine version, and no `compose` command (Compose v1 was docker-compose)
OLD_DOCKER = """#!/bin/sh
if [ "$1" = version ]; then echo 19.03.12; exit 0; fi
echo "docker: '$1' is not a docker command." >&2
exit 1
"""


def test_the_seeds_command_items() -> None:
    assert set(shipped_checks(ROUTING, "command")) == {DOCKER, COMPOSE}


def test_docker_and_compose_versions_pass_on_the_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{ROOT / 'devtools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    docker = evaluate(SimpleNamespace(), shipped_checks(ROUTING, "command")[DOCKER])  # type: ignore[arg-type]
    compose = evaluate(SimpleNamespace(), shipped_checks(ROUTING, "command")[COMPOSE])  # type: ignore[arg-type]
    assert docker.passed and docker.detail.endswith("exited 0: 27.3.1; version 27.3.1 >= 20.10"), docker.detail
    assert compose.passed and compose.detail.endswith("exited 0: 2.29.7; version 2.29.7 >= 2.0"), compose.detail


def test_an_old_docker_without_compose_fails_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker").write_text(OLD_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    docker = evaluate(SimpleNamespace(), shipped_checks(ROUTING, "command")[DOCKER])  # type: ignore[arg-type]
    compose = evaluate(SimpleNamespace(), shipped_checks(ROUTING, "command")[COMPOSE])  # type: ignore[arg-type]
    assert not docker.passed and docker.detail.endswith("version 19.03.12 below 20.10"), docker.detail
    assert not compose.passed and "exited 1: docker: 'compose' is not a docker command." in compose.detail, compose.detail


@pytest.mark.parametrize(
    ("printed", "least", "passed"),
    [("20.10.0", "20.10", True), ("20.9.9", "20.10", False), ("v2.0", "2.0.0", True), ("1.29.2", "2", False), ("3", "2.0", False)],
)
def test_versions_compare_number_by_number(printed: str, least: str, passed: bool) -> None:
    # "3" prints no dotted version number: nothing was proven
    check = CommandItemCheck(kind="command", argv=["echo", f"version {printed}"], min_version=least)
    assert evaluate(SimpleNamespace(), check).passed is passed  # type: ignore[arg-type]


def test_a_least_version_is_numbers_and_dots() -> None:
    with pytest.raises(ValueError, match="min_version"):
        CommandItemCheck(kind="command", argv=["docker"], min_version="20.10+")


MLOPS_DOCKER = "Docker and Docker Compose installed"


def mlops_docker() -> Any:
    check = shipped_checks("mlops-system", "command")[MLOPS_DOCKER]
    return evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]


def test_seed_004s_docker_and_compose_pass_where_compose_lists_the_engines_projects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(shipped_checks("mlops-system", "command")) == {MLOPS_DOCKER}
    monkeypatch.setenv("PATH", f"{ROOT / 'devtools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ROLLOUT_DOCKER_STANDIN_STATE", str(tmp_path))
    evidence = mlops_docker()
    assert evidence.passed and evidence.detail == "docker compose ls --all exited 0: NAME   STATUS   CONFIG FILES", evidence.detail


def test_seed_004s_docker_and_compose_fail_without_an_engine_or_the_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{ROOT / 'devtools' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("ROLLOUT_DOCKER_STANDIN_STATE", raising=False)  # the stand-in's Engine: nothing answers
    evidence = mlops_docker()
    assert not evidence.passed and "exited 1" in evidence.detail, evidence.detail
    (tmp_path / "docker").write_text(OLD_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    evidence = mlops_docker()
    assert not evidence.passed and "exited 1: docker: 'compose' is not a docker command." in evidence.detail, evidence.detail
