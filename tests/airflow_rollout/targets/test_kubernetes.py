"""kubernetes target: when a rollout counts as done, stalled or still going (as `kubectl rollout status`
reads a Deployment), and that the target reaches the cluster only through the provider's hook."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_rollout.targets.base import AppNotReadyError
from airflow_rollout.targets.kubernetes import image_tag, rollout_problem


def deployment(*, generation=2, observed=2, replicas=3, updated=3, total=3, available=3, conditions=()):
    return SimpleNamespace(
        metadata=SimpleNamespace(name="backend", generation=generation),
        spec=SimpleNamespace(replicas=replicas, progress_deadline_seconds=600),
        status=SimpleNamespace(
            observed_generation=observed,
            updated_replicas=updated,
            replicas=total,
            available_replicas=available,
            conditions=[SimpleNamespace(type=t, reason=r, message=m) for t, r, m in conditions],
        ),
    )


@pytest.mark.parametrize(
    ("state", "waiting_for"),
    [
        ({}, None),
        ({"observed": 1}, "observe the new generation"),
        ({"updated": 1}, "1 of 3 replicas updated"),
        ({"total": 4}, "1 old replicas pending termination"),
        ({"available": 2}, "2 of 3 updated replicas available"),
        ({"replicas": 0, "updated": 0, "total": 0, "available": 0}, None),
        ({"updated": None, "total": None, "available": None, "replicas": 1}, "0 of 1 replicas updated"),
        ({"conditions": [("Progressing", "NewReplicaSetAvailable", "done")]}, None),
        ({"updated": 1, "conditions": [("Progressing", "ReplicaSetUpdated", "rolling")]}, "1 of 3 replicas updated"),
    ],
)
def test_rollout_state_is_read_as_kubectl_rollout_status_reads_it(state, waiting_for) -> None:
    problem = rollout_problem(deployment(**state))
    assert (problem is None) if waiting_for is None else (waiting_for in problem)


def test_a_deadline_the_previous_template_exceeded_does_not_fail_the_next_one() -> None:
    restored = deployment(generation=3, observed=2, conditions=[("Progressing", "ProgressDeadlineExceeded", "timed out")])
    assert "observe the new generation" in rollout_problem(restored)


def test_a_rollout_past_its_progress_deadline_cannot_complete() -> None:
    stalled = deployment(updated=1, conditions=[("Progressing", "ProgressDeadlineExceeded", 'ReplicaSet "backend-7d" has timed out')])
    with pytest.raises(AppNotReadyError, match="exceeded its progress deadline"):
        rollout_problem(stalled)


@pytest.mark.parametrize(
    ("image", "tag"),
    [("registry.example.com:5000/ai-etl/backend:1.2.0", "1.2.0"), ("backend", "latest"), ("reg/backend:v1.0-p2@sha256:ab", "v1.0-p2")],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def test_the_target_reaches_kubernetes_only_through_the_provider_hook() -> None:
    source = Path(__file__).resolve().parents[3] / "src" / "airflow_rollout" / "targets" / "kubernetes.py"
    tree = ast.parse(source.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "airflow.providers.cncf.kubernetes.hooks.kubernetes" in imported
    assert not any(name == "kubernetes.config" or name.startswith("kubernetes.client.api") for name in imported)
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert not calls & {"load_kube_config", "load_incluster_config", "ApiClient", "CoreV1Api", "AppsV1Api", "BatchV1Api"}


def test_a_long_migration_job_is_handed_to_the_providers_trigger_and_followed_after_it(tmp_path, monkeypatch) -> None:
    """A ten-minute migration Job (time-compressed by the stand-in): inside a task the migrator defers with
    KubernetesJobTrigger; the step's next run finds the Job it created complete and reads its log, creating nothing."""
    import sys

    from airflow.providers.cncf.kubernetes.triggers.job import KubernetesJobTrigger

    from airflow_rollout.config import KubernetesJobMigrations
    from airflow_rollout.targets.kubernetes import KubernetesJobMigrator
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place
    from devtools.kube_apiserver import KubeApiServer

    image = "registry.test/migrations"
    config = KubernetesJobMigrations(
        kind="kubernetes_job",
        conn_id="kube_standin",
        namespace="ns",
        image=image,
        command=[sys.executable, "-c", "print('upgraded to head')"],
    )
    with KubeApiServer(image_map={}, state_dir=tmp_path / "kube") as kube:
        monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", kube.airflow_connection())
        # 600 s of cluster time, within the Job's activeDeadlineSeconds (900, compressed alike): 3 s here
        kube.set_job_work(f"{image}:2.0.0", 600, time_scale=0.005)
        migrator = KubernetesJobMigrator(config=config, version="2.0.0", job_name="migrate-2-0-0")

        with deferring(), pytest.raises(WaitDeferred) as deferred:
            migrator.run()
        trigger = deferred.value.trigger
        assert isinstance(trigger, KubernetesJobTrigger) and trigger.job_name == "migrate-2-0-0"
        assert deferred.value.timeout == config.timeout_seconds + 60
        assert not migrator.end_conditions()  # still working when the task gave its slot back
        event = wait_in_place(trigger, deferred.value.what, timeout=60)  # what the triggerer does
        assert event["status"] == "success", event

        with deferring():
            output = migrator.run()

        assert output == "upgraded to head"
        [(job, runs)] = kube.state()["jobs"].items()
        assert job == "ns/migrate-2-0-0" and len(runs["pods"]) == 1  # one Job, one attempt


