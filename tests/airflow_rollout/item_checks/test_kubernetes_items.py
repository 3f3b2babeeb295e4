"""`kind: kubernetes` items of seed 002 run as shipped against the Kubernetes API stand-in, through KubernetesHook:
they pass on the namespace set up as the seed asks, and each fails when the cluster lacks what it states."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from seed_platforms import (
    AI_ETL_BACKEND_SECRET,
    AI_ETL_NAMESPACE,
    ai_etl_backend_secrets,
    ai_etl_deployment,
    ai_etl_objects,
    context,
    create_ai_etl_platform,
)

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.checklists import load_checklist
from airflow_rollout.item_checks.kubernetes import KubernetesItemCheck

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SYSTEM = "ai-etl-assistant"


def kubernetes_items() -> dict[str, KubernetesItemCheck]:
    checklist = load_checklist(SYSTEM)
    assert checklist is not None
    return {e.item.text: e.item.check for e in checklist.entries() if isinstance(e.item.check, KubernetesItemCheck)}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devtools.kube_apiserver import KubeApiServer

    with KubeApiServer(image_map={}, state_dir=tmp_path_factory.mktemp("kube"), ready_delay=0.1) as server:
        yield server


@pytest.fixture
def cluster(kube: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """ai-etl-prod as the seed sets it up: its three Deployments, Pod Security labels, HPAs, quota, RBAC, Ingress."""
    from kubernetes import client, config

    kube.reset()
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_KUBE", kube.airflow_connection(AI_ETL_NAMESPACE))
    with config.new_client_from_config_dict(kube.kubeconfig()) as api:
        create_ai_etl_platform(api)
        secret = {"metadata": {"name": AI_ETL_BACKEND_SECRET}, "stringData": ai_etl_backend_secrets()}
        client.CoreV1Api(api).create_namespaced_secret(AI_ETL_NAMESPACE, secret)
        for name in ("backend", "frontend", "llm-gateway"):
            container = {"name": name, "image": f"registry.example.com/ai-etl/{name}:1.0.0"}
            if name == "backend":
                container["envFrom"] = [{"secretRef": {"name": "ai-etl-backend-env"}}]
            client.AppsV1Api(api).create_namespaced_deployment(AI_ETL_NAMESPACE, ai_etl_deployment(name, container))
        wait_autoscaler_ready(client.AppsV1Api(api))
        yield api


def wait_autoscaler_ready(apps: Any) -> None:
    """Until the Cluster Autoscaler's pod is ready: the stand-in plays it ready_delay after its Deployment was created."""
    from airflow_rollout.targets.kubernetes import rollout_problem

    deadline = time.monotonic() + 30
    while rollout_problem(apps.read_namespaced_deployment("cluster-autoscaler", "kube-system")) is not None:
        assert time.monotonic() < deadline, "the stand-in never made the Cluster Autoscaler ready"
        time.sleep(0.05)


def test_the_seed_s_kubernetes_items_are_automated() -> None:
    assert set(kubernetes_items()) == {
        "Use Kubernetes Secrets or AWS Secrets Manager",
        "Set resource quotas",
        "Create service accounts",
        "Configure role bindings",
        "Limit pod security policies",
        "Enable Pod Security Standards",
        "**Set resource limits**",
        "**Configure autoscaling**",
        "**Configure Ingress**",
        "**Configure log levels**",
        "**Configure feature flags**",
        "Configure certificate auto-renewal",
        "Install cert-manager",
        "Configure certificate issuer",
        "Test SSL certificate renewal",
        "Set up IP-based rate limiting",
        "Configure burst limits",
        "Minimum 3 master nodes",
        "Minimum 3 worker nodes",
        "Use CSI drivers for cloud storage",
        "Configure storage classes",
        "Set up volume snapshots",
        "Volume snapshots",
        "Configure service discovery",
        "Set up recording rules",
        "Configure alerting rules",
        "Deploy Fluentd/Fluent Bit",
        "Set up ZooKeeper cluster (3+ nodes)",
        "Set up Redis Sentinel for HA",
        "Configure node autoscaling",
        "Kafka",
        "MinIO",
        "**Generate strong JWT secrets**",
        "Rotate secrets regularly (90 days recommended)",
        "**Set all required environment variables**",
    }


