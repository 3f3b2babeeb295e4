"""`kind: airflow_api` items of seeds 004 and 002 run as shipped against a stand-in of the system's own Airflow 2 webserver:
they pass on the Airflow the seed sets up, and each fails when that Airflow is not so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError
from seed_platforms import (
    ai_etl_airflow,
    ai_etl_airflow_connection,
    context,
    mlops_airflow,
    mlops_airflow_connection,
    shipped_checks,
)

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.airflow_api import AirflowApiItemCheck

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def airflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with mlops_airflow() as server:
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_AIRFLOW", mlops_airflow_connection(server))
        yield server


def items() -> dict[str, Any]:
    return shipped_checks("mlops-system", "airflow_api")


def test_every_airflow_api_item_passes_on_the_airflow_the_seed_sets_up(airflow: Any) -> None:
    assert len(items()) == 5
    for text, check in items().items():
        evidence = evaluate(context("mlops-system"), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
        assert evidence.detail.startswith(f"GET {check.path} via mlops_airflow"), evidence.detail


BREAKAGES: dict[str, tuple[Any, str]] = {
    "Airflow webserver accessible (http://localhost:8080)": (lambda a: setattr(a, "metadatabase", "unhealthy"), '"unhealthy"'),
    "Airflow initialized (`airflow db init`)": (lambda a: setattr(a, "metadatabase", "unhealthy"), '"unhealthy"'),
    "Admin user created": (lambda a: a.users["admin"][1].update(roles=[{"name": "Viewer"}]), '"Viewer"'),
    "No DAG errors": (
        lambda a: a.import_errors.append({"import_error_id": 1, "filename": "/opt/airflow/dags/train.py", "stack_trace": "SyntaxError"}),
        "total_entries = 1",
    ),
    "DAG scheduled correctly (@daily)": (lambda a: a.dags["data_collection_dag"].update(is_paused=True), "is_paused = true"),
}


def test_every_airflow_api_item_has_a_failing_case() -> None:
    assert set(BREAKAGES) == set(items())


@pytest.mark.parametrize("text", sorted(BREAKAGES))
def test_an_airflow_api_item_fails_when_the_airflow_is_not_so(airflow: Any, text: str) -> None:
    breaks, evidence = BREAKAGES[text]
    breaks(airflow)
    found = evaluate(context("mlops-system"), items()[text])
    assert not found.passed
    assert "FAILED" in found.detail and evidence in found.detail, found.detail


def test_a_login_the_airflow_refuses_fails_with_its_status(airflow: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_AIRFLOW", mlops_airflow_connection(airflow).replace('"admin-e2e', '"wrong'))
    found = evaluate(context("mlops-system"), items()["No DAG errors"])
    assert not found.passed and found.detail == "GET /api/v1/importErrors via mlops_airflow: HTTP 401", found.detail


def test_a_path_that_is_not_an_airflow_api_get_is_refused() -> None:
    for path in ("/api/v1/../config", "api/v1/dags", "/api/v2/dags", "/auth/token", "/api/v1/dags?limit=1"):
        with pytest.raises(ValidationError):
            AirflowApiItemCheck(kind="airflow_api", conn_id="x", path=path, expect=[{"path": ["a"]}])


@pytest.fixture
def ai_etl_airflow_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with ai_etl_airflow() as server:
        monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_AIRFLOW", ai_etl_airflow_connection(server))
        yield server


def ai_etl_items() -> dict[str, Any]:
    return shipped_checks("ai-etl-assistant", "airflow_api")


def test_seed_002_s_airflow_items_pass_on_its_healthy_airflow(ai_etl_airflow_server: Any) -> None:
    assert set(ai_etl_items()) == {"Airflow", "Airflow API"}
    for text, check in ai_etl_items().items():
        evidence = evaluate(context("ai-etl-assistant"), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
    airflow = evaluate(context("ai-etl-assistant"), ai_etl_items()["Airflow"])
    assert 'scheduler.status = "healthy"' in airflow.detail, airflow.detail


def test_seed_002_s_airflow_fails_when_its_scheduler_is_down(ai_etl_airflow_server: Any) -> None:
    ai_etl_airflow_server.scheduler = "unhealthy"
    found = evaluate(context("ai-etl-assistant"), ai_etl_items()["Airflow"])
    assert not found.passed
    assert 'scheduler.status: FAILED, expected a value, each equals "healthy": scheduler.status = "unhealthy"' in found.detail, found.detail


def test_seed_002_s_airflow_api_fails_when_it_refuses_the_backend_s_login(
    ai_etl_airflow_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_AIRFLOW", ai_etl_airflow_connection(ai_etl_airflow_server).replace('"ai-etl-e2e', '"wrong'))
    found = evaluate(context("ai-etl-assistant"), ai_etl_items()["Airflow API"])
    assert not found.passed and found.detail == "GET /api/v1/dags via ai_etl_airflow: HTTP 401", found.detail
