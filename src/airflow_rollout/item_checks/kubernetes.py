"""`kind: kubernetes`: one object (or the list of a kind) of a Kubernetes app target's namespace, read through
the provider's `KubernetesHook`, held to expectations over its spec, status or metadata.

    check:
      kind: kubernetes
      app: backend                       # a kubernetes app target: its connection and namespace
      resource: deployments
      name: backend                      # omitted: every object of the kind in the namespace, as {"items": [...]}
      expect:
        - {path: [spec, template, spec, containers, "*", resources, limits, memory]}
        - {path: [spec, replicas], at_least: 2}

What the cluster declares is what the item states (resource limits, Pod Security labels, probes, replicas,
autoscaling, network policies): a request to the service proves none of it. The cluster-scoped kinds (nodes,
persistent volumes, cert-manager's cluster issuers) are read across the cluster; the rest in the app's namespace.
A Secret's values never reach the expectations nor the evidence: each key of its `data` reads as
`{length: <bytes decoded>, hex: <all hexadecimal digits>}` (`[data, JWT_SECRET_KEY, length]`), and kubectl's
last-applied annotation, which holds the values in clear, is dropped. With `with_environment: true` a workload's each
container gains `environment`, the variables the kubelet gives it from env, envFrom and secretKeyRefs, read the same way
(`[spec, template, spec, containers, "*", environment, DATABASE_URL, length]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from airflow_rollout.config import K8sName, Name, StrictModel
from airflow_rollout.json_expectations import Expectation, check_document

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.evidence import Evidence

# plural -> the API group/version path it is served under, and whether it lives in a namespace
RESOURCES: dict[str, tuple[str, bool]] = {
    "deployments": ("/apis/apps/v1", True),
    "horizontalpodautoscalers": ("/apis/autoscaling/v2", True),
    "networkpolicies": ("/apis/networking.k8s.io/v1", True),
    "poddisruptionbudgets": ("/apis/policy/v1", True),
    "ingresses": ("/apis/networking.k8s.io/v1", True),
    "resourcequotas": ("/api/v1", True),
    "serviceaccounts": ("/api/v1", True),
    "rolebindings": ("/apis/rbac.authorization.k8s.io/v1", True),
    "namespaces": ("/api/v1", False),
    "certificates": ("/apis/cert-manager.io/v1", True),
    "clusterissuers": ("/apis/cert-manager.io/v1", False),
    "servicemonitors": ("/apis/monitoring.coreos.com/v1", True),
    "prometheusrules": ("/apis/monitoring.coreos.com/v1", True),
    "persistentvolumeclaims": ("/api/v1", True),
    "persistentvolumes": ("/api/v1", False),
    "volumesnapshots": ("/apis/snapshot.storage.k8s.io/v1", True),
    "nodes": ("/api/v1", False),
    "daemonsets": ("/apis/apps/v1", True),
    "statefulsets": ("/apis/apps/v1", True),
    "secrets": ("/api/v1", True),
}

Resource = Literal[
    "deployments",
    "horizontalpodautoscalers",
    "networkpolicies",
    "poddisruptionbudgets",
    "ingresses",
    "resourcequotas",
    "serviceaccounts",
    "rolebindings",
    "namespaces",
    "certificates",
    "clusterissuers",
    "servicemonitors",
    "prometheusrules",
    "persistentvolumeclaims",
    "persistentvolumes",
    "volumesnapshots",
    "nodes",
    "daemonsets",
    "statefulsets",
    "secrets",
]


# the kinds whose objects hold a pod template (spec.template.spec.containers)
WORKLOADS = frozenset({"deployments", "statefulsets", "daemonsets"})


class KubernetesItemCheck(StrictModel):
    """A Kubernetes object of the app target's namespace (or the namespace itself) held to expectations."""

    kind: Literal["kubernetes"]
    app: Name = Field(description="a kubernetes app target: the connection and namespace to read")
    resource: Resource
    name: K8sName | None = Field(default=None, description="the object; omitted: the list of them (namespaces: the app's own)")
    namespace: K8sName | None = Field(
        default=None, description="another namespace of the app's cluster (a log collector's); omitted: the app's own"
    )
    expect: list[Expectation] = Field(min_length=1)
    with_environment: bool = Field(
        default=False,
        description="a workload's each container gains `environment`: every variable its env and envFrom give it from values and "
        "Secrets, as the kubelet builds it, each as {length, hex} (a variable it names but cannot resolve is left out)",
    )

    @model_validator(mode="after")
    def _environment_of_one_workload(self) -> KubernetesItemCheck:
        if self.with_environment and (self.resource not in WORKLOADS or self.name is None):
            raise ValueError(f"with_environment reads the pod template of one named workload ({', '.join(sorted(WORKLOADS))})")
        return self