def test_every_kubernetes_item_passes_on_the_namespace_the_seed_sets_up(cluster: Any) -> None:
    for text, check in kubernetes_items().items():
        evidence = evaluate(context(SYSTEM), check)
        assert evidence.passed, f"{text}: {evidence.detail}"
        assert evidence.detail.startswith("GET /ap"), evidence.detail
        assert "via ai_etl_kube" in evidence.detail


def replace_in(api: Any, plural_path: str, name: str, change: Any) -> None:
    """Delete the object and create it again changed: the stored kinds are kept as created."""
    obj = api.call_api(f"{plural_path}/{name}", "GET", auth_settings=["BearerToken"], response_types_map={200: "object"})[0]
    api.call_api(f"{plural_path}/{name}", "DELETE", auth_settings=["BearerToken"], response_types_map={200: "object"})
    change(obj)
    obj["metadata"] = {"name": name}
    api.call_api(plural_path, "POST", body=obj, auth_settings=["BearerToken"], response_types_map={201: "object"})


def patch_deployment(api: Any, name: str, patch: dict[str, Any], namespace: str = AI_ETL_NAMESPACE) -> None:
    from kubernetes import client

    client.AppsV1Api(api).patch_namespaced_deployment(name, namespace, patch)


NS = f"/namespaces/{AI_ETL_NAMESPACE}"


def no_limits(api: Any) -> None:
    containers = [{"name": "frontend", "resources": {"requests": {"cpu": "250m"}, "limits": None}}]
    patch_deployment(api, "frontend", {"spec": {"template": {"spec": {"containers": containers}}}})


def privileged(api: Any) -> None:
    containers = [{"name": "llm-gateway", "securityContext": {"allowPrivilegeEscalation": True}}]
    patch_deployment(api, "llm-gateway", {"spec": {"template": {"spec": {"containers": containers}}}})


def debug_logging(api: Any) -> None:
    env = [{"name": "LOG_LEVEL", "value": "DEBUG"}]
    patch_deployment(api, "llm-gateway", {"spec": {"template": {"spec": {"containers": [{"name": "llm-gateway", "env": env}]}}}})


def without_drift_monitoring(api: Any) -> None:
    """A patch merges env entries by name, so the flag is taken out of a replaced Deployment."""

    def drop_flag(deployment: dict[str, Any]) -> None:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        container["env"] = [e for e in container["env"] if e["name"] != "ENABLE_DRIFT_MONITORING"]

    replace_in(api, f"/apis/apps/v1{NS}/deployments", "backend", drop_flag)


READY = {"type": "Ready", "status": "True", "reason": "Ready"}
NOT_READY = {"type": "Ready", "status": "False", "reason": "Failed", "message": "the ACME order failed"}


def replace_certificate_status(api: Any, status: dict[str, Any] | None) -> None:
    """The ingress certificate as cert-manager leaves it when issuing failed (status given) or before it ran (None)."""
    replace_in(
        api, f"/apis/cert-manager.io/v1{NS}/certificates", "ai-etl-tls", lambda o: o.update(status=status) if status else o.pop("status")
    )


def without_annotation(annotation: str) -> Any:
    """The Ingress created again with its annotations but one (replace_in keeps only the name of the metadata)."""

    def breaks(api: Any) -> None:
        path = f"/apis/networking.k8s.io/v1{NS}/ingresses"
        [ingress] = ai_etl_objects()["ingresses"]
        api.call_api(f"{path}/ai-etl", "DELETE", auth_settings=["BearerToken"], response_types_map={200: "object"})
        annotations = {key: value for key, value in ingress["metadata"]["annotations"].items() if key != annotation}
        create(api, path, {**ingress, "metadata": {"name": "ai-etl", "annotations": annotations}})

    return breaks


def snapshot_not_ready(api: Any) -> None:
    replace_in(
        api,
        f"/apis/snapshot.storage.k8s.io/v1{NS}/volumesnapshots",
        "backend-uploads-daily",
        lambda o: o["status"].update(readyToUse=False),
    )


