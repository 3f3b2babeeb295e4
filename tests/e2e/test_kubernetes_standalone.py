"""End to end under a real scheduler and worker: seed 002's AI ETL Assistant released by `airflow standalone`
(the LocalExecutor's task processes, not dag.test()) through the Kubernetes target, against the Kubernetes API
stand-in and a real PostgreSQL.

The cluster is test_kubernetes_release.py's (its fixtures, run once for this module): ai-etl-prod with the three
Deployments at 1.0.0, the database migrated, the backend's Secret, Redis and ClickHouse as TCP listeners. One
standalone serves both releases: `python -m devtools.up start` on a free port, with a private state directory,
systems directory (the profile alone) and rollout state, its connections from a `.env` in the module's temporary
directory (they reach Airflow as AIRFLOW_CONN_* variables), parallelism 4. Task processes import the installed
package only (`up` empties PYTHONPATH). Each role's sign-off is answered through the REST API by that role's own
user (SimpleAuthManager users named after the profile's approvers), as in Browse → Required Actions.

1.1.0 is promoted; 1.2.0-broken (its backend never gets ready: the rollout passes its progress deadline) is
rolled back to the recorded pod templates with the data fingerprint equal to before. `up stop` must leave no
process of the standalone's session behind, whatever the tests did.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import test_kubernetes_release as kube_release
from airflow_standalone import (
    RELEASE_TIMEOUT,
    Standalone,
    answer_sign_offs,
    assert_promoted_after_one_deferred_try,
    fixture_at_module_scope,
    release_seen_deferred,
    standalone_for,
    task_states,
)
from observe import ledger
from test_kubernetes_release import DEPLOYMENTS, NAMESPACE, REGISTRY, SYSTEM, data_target, images, templates, wait_rolled_out

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

CONNECTIONS = (
    *("ROLLOUT_LEDGER", "SLACK_AI_ETL", "AI_ETL_DB", "AI_ETL_KUBE", "AI_ETL_REDIS", "AI_ETL_CLICKHOUSE", "AI_ETL_PUBLIC"),
    *("AI_ETL_PROMETHEUS", "AI_ETL_GRAFANA", "AI_ETL_ALERTMANAGER", "AI_ETL_LOKI"),
)
TERMINAL = {"success", "failed"}


@pytest.fixture(scope="module")
def cluster(postgres, slack, tmp_path_factory):
    """ai-etl-prod at 1.0.0, as test_kubernetes_release.py sets it up; its connections are now in os.environ."""
    with (
        fixture_at_module_scope(kube_release.tcp_services),
        fixture_at_module_scope(kube_release.cluster, postgres, slack, None, tmp_path_factory.mktemp("kube")) as apps,
    ):
        yield apps


@pytest.fixture(scope="module")
def standalone(cluster, postgres, tmp_path_factory) -> Iterator[Standalone]:
    """`make up` over the profile alone, on a free port; stopped by `up stop`, every process of its session gone."""
    with standalone_for(SYSTEM, tmp_path_factory.mktemp("standalone"), CONNECTIONS, postgres) as airflow:
        yield airflow


def _roles() -> dict[str, list[Any]]:
    """The profile's sign-off roles and their approvers."""
    from airflow_rollout.config import load_profile

    return load_profile(SYSTEM).sign_off.roles


def release(airflow: Standalone, version: str) -> tuple[str, str, Any]:
    """Trigger a release as the UI form does, sign it off, wait for its end; (run id, run state, ledger record)."""
    run_id = airflow.api.trigger("release", {"system": SYSTEM, "version": version})
    started = time.monotonic()

    def finished() -> bool:
        answer_sign_offs(airflow, run_id)
        return airflow.api.run_state("release", run_id) in TERMINAL

    airflow.api.wait(f"release {version} ({run_id})", finished, timeout=RELEASE_TIMEOUT)
    print(f"release {version}: {time.monotonic() - started:.0f} s under airflow standalone")
    return run_id, airflow.api.run_state("release", run_id), ledger().release(run_id)


