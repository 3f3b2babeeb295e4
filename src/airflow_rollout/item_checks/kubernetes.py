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
last-applied annotation, which holds the values in clear, is dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

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


def without_secret_values(document: dict[str, Any]) -> dict[str, Any]:
    """A Secret (or a list of them) with each value replaced by its length and whether it is hexadecimal."""
    import base64
    import string

    for secret in document.get("items", [document]):
        values = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
        secret["data"] = {
            key: {"length": len(value), "hex": bool(value) and all(chr(b) in string.hexdigits for b in value)}
            for key, value in values.items()
        }
        secret.pop("stringData", None)
        ((secret.get("metadata") or {}).get("annotations") or {}).pop(LAST_APPLIED, None)
        for writer in (secret.get("metadata") or {}).get("managedFields") or []:  # the annotation gone, its owner goes too
            (((writer.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:annotations") or {}).pop(f"f:{LAST_APPLIED}", None)
    return document


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
    passed, detail, numbers = check_document(document, check.expect, f"GET {path} via {conn_id}", ctx.at)
    return Evidence(passed, detail, numbers)