def only_rules_of(kind: str) -> Any:
    """The namespace's PrometheusRule keeps only its rules of one kind (record or alert)."""

    def breaks(api: Any) -> None:
        def keep(rule_set: dict[str, Any]) -> None:
            for group in rule_set["spec"]["groups"]:
                group["rules"] = [rule for rule in group["rules"] if kind in rule]

        replace_in(api, f"/apis/monitoring.coreos.com/v1{NS}/prometheusrules", "ai-etl", keep)

    return breaks


def autoscaler_scaled_to_zero(api: Any) -> None:
    """Nothing adds nodes: the Cluster Autoscaler scaled to zero, its pods gone.

    The controller reports a scale-down a moment after the patch, as a real one does: until it has observed the
    new generation, the status still counts the old pod ready, and the check would fail for another reason.
    """
    from kubernetes import client

    apps = client.AppsV1Api(api)
    patch_deployment(api, "cluster-autoscaler", {"spec": {"replicas": 0}}, "kube-system")
    deadline = time.monotonic() + 30
    while True:
        deployment = apps.read_namespaced_deployment("cluster-autoscaler", "kube-system")
        if deployment.status.observed_generation == deployment.metadata.generation and not deployment.status.ready_replicas:
            return
        assert time.monotonic() < deadline, "the stand-in never scaled the Cluster Autoscaler down"
        time.sleep(0.05)