def test_good_release_is_promoted_by_a_real_worker(standalone, cluster):
    running = images(cluster)

    run_id, state, record = release(standalone, "1.1.0")

    states = task_states(standalone, "release", run_id)
    assert (state, record.status) == ("success", "promoted"), f"{record}; tasks: {states}; logs in {standalone.state / 'airflow'}"
    assert record.previous_version == running["backend"]
    assert images(cluster) == dict.fromkeys(DEPLOYMENTS, "1.1.0")
    verify = {ti: s for ti, s in states.items() if ti.startswith("verify.") and "_items" not in ti}  # its steps, not its checklist
    assert verify and set(verify.values()) == {"success"}, verify
    verify_steps = [s for s in ledger().steps(run_id) if s.phase == "verify"]
    assert verify_steps and all(s.status == "succeeded" for s in verify_steps), verify_steps
    signoffs = ledger().signoffs(run_id)
    assert {role: (s.approved, s.responder) for role, s in signoffs.items()} == {
        role: (True, approver.id) for role, [approver] in _roles().items()
    }
    assert "priority integer" in data_target().fingerprint()["public.routing_items"]["columns"]  # the migration Job ran
    notes = ledger().notifications(run_id)  # Slack, reached from the task processes through the .env's connection
    assert "promoted" in [note.event for note in notes] and all(note.delivered for note in notes), notes
    states_of_apps = ledger().app_states(run_id)
    assert states_of_apps["backend"].snapshot["template"]["spec"]["containers"][0]["image"] == f"{REGISTRY}/backend:{running['backend']}"


def test_stalled_rollout_is_rolled_back_by_a_real_worker(standalone, cluster):
    from airflow_rollout.ledger import FingerprintStage

    before_images, before_templates, before_data = images(cluster), templates(cluster), data_target().fingerprint()

    run_id, state, record = release(standalone, "1.2.0-broken")

    states = task_states(standalone, "release", run_id)
    assert record.status == "rolled_back", f"{record}; tasks: {states}; logs in {standalone.state / 'airflow'}"
    assert state == "failed"  # report_outcome is red when the version did not ship
    assert any("progress deadline" in reason for reason in record.decision_reasons or []), record.decision_reasons
    assert templates(cluster) == before_templates
    wait_rolled_out(cluster)
    assert images(cluster) == before_images
    assert data_target().fingerprint() == before_data
    target = data_target().config.name
    restored = ledger().fingerprint(run_id, target, FingerprintStage.AFTER_RESTORE)
    assert restored is not None and restored == ledger().fingerprint(run_id, target, FingerprintStage.BEFORE)
    rollback = {s.step: s.status for s in ledger().steps(run_id) if s.phase == "rollback"}
    assert rollback.get("verify_restored") == "succeeded", rollback
    assert states.get("rollback.verify_restored") == "success", states
    notes = ledger().notifications(run_id)
    assert "rolled_back" in [note.event for note in notes] and all(note.delivered for note in notes), notes


def test_a_long_migration_job_is_waited_for_by_the_triggerer_not_a_worker(standalone, cluster):
    """A ten-minute migration Job (time-compressed by the stand-in to about 30 s): while it runs, the migrate task is
    `deferred` (its worker slot given back, the provider's KubernetesJobTrigger in the triggerer); then the same try
    resumes, reads the Job's log and the release is promoted, the migrate step one attempt in the ledger."""
    import httpx

    kube = cluster.api_client.configuration.host
    version = "1.2.1"
    # 600 s of cluster time at 0.05: 30 s here, within the Job's activeDeadlineSeconds (900, compressed alike: 45 s)
    httpx.post(f"{kube}/_standin/job-work", json={"image": f"{REGISTRY}/backend:{version}", "seconds": 600}).raise_for_status()
    httpx.post(f"{kube}/_standin/config", json={"time_scale": 0.05}).raise_for_status()
    try:
        run_id, seen = release_seen_deferred(standalone, SYSTEM, version, "migrate.migrate_data", lambda: migration_jobs_running(cluster))
    finally:
        httpx.post(f"{kube}/_standin/config", json={"time_scale": 1.0}).raise_for_status()

    assert_promoted_after_one_deferred_try(
        standalone, run_id, seen, "migrate.migrate_data", "airflow.providers.cncf.kubernetes.triggers.job.KubernetesJobTrigger"
    )
    [migration] = ledger().migrations(run_id)
    assert "job ai-etl-assistant-migrate-" in migration
    assert images(cluster) == dict.fromkeys(DEPLOYMENTS, version)


def migration_jobs_running(apps: Any) -> list[str]:
    """The migration Jobs in the namespace that have not ended (no Complete or Failed condition yet)."""
    from kubernetes import client

    jobs = client.BatchV1Api(apps.api_client).list_namespaced_job(NAMESPACE).items
    ended = {"Complete", "Failed"}
    return [
        job.metadata.name
        for job in jobs
        if "-migrate-" in job.metadata.name and not any(c.type in ended and c.status == "True" for c in job.status.conditions or [])
    ]