def test_a_wait_whose_deferral_failed_fails_the_step_that_waited(tmp_path, monkeypatch) -> None:
    """The triggerer gave up (its timeout passed): the step's next run raises at that wait, not deferring again."""
    import sys

    from airflow_rollout.config import KubernetesJobMigrations
    from airflow_rollout.targets.kubernetes import KubernetesJobMigrator
    from airflow_rollout.targets.migrations import MigrationError
    from airflow_rollout.waits import deferring
    from devtools.kube_apiserver import KubeApiServer

    config = KubernetesJobMigrations(
        kind="kubernetes_job", conn_id="kube_standin", namespace="ns", image="registry.test/migrations", command=[sys.executable, "-V"]
    )
    with KubeApiServer(image_map={}, state_dir=tmp_path / "kube") as kube:
        monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", kube.airflow_connection())
        kube.set_job_work("registry.test/migrations:2.0.0", 3600)  # not compressed: it is still running below
        migrator = KubernetesJobMigrator(config=config, version="2.0.0", job_name="migrate-2-0-0")

        with deferring(failure="Trigger/execution timeout"), pytest.raises(MigrationError, match="execution timeout"):
            migrator.run()


def kubernetes_app(kube, readiness_timeout: float = 60):
    from airflow_rollout.config import Readiness
    from airflow_rollout.targets.kubernetes import KubernetesApp, KubernetesTarget

    config = KubernetesTarget(
        kind="kubernetes",
        name="web",
        conn_id="kube_standin",
        namespace="ns",
        deployment="web",
        image="registry.test/web",
        url=kube.url,
        readiness=Readiness(path="/readyz", timeout_seconds=readiness_timeout),
    )
    return KubernetesApp(config=config)


def test_a_rollout_is_handed_to_our_trigger_and_the_next_run_finds_it_done(tmp_path, monkeypatch) -> None:
    from airflow_rollout.triggers import DeploymentRolloutTrigger
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place
    from devtools.kube_apiserver import KubeApiServer
    from tests.airflow_rollout.test_triggers import create_deployment

    with KubeApiServer(image_map={}, state_dir=tmp_path / "kube") as kube:
        monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", kube.airflow_connection())
        create_deployment("1.0.0")
        app = kubernetes_app(kube)
        app.wait_ready("1.0.0")
        kube.set_ready_delay(1.0)

        with deferring(), pytest.raises(WaitDeferred) as deferred:
            app.switch_to("2.0.0")
        trigger = deferred.value.trigger
        assert isinstance(trigger, DeploymentRolloutTrigger) and trigger.version == "2.0.0"
        assert rollout_problem(app._read()) is not None  # still rolling out when the task gave its slot back
        assert wait_in_place(trigger, deferred.value.what, timeout=30) == {"status": "success"}

        with deferring():
            app.wait_ready("2.0.0")  # the step's next run: done, nothing deferred


def test_a_scale_to_zero_records_the_replicas_before_its_wait_is_handed_to_the_triggerer(tmp_path, monkeypatch) -> None:
    from airflow_rollout.triggers import DeploymentScaledDownTrigger
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place
    from devtools.kube_apiserver import KubeApiServer
    from tests.airflow_rollout.test_triggers import create_deployment

    with KubeApiServer(image_map={}, state_dir=tmp_path / "kube") as kube:
        monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", kube.airflow_connection())
        create_deployment("1.0.0", replicas=3)
        app = kubernetes_app(kube)
        app.wait_ready("1.0.0")

        kube.set_termination_delay(1.0)

        assert app.quiesce() == {"replicas": 3}  # returned before any wait: the step records it first
        with deferring(), pytest.raises(WaitDeferred) as deferred:
            app.wait_quiesced()  # the pods are still terminating: the wait goes to the triggerer
        assert isinstance(deferred.value.trigger, DeploymentScaledDownTrigger)
        assert wait_in_place(deferred.value.trigger, deferred.value.what, timeout=30) == {"status": "success"}

        with deferring():
            app.wait_quiesced()  # the step's next run: no pod left, nothing deferred
        assert app.quiesce() == {"replicas": 0}  # what a run after the wait would have recorded, had it recorded it then