def written_days_ago(api: Any, days: float) -> None:
    """The backend Secret's writer of its values stamped `days` ago (a client may reset managedFields, as here)."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    [writer] = core.read_namespaced_secret(AI_ETL_BACKEND_SECRET, AI_ETL_NAMESPACE).metadata.managed_fields
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {**api.sanitize_for_serialization(writer), "time": stamp}
    core.patch_namespaced_secret(AI_ETL_BACKEND_SECRET, AI_ETL_NAMESPACE, {"metadata": {"managedFields": [entry]}})


def statefulset_ready(name: str, ready: int) -> Any:
    """The StatefulSet with fewer pods ready than it has (a pod crashing, or its node gone)."""
    return lambda api: replace_in(api, f"/apis/apps/v1{NS}/statefulsets", name, lambda o: o["status"].update(readyReplicas=ready))


def create(api: Any, path: str, obj: dict[str, Any]) -> None:
    api.call_api(path, "POST", body=obj, auth_settings=["BearerToken"], response_types_map={201: "object"})


BREAKAGES = {
    "Configure certificate auto-renewal": (
        lambda api: replace_certificate_status(api, {"conditions": [NOT_READY], "notAfter": "2026-12-05T00:00:00Z"}),
        "does not contain it",
    ),
    # issued once, and its renewal failed since
    "Test SSL certificate renewal": (
        lambda api: replace_certificate_status(
            api, {"conditions": [READY], "revision": 1, "lastFailureTime": "2026-12-01T00:00:00Z", "failedIssuanceAttempts": 1}
        ),
        "revision = 1 (below the bound)",
    ),
    "Install cert-manager": (lambda api: replace_certificate_status(api, None), "items[ai-etl-tls].status missing"),
    "Configure certificate issuer": (
        lambda api: replace_in(
            api, "/apis/cert-manager.io/v1/clusterissuers", "letsencrypt-prod", lambda o: o["status"].update(conditions=[NOT_READY])
        ),
        "does not contain it",
    ),
    "Set up IP-based rate limiting": (without_annotation("nginx.ingress.kubernetes.io/limit-rps"), "limit-rps missing"),
    "Configure burst limits": (without_annotation("nginx.ingress.kubernetes.io/limit-burst-multiplier"), "limit-burst-multiplier missing"),
    "Minimum 3 master nodes": (
        lambda api: api.call_api(
            "/api/v1/nodes/control-plane-3", "DELETE", auth_settings=["BearerToken"], response_types_map={200: "object"}
        ),
        "found 2 value(s)",
    ),
    "Minimum 3 worker nodes": (
        lambda api: api.call_api("/api/v1/nodes/worker-2", "DELETE", auth_settings=["BearerToken"], response_types_map={200: "object"}),
        "2 branch(es) without it",
    ),
    "Use CSI drivers for cloud storage": (
        lambda api: create(
            api, "/api/v1/persistentvolumes", {"metadata": {"name": "local-scratch"}, "spec": {"hostPath": {"path": "/srv/scratch"}}}
        ),
        "items[local-scratch].spec.csi missing",
    ),
    "Configure storage classes": (
        lambda api: create(
            api,
            f"/api/v1{NS}/persistentvolumeclaims",
            {"metadata": {"name": "exports"}, "spec": {"storageClassName": "fast"}, "status": {"phase": "Pending"}},
        ),
        '"Pending" (differs)',
    ),
    "Set up volume snapshots": (snapshot_not_ready, "readyToUse = false (differs)"),
    "Volume snapshots": (snapshot_not_ready, "readyToUse = false (differs)"),
    "Configure service discovery": (
        lambda api: api.call_api(
            f"/apis/monitoring.coreos.com/v1{NS}/servicemonitors/llm-gateway",
            "DELETE",
            auth_settings=["BearerToken"],
            response_types_map={200: "object"},
        ),
        'FAILED, expected a value, 1+ of them equals "llm-gateway"',
    ),
    "Set up recording rules": (only_rules_of("alert"), "record: FAILED"),
    "Configure alerting rules": (only_rules_of("record"), "alert: FAILED"),
    # one of the three workers has no ready Fluent Bit pod: its node's logs are not collected
    "Deploy Fluentd/Fluent Bit": (
        lambda api: replace_in(
            api,
            "/apis/apps/v1/namespaces/logging/daemonsets",
            "fluent-bit",
            lambda o: o["status"].update(numberReady=2, numberAvailable=2, numberUnavailable=1),
        ),
        "status.numberUnavailable = 1 (present)",
    ),
    # one ZooKeeper member not ready: the ensemble has two of its three
    "Set up ZooKeeper cluster (3+ nodes)": (statefulset_ready("zookeeper", 2), "status.readyReplicas = 2 (differs)"),
    # Redis without its sentinel containers: no one fails the master over
    "Set up Redis Sentinel for HA": (
        lambda api: replace_in(
            api,
            f"/apis/apps/v1{NS}/statefulsets",
            "redis-node",
            lambda o: o["spec"]["template"]["spec"].update(containers=[{"name": "redis", "image": "docker.io/bitnami/redis:latest"}]),
        ),
        '1+ of them equals "sentinel"',
    ),
    "Configure node autoscaling": (autoscaler_scaled_to_zero, "status.readyReplicas missing"),
    "Kafka": (statefulset_ready("kafka", 2), "status.readyReplicas = 2 (differs)"),
    "MinIO": (statefulset_ready("minio", 3), "status.readyReplicas = 3 (differs)"),
    # the JWT secret left as the example's placeholder
    "**Generate strong JWT secrets**": (
        lambda api: replace_in(
            api, f"/api/v1{NS}/secrets", AI_ETL_BACKEND_SECRET, lambda o: o.update(data={**o["data"], "JWT_SECRET_KEY": "Y2hhbmdlLW1l"})
        ),
        "data.JWT_SECRET_KEY.length = 9 (below the bound)",
    ),
    # the values last written 91 days ago, as the managedFields of a Secret never rotated since show it
    "Rotate secrets regularly (90 days recommended)": (
        lambda api: written_days_ago(api, 91),
        "(91.0 days before the run)",
    ),
    "**Configure log levels**": (debug_logging, "does not contain it"),
    "**Configure feature flags**": (without_drift_monitoring, "ENABLE_DRIFT_MONITORING"),
    "Use Kubernetes Secrets or AWS Secrets Manager": (
        lambda api: patch_deployment(
            api, "backend", {"spec": {"template": {"spec": {"containers": [{"name": "backend", "envFrom": None}]}}}}
        ),
        "envFrom missing",
    ),
    "**Set resource limits**": (no_limits, "frontend"),
    "**Configure autoscaling**": (
        lambda api: replace_in(
            api, f"/apis/autoscaling/v2{NS}/horizontalpodautoscalers", "backend", lambda o: o["spec"].update(minReplicas=1)
        ),
        "minReplicas",
    ),
    "Set resource quotas": (
        lambda api: replace_in(api, f"/api/v1{NS}/resourcequotas", "ai-etl-quota", lambda o: o["spec"]["hard"].pop("limits.memory")),
        "limits.memory missing",
    ),
    "Create service accounts": (
        lambda api: patch_deployment(api, "backend", {"spec": {"template": {"spec": {"serviceAccountName": None}}}}),
        "serviceAccountName missing",
    ),
    "Configure role bindings": (
        lambda api: replace_in(
            api,
            f"/apis/rbac.authorization.k8s.io/v1{NS}/rolebindings",
            "ai-etl-app-read",
            lambda o: o.update(subjects=[{"kind": "User", "name": "someone"}]),
        ),
        "ServiceAccount",
    ),
    "Limit pod security policies": (privileged, "allowPrivilegeEscalation = true"),
    "Enable Pod Security Standards": (None, "pod-security.kubernetes.io/enforce missing"),
    "**Configure Ingress**": (
        lambda api: replace_in(api, f"/apis/networking.k8s.io/v1{NS}/ingresses", "ai-etl", lambda o: o["spec"].pop("tls")),
        "tls missing",
    ),
    # the Anthropic key left empty in the Secret the backend takes its environment from
    "**Set all required environment variables**": (
        lambda api: replace_in(api, f"/api/v1{NS}/secrets", AI_ETL_BACKEND_SECRET, lambda o: o["data"].update(ANTHROPIC_API_KEY="")),
        "environment.ANTHROPIC_API_KEY.length = 0 (below the bound)",
    ),
}


@pytest.mark.parametrize("text", sorted(BREAKAGES), ids=lambda t: t.strip("*").lower().replace(" ", "-"))
def test_a_kubernetes_item_fails_when_the_cluster_lacks_what_it_states(cluster: Any, kube: Any, text: str) -> None:
    breaks, evidence = BREAKAGES[text]
    if breaks is None:  # the namespace never labelled: what a cluster without Pod Security admission shows
        kube.reset()
    else:
        breaks(cluster)
    found = evaluate(context(SYSTEM), kubernetes_items()[text])
    assert not found.passed
    assert "FAILED" in found.detail and evidence in found.detail, found.detail


def test_an_app_that_is_not_a_kubernetes_deployment_fails_with_the_reason() -> None:
    from airflow_rollout.config import load_profile
    from airflow_rollout.context import SystemContext

    check = KubernetesItemCheck(kind="kubernetes", app="backend", resource="deployments", expect=[{"path": ["items"]}])
    found = evaluate(SystemContext(profile=load_profile("routing-ml-platform")), check)
    assert not found.passed
    assert "not a Kubernetes Deployment" in found.detail


def test_every_kubernetes_item_has_a_failing_case() -> None:
    assert set(BREAKAGES) == set(kubernetes_items())


def test_a_secret_s_values_reach_neither_the_expectations_nor_the_evidence(cluster: Any) -> None:
    from kubernetes import client

    client.CoreV1Api(cluster).patch_namespaced_secret(
        AI_ETL_BACKEND_SECRET,
        AI_ETL_NAMESPACE,
        {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"stringData": {"JWT_SECRET_KEY": "x"}}'}}},
    )
    stored = client.CoreV1Api(cluster).read_namespaced_secret(AI_ETL_BACKEND_SECRET, AI_ETL_NAMESPACE).data["JWT_SECRET_KEY"]
    check = KubernetesItemCheck(
        kind="kubernetes",
        app="backend",
        resource="secrets",
        name=AI_ETL_BACKEND_SECRET,
        expect=[{"path": ["data"]}, {"path": ["metadata"]}],
    )
    evidence = evaluate(context(SYSTEM), check)
    assert evidence.passed, evidence.detail
    assert '"JWT_SECRET_KEY": {"length": 64, "hex": true}' in evidence.detail, evidence.detail
    assert stored not in evidence.detail and stored not in str(evidence.numbers) and "last-applied" not in evidence.detail


def test_secrets_count_as_rotated_by_a_write_of_their_values_not_of_their_labels(cluster: Any) -> None:
    """The Secret written 91 days ago: relabelling it does not make it rotated, nor a new value of one key; both do."""
    from kubernetes import client

    core = client.CoreV1Api(cluster)
    check = kubernetes_items()["Rotate secrets regularly (90 days recommended)"]
    written_days_ago(cluster, 89)
    assert evaluate(context(SYSTEM), check).passed
    written_days_ago(cluster, 91)
    labels = {"metadata": {"labels": {"rotation": "due"}}}
    core.patch_namespaced_secret(AI_ETL_BACKEND_SECRET, AI_ETL_NAMESPACE, labels, field_manager="kubectl-label")
    evidence = evaluate(context(SYSTEM), check)
    assert not evidence.passed and "(91.0 days before the run)" in evidence.detail, evidence.detail
    for key in ai_etl_backend_secrets():  # every key the Secret holds
        assert not evaluate(context(SYSTEM), check).passed  # a key not rotated yet
        rotated = {"stringData": {key: ai_etl_backend_secrets()[key]}}
        core.patch_namespaced_secret(AI_ETL_BACKEND_SECRET, AI_ETL_NAMESPACE, rotated, field_manager="external-secrets")
    evidence = evaluate(context(SYSTEM), check)
    assert evidence.passed, evidence.detail


def test_the_age_of_a_secret_is_measured_from_the_run_s_time(cluster: Any) -> None:
    """The same Secret, written now, is too old for a run 91 days later (a retry of that run measures the same)."""
    check = kubernetes_items()["Rotate secrets regularly (90 days recommended)"]
    later = dataclasses.replace(context(SYSTEM), at=datetime.now(UTC) + timedelta(days=91))
    assert evaluate(context(SYSTEM), check).passed
    assert not evaluate(later, check).passed


ENVIRONMENT_ITEM = "**Set all required environment variables**"


def backend_env(change: Any) -> Any:
    """The backend Deployment created again with its container changed."""

    def breaks(api: Any) -> None:
        replace_in(api, f"/apis/apps/v1{NS}/deployments", "backend", lambda o: change(o["spec"]["template"]["spec"]["containers"][0]))

    return breaks


def drop_env(name: str) -> Any:
    return backend_env(lambda c: c.update(env=[e for e in c["env"] if e["name"] != name]))


@pytest.mark.parametrize(
    ("breaks", "evidence"),
    [
        # a service address the Deployment does not set
        (drop_env("MINIO_ENDPOINT"), "environment.MINIO_ENDPOINT missing"),
        # set, but to nothing
        (backend_env(lambda c: c["env"].append({"name": "REDIS_URL", "value": ""})), "environment.REDIS_URL.length = 0"),
        # envFrom naming a Secret that does not exist: the kubelet would not start the container, none of its keys is set
        (
            backend_env(lambda c: c.update(envFrom=[{"secretRef": {"name": "ai-etl-backend-env-old"}}])),
            "environment.SECRET_KEY missing",
        ),
        # the database URL taken from a key its Secret lacks: the kubelet starts no container, nothing is set
        (
            backend_env(
                lambda c: c["env"].append(
                    {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": AI_ETL_BACKEND_SECRET, "key": "DB_URL"}}}
                )
            ),
            "environment.DATABASE_URL missing",
        ),
    ],
    ids=["address-missing", "empty", "secret-missing", "key-missing"],
)
def test_the_environment_item_fails_on_a_variable_not_set(cluster: Any, breaks: Any, evidence: str) -> None:
    breaks(cluster)
    found = evaluate(context(SYSTEM), kubernetes_items()[ENVIRONMENT_ITEM])
    assert not found.passed
    assert evidence in found.detail, found.detail


def test_the_environment_gives_only_lengths_of_values_from_env_and_secrets(cluster: Any) -> None:
    from kubernetes import client

    stored = client.CoreV1Api(cluster).read_namespaced_secret(AI_ETL_BACKEND_SECRET, AI_ETL_NAMESPACE).data
    found = evaluate(context(SYSTEM), kubernetes_items()[ENVIRONMENT_ITEM])
    assert found.passed, found.detail
    assert "environment.MINIO_ENDPOINT.length = 10" in found.detail, found.detail  # minio:9000, from env
    assert "environment.JWT_SECRET_KEY.length = 64" in found.detail, found.detail  # from the Secret
    assert not any(value in found.detail for value in stored.values())
    assert "minio:9000" not in found.detail


def test_with_environment_reads_one_named_workload() -> None:
    with pytest.raises(ValueError, match="with_environment reads the pod template of one named workload"):
        KubernetesItemCheck.model_validate(
            {
                "kind": "kubernetes",
                "app": "backend",
                "resource": "secrets",
                "name": "x",
                "with_environment": True,
                "expect": [{"path": ["a"]}],
            }
        )
