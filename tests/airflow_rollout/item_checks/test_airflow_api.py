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
    """The shipped airflow_api checks by item text; a text two sections share ("DAG scheduled correctly (@daily)") is
    named `<section>: <text>` for each."""
    from airflow_rollout.checklists import load_checklist

    checklist = load_checklist("mlops-system")
    assert checklist is not None
    entries = [e for e in checklist.entries() if e.item.check is not None and e.item.check.kind == "airflow_api"]
    texts = [e.item.text for e in entries]
    return {e.item.text if texts.count(e.item.text) == 1 else f"{e.section.title}: {e.item.text}": e.item.check for e in entries}


def test_every_airflow_api_item_passes_on_the_airflow_the_seed_sets_up(airflow: Any) -> None:
    assert len(items()) == 13
    assert set(items()) == set(shipped_checks("mlops-system", "airflow_api")) - {"DAG scheduled correctly (@daily)"} | {
        "Data Collection: DAG scheduled correctly (@daily)",
        "Validation & Deployment: DAG scheduled correctly (@daily)",
    }
    for text, check in items().items():
        evidence = evaluate(context("mlops-system"), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
        query = "?" + "&".join(f"{name}={value}" for name, value in check.params.items()) if check.params else ""
        assert evidence.detail.startswith(f"GET {check.path}{query} via mlops_airflow"), evidence.detail  # what was read, from where


BREAKAGES: dict[str, tuple[Any, str]] = {
    "Airflow webserver accessible (http://localhost:8080)": (lambda a: setattr(a, "metadatabase", "unhealthy"), '"unhealthy"'),
    "Airflow initialized (`airflow db init`)": (lambda a: setattr(a, "metadatabase", "unhealthy"), '"unhealthy"'),
    "Admin user created": (lambda a: a.users["admin"][1].update(roles=[{"name": "Viewer"}]), '"Viewer"'),
    "No DAG errors": (
        lambda a: a.import_errors.append({"import_error_id": 1, "filename": "/opt/airflow/dags/train.py", "stack_trace": "SyntaxError"}),
        "total_entries = 1",
    ),
    "Data Collection: DAG scheduled correctly (@daily)": (
        lambda a: a.dags["data_collection_dag"].update(is_paused=True),
        "is_paused = true",
    ),
    "Validation & Deployment: DAG scheduled correctly (@daily)": (
        lambda a: a.dags["model_validation_dag"].update(schedule_interval={"__type": "CronExpression", "value": "@weekly"}),
        '"@weekly"',
    ),
    # a DAG whose file fails to import is not listed (nor in the UI)
    "DAGs visible in UI": (lambda a: a.dags.pop("model_training_dag"), "dag_id: FAILED"),
    # data collection only ever ran on its schedule, and failed
    "Data collection DAG tested": (lambda a: failed_runs(a, "data_collection_dag"), "total_entries = 0"),
    # the training DAG only ran on a schedule (or never by hand)
    "Training DAG triggered": (lambda a: a.dag_runs.__setitem__(slice(None), manual_to_scheduled(a.dag_runs)), "does not contain it"),
    # pretraining failed: the classifier never ran
    "Pretraining completed successfully": (lambda a: failed_task(a, "pretrain", "train_classifier", "save_model"), "task_id: FAILED"),
    "Classifier training completed": (lambda a: failed_task(a, "train_classifier", "save_model"), "task_id: FAILED"),
    # the manual training run failed
    "DAG can be triggered manually": (lambda a: failed_runs(a, "model_training_dag"), "does not contain it"),
    "Training runs end-to-end": (lambda a: failed_runs(a, "model_training_dag"), "total_entries = 0"),
}


def failed_runs(airflow: Any, dag_id: str) -> None:
    for run in airflow.dag_runs:
        if run["dag_id"] == dag_id:
            run["state"] = "failed"


def manual_to_scheduled(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**run, "run_type": "scheduled"} for run in runs]


def failed_task(airflow: Any, failed: str, *never_ran: str) -> None:
    """`failed` failed in every run of the training DAG, and the tasks after it stayed upstream_failed."""
    for ti in airflow.task_instances:
        ti["state"] = "failed" if ti["task_id"] == failed else "upstream_failed" if ti["task_id"] in never_ran else ti["state"]


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
    # `~` (Airflow's "every") only as a whole segment after the first
    for path in ("/api/v1/../config", "api/v1/dags", "/api/v2/dags", "/auth/token", "/api/v1/dags?limit=1", "/api/v1/~", "/api/v1/dags/~x"):
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