def resource_path(resource: str, namespace: str, name: str | None) -> str:
    """The REST path of the object (or of the list): a fixed table of kinds, names pattern-checked by the models."""
    prefix, namespaced = RESOURCES[resource]
    if resource == "namespaces":
        return f"{prefix}/namespaces/{name or namespace}"
    scope = f"/namespaces/{namespace}" if namespaced else ""
    return f"{prefix}{scope}/{resource}" + (f"/{name}" if name else "")


def read_object(conn_id: str, path: str) -> dict[str, Any]:
    """GET one path of the API server through the hook's client (its auth, TLS and kubeconfig), as a JSON document."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    api = KubernetesHook(conn_id=conn_id).api_client
    document: dict[str, Any] = api.call_api(
        path, "GET", response_types_map={200: "object"}, auth_settings=["BearerToken"], _return_http_data_only=True
    )
    return document


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def secret_value(value: bytes) -> dict[str, Any]:
    """What a check may know of a secret value: its length in bytes and whether it is all hexadecimal digits."""
    import string

    return {"length": len(value), "hex": bool(value) and all(chr(b) in string.hexdigits for b in value)}


def without_secret_values(document: dict[str, Any]) -> dict[str, Any]:
    """A Secret (or a list of them) with each value replaced by its length and whether it is hexadecimal."""
    import base64

    for secret in document.get("items", [document]):
        values = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
        secret["data"] = {key: secret_value(value) for key, value in values.items()}
        secret.pop("stringData", None)
        ((secret.get("metadata") or {}).get("annotations") or {}).pop(LAST_APPLIED, None)
        for writer in (secret.get("metadata") or {}).get("managedFields") or []:  # the annotation gone, its owner goes too
            (((writer.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:annotations") or {}).pop(f"f:{LAST_APPLIED}", None)
    return document


def add_environments(conn_id: str, namespace: str, workload: dict[str, Any]) -> None:
    """Each container of the workload's pod template gains `environment`, its variables as the kubelet sets them: envFrom's
    Secrets in order (with their prefix), then env (a value, or a Secret's key), later ones overriding; values only as
    {length, hex}. A Secret or key that is missing and not optional keeps the kubelet from starting the container: its
    environment is empty. ConfigMaps and fields, which this check does not read, give no variable: a check on one fails
    rather than guess."""
    for container in ((workload.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []:
        container["environment"] = _environment(conn_id, namespace, container)


def _environment(conn_id: str, namespace: str, container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    import base64

    from kubernetes.client.exceptions import ApiException

    def secret(name: str) -> dict[str, bytes] | None:
        try:
            data = read_object(conn_id, resource_path("secrets", namespace, name)).get("data") or {}
        except ApiException as exc:
            if exc.status != 404:  # 404: the Secret does not exist, any other answer is an error
                raise
            return None
        return {key: base64.b64decode(value) for key, value in data.items()}

    environment: dict[str, dict[str, Any]] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("secretRef")
        if ref is None:
            continue
        values = secret(str(ref.get("name", "")))
        if values is None and not ref.get("optional"):
            return {}
        environment |= {source.get("prefix", "") + key: secret_value(value) for key, value in (values or {}).items()}
    for entry in container.get("env") or []:
        if "valueFrom" not in entry:
            environment[entry["name"]] = secret_value(str(entry.get("value", "")).encode())
        elif ref := entry["valueFrom"].get("secretKeyRef"):
            value = (secret(str(ref.get("name", ""))) or {}).get(ref.get("key"))
            if value is not None:
                environment[entry["name"]] = secret_value(value)
            elif not ref.get("optional"):
                return {}
    return environment


def run(ctx: ReleaseContext, check: KubernetesItemCheck) -> Evidence:
    from airflow_rollout.evidence import Evidence

    target = next(a for a in ctx.profile.app_targets if a.name == check.app)
    conn_id, namespace = getattr(target, "conn_id", None), getattr(target, "namespace", None)
    if target.kind != "kubernetes" or not conn_id or not namespace:
        return Evidence(False, f"{check.app} is a {target.kind} app, not a Kubernetes Deployment: it has no namespace to read")
    path = resource_path(check.resource, check.namespace or namespace, check.name)
    document = read_object(conn_id, path)
    if check.resource == "secrets":
        document = without_secret_values(document)
    if check.with_environment:
        add_environments(conn_id, check.namespace or namespace, document)
    passed, detail, numbers = check_document(document, check.expect, f"GET {path} via {conn_id}", ctx.at)
    return Evidence(passed, detail, numbers)
