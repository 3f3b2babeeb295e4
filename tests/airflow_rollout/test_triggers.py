"""Our triggers, run as the triggerer runs them (to their first event), against the Kubernetes API stand-in."""

from __future__ import annotations

import time

import pytest

from airflow_rollout.triggers import (
    DatabricksAppComputeTrigger,
    DatabricksAppServingTrigger,
    DeploymentRolloutTrigger,
    DeploymentScaledDownTrigger,
)
from airflow_rollout.waits import WAIT_FAILED, wait_in_place

IMAGE = "registry.test/web"


def polling(seconds: float = 30) -> dict[str, float]:
    return {"poll_interval": 0.1, "deadline": time.time() + seconds}


@pytest.fixture
def kube(tmp_path, monkeypatch):
    from devtools.kube_apiserver import KubeApiServer

    with KubeApiServer(image_map={}, state_dir=tmp_path / "kube") as server:
        monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", server.airflow_connection())
        yield server


def create_deployment(version: str, *, replicas: int = 3, progress_deadline: int = 600) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    container = {"name": "web", "image": f"{IMAGE}:{version}"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
        },
    }
    KubernetesHook(conn_id="kube_standin").apps_v1_client.create_namespaced_deployment("ns", body)


def rollout_trigger(kube, version: str) -> DeploymentRolloutTrigger:
    return DeploymentRolloutTrigger(
        conn_id="kube_standin",
        namespace="ns",
        deployment="web",
        **polling(),
        container=None,
        version=version,
        readiness_url=f"{kube.url}/readyz",
    )


def test_the_rollout_trigger_fires_once_the_new_pods_are_available_and_the_service_answers(kube) -> None:
    kube.set_ready_delay(1.0)
    create_deployment("2.0.0")

    assert wait_in_place(rollout_trigger(kube, "2.0.0"), "rollout", timeout=30) == {"status": "success"}


def test_the_rollout_trigger_reports_a_rollout_past_its_progress_deadline(kube) -> None:
    kube.set_image_behaviour(f"{IMAGE}:2.0.0", "stall")
    create_deployment("2.0.0", progress_deadline=1)

    event = wait_in_place(rollout_trigger(kube, "2.0.0"), "rollout", timeout=30)

    assert event["status"] == WAIT_FAILED and "exceeded its progress deadline" in event["message"]


def test_a_trigger_whose_deadline_passes_gives_up_with_what_it_waited_for(kube) -> None:
    kube.set_image_behaviour(f"{IMAGE}:2.0.0", "stall")  # never ready, and its progress deadline far away
    create_deployment("2.0.0")
    trigger = rollout_trigger(kube, "2.0.0")
    trigger.deadline = time.time() + 1

    event = wait_in_place(trigger, "rollout", timeout=30)

    assert event["status"] == WAIT_FAILED and event["message"].startswith("not done in time: "), event


def test_the_rollout_trigger_reports_a_template_someone_else_changed(kube) -> None:
    create_deployment("3.0.0")

    event = wait_in_place(rollout_trigger(kube, "2.0.0"), "rollout", timeout=30)

    assert event == {"status": WAIT_FAILED, "message": "deployment web runs 3.0.0, not 2.0.0: changed by someone else?"}


def test_the_scaled_down_trigger_fires_when_no_pod_is_left(kube) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    create_deployment("2.0.0")
    KubernetesHook(conn_id="kube_standin").apps_v1_client.patch_namespaced_deployment("web", "ns", {"spec": {"replicas": 0}})
    trigger = DeploymentScaledDownTrigger(conn_id="kube_standin", namespace="ns", deployment="web", **polling())

    assert wait_in_place(trigger, "scaled down", timeout=30) == {"status": "success"}


@pytest.mark.parametrize(
    "trigger",
    [
        DeploymentRolloutTrigger(
            conn_id="k",
            namespace="ns",
            deployment="web",
            poll_interval=2,
            deadline=1e9,
            container="c",
            version="1.0",
            readiness_url="http://h/r",
        ),
        DeploymentScaledDownTrigger(conn_id="k", namespace="ns", deployment="web", poll_interval=2, deadline=1e9),
        DatabricksAppComputeTrigger(conn_id="d", app_name="web", poll_interval=2, deadline=1e9, state="STOPPED"),
        DatabricksAppServingTrigger(
            conn_id="d", app_name="web", poll_interval=2, deadline=1e9, source_code_path="/Workspace/a-1", readiness_path="/h"
        ),
    ],
)
def test_a_trigger_is_rebuilt_by_the_triggerer_from_what_it_serializes(trigger) -> None:
    import importlib

    classpath, arguments = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module), name)(**arguments)

    assert type(rebuilt) is type(trigger) and rebuilt.serialize() == (classpath, arguments)


def app_api(method: str, path: str, body: dict | None = None) -> dict:
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    from airflow_rollout.targets.databricks import api

    return api(DatabricksHook(databricks_conn_id="dbx_standin"), method, path, body)


def serving_trigger(version: str) -> DatabricksAppServingTrigger:
    path = f"/Workspace/Apps/web-{version}"
    return DatabricksAppServingTrigger(conn_id="dbx_standin", app_name="web", **polling(), source_code_path=path, readiness_path="/")


def test_the_app_serving_trigger_fires_once_the_deployment_is_active_and_the_app_answers(dbx_app) -> None:
    app_api("POST", "2.0/apps/web/deployments", {"source_code_path": "/Workspace/Apps/web-1.0.0", "mode": "SNAPSHOT"})

    assert wait_in_place(serving_trigger("1.0.0"), "serving", timeout=30) == {"status": "success"}


def test_the_app_serving_trigger_reports_a_deployment_that_failed(dbx_app) -> None:
    app_api("POST", "2.0/apps/web/deployments", {"source_code_path": "/Workspace/Apps/web-2.0.0-broken", "mode": "SNAPSHOT"})

    event = wait_in_place(serving_trigger("2.0.0-broken"), "serving", timeout=30)

    assert event["status"] == WAIT_FAILED and "runs None, not /Workspace/Apps/web-2.0.0-broken: CRASHED" in event["message"]


@pytest.mark.parametrize("state", ["STOPPED", "ACTIVE"])
def test_the_app_compute_trigger_fires_in_the_state_it_waits_for(dbx_app, state) -> None:
    app_api("POST", "2.0/apps/web/stop")
    if state == "ACTIVE":
        app_api("POST", "2.0/apps/web/start")
    trigger = DatabricksAppComputeTrigger(conn_id="dbx_standin", app_name="web", **polling(), state=state)

    assert wait_in_place(trigger, "compute", timeout=30) == {"status": "success"}
