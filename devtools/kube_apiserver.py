"""A local stand-in for the Kubernetes API server: Deployments, Jobs, their Pods, and Secrets.

No cluster runs on this machine, so the tests of a Kubernetes deploy target point the real clients
(`kubernetes`, the cncf-kubernetes provider's `KubernetesHook`) at this server instead. It speaks the
real REST paths, field names and status semantics (plain http, any bearer token accepted):

- apps/v1 Deployments: list, create, get, replace, patch (strategic merge, JSON merge and JSON patch),
  delete, and the `status` subresource. The API server's defaults are filled in, `metadata.generation`
  counts changes of `spec`, `resourceVersion` every write (a stale one on replace answers 409 Conflict).
- batch/v1 Jobs (create, get, list, delete with `propagationPolicy`, `status`), core/v1 Pods (list with
  label and field selectors, get, delete, `log`) and Secrets (create, get, list, replace, patch, delete). A Secret's
  `metadata.managedFields` are kept as the API server keeps them for Update operations: each writer (the request's
  `fieldManager`, else its User-Agent up to the first "/") owns the fields it changed (data keys, labels, annotations,
  type), its entry's `time` the time of its last change; a writer taking a field over removes it from the others'.
  Managed fields sent in a write that differ from the stored ones replace them, as the API server allows.
- Objects that no controller acts on here, kept as created (create, get, list, delete), for the checklist's
  `kubernetes` items to read: autoscaling/v2 HorizontalPodAutoscalers, networking.k8s.io/v1 NetworkPolicies
  and Ingresses, policy/v1 PodDisruptionBudgets, core/v1 ResourceQuotas and ServiceAccounts,
  rbac.authorization.k8s.io/v1 RoleBindings, cert-manager.io/v1 Certificates and ClusterIssuers,
  monitoring.coreos.com/v1 ServiceMonitors and PrometheusRules, core/v1 PersistentVolumeClaims, PersistentVolumes
  and Nodes, snapshot.storage.k8s.io/v1 VolumeSnapshots, apps/v1 DaemonSets and StatefulSets (no pods run for them); their status is
  what the test created them with, as no controller writes it here. The cluster-scoped ones (Nodes,
  PersistentVolumes, ClusterIssuers) live under no namespace. Namespaces can be created with labels (Pod Security's
  `pod-security.kubernetes.io/enforce`); one never created still answers, with only its name label.
- `?watch=true` on the lists streams ADDED/MODIFIED/DELETED events, as `kubernetes.watch.Watch` reads them.
- A control API for tests under `/_standin/` (see `KubeApiServer` and the handler's `_control`).

The "kubelet" and the controllers:

- A Deployment's pod template is played when it is created or its template changes. When the repository
  of the first container's image is in the image map (`devtools.local_images`), ONE local process
  per Deployment plays its pods (whatever `spec.replicas` says), started with the image tag as `{version}`
  on the container's first `containerPort`, with the container's environment (plain values, Secret keys,
  `envFrom` Secrets). Local ports cannot be shared, so the old process is stopped before the new one
  starts: such a Deployment rolls out as with strategy Recreate. Readiness is the container's
  `readinessProbe` (`httpGet` or `tcpSocket`, polled every 0.2 s) or else the image's readiness path; a
  process that exits is restarted with a short back-off (CrashLoopBackOff), its pods unready meanwhile.
  Any other image becomes ready after `ready_delay` seconds, unless a test set the behaviour of that
  exact image reference: `stall` (running, never ready) or `crash` (the container keeps exiting). With
  such images the RollingUpdate strategy is followed in outline: the old pods serve until the new ones are
  ready, so restoring the previous template finds its pods still there.
- Deployment status is written as the deployment controller writes it: observedGeneration, replicas,
  updated/ready/available/unavailableReplicas (zeros omitted, as the real API omits them), conditions
  Available (MinimumReplicasAvailable / MinimumReplicasUnavailable) and Progressing (NewReplicaSetCreated,
  ReplicaSetUpdated, NewReplicaSetAvailable, or status False with ProgressDeadlineExceeded once no progress
  was made for `spec.progressDeadlineSeconds`); a Deployment scaled to zero keeps counting its pods in
  `replicas` for the test's `termination_delay` (terminating; default none). So a client that waits as `kubectl rollout status` does
  sees success, a stall or a failure as it would against a cluster.
- A Job runs its first container's `command + args` (an argument list, never a shell; `$(VAR)` expanded
  as Kubernetes does) with `run_in_image`, once per attempt, each attempt a Pod `<job>-<5 chars>` whose
  log is the attempt's stdout and stderr (readable once the attempt ended). `backoffLimit` (default 6)
  and `activeDeadlineSeconds` are honoured; the conditions are SuccessCriteriaMet + Complete, or
  FailureTarget + Failed (BackoffLimitExceeded or DeadlineExceeded). A test can make the pods of one image
  reference work a while (cluster time) before their command runs, as a long migration does, and compress
  cluster time (`time_scale`: a Job's work and its `activeDeadlineSeconds` pass that many times faster), so an
  hour's Job is simulated in seconds.

Not modelled: namespaces' lifecycle (every namespace exists), ReplicaSets as API objects, paused
Deployments, server-side apply, `minReadySeconds` beyond delaying availability, probe thresholds, RBAC.

    python -m devtools.kube_apiserver --port 8443 --image-map images.json --state-dir .state/kube
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import json
import logging
import math
import random
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import parse_qs, urlparse

from airflow_rollout.targets.compose import split_image
from devtools.local_images import LocalImage, image_process, load_image_map, run_in_image

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from airflow_rollout.targets.local_process import LocalProcessApp

log = logging.getLogger(__name__)

Json = dict[str, Any]
Behaviour = Literal["ready", "stall", "crash"]
BEHAVIOURS: tuple[str, ...] = ("ready", "stall", "crash")
POD_MARKER = "KUBE_STANDIN_POD_UID"  # in the environment of a Job's process, to find it when its pod is deleted
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated names
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_JOB_TIMEOUT_NO_DEADLINE = 24 * 3600.0
PROBE_INTERVAL = 0.2


@dataclass(frozen=True)
class _Kind:
    plural: str
    kind: str
    group: str
    namespaced: bool = True
    version: str = "v1"
    stored: bool = False  # kept as created: no controller, no validation beyond the name

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `secrets`: how the API server names a resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: dict[str, _Kind] = {
    "deployments": _Kind("deployments", "Deployment", "apps"),
    "jobs": _Kind("jobs", "Job", "batch"),
    "pods": _Kind("pods", "Pod", ""),
    "secrets": _Kind("secrets", "Secret", ""),
    "horizontalpodautoscalers": _Kind("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", version="v2", stored=True),
    "networkpolicies": _Kind("networkpolicies", "NetworkPolicy", "networking.k8s.io", stored=True),
    "ingresses": _Kind("ingresses", "Ingress", "networking.k8s.io", stored=True),
    "poddisruptionbudgets": _Kind("poddisruptionbudgets", "PodDisruptionBudget", "policy", stored=True),
    "resourcequotas": _Kind("resourcequotas", "ResourceQuota", "", stored=True),
    "serviceaccounts": _Kind("serviceaccounts", "ServiceAccount", "", stored=True),
    "rolebindings": _Kind("rolebindings", "RoleBinding", "rbac.authorization.k8s.io", stored=True),
    # what cert-manager, the Prometheus Operator and the CSI snapshotter serve, and the cluster's nodes and storage:
    # stored as created, their status the test's (as the controllers that would write it are not played)
    "certificates": _Kind("certificates", "Certificate", "cert-manager.io", stored=True),
    "clusterissuers": _Kind("clusterissuers", "ClusterIssuer", "cert-manager.io", namespaced=False, stored=True),
    "servicemonitors": _Kind("servicemonitors", "ServiceMonitor", "monitoring.coreos.com", stored=True),
    "prometheusrules": _Kind("prometheusrules", "PrometheusRule", "monitoring.coreos.com", stored=True),
    "persistentvolumeclaims": _Kind("persistentvolumeclaims", "PersistentVolumeClaim", "", stored=True),
    "persistentvolumes": _Kind("persistentvolumes", "PersistentVolume", "", namespaced=False, stored=True),
    "volumesnapshots": _Kind("volumesnapshots", "VolumeSnapshot", "snapshot.storage.k8s.io", stored=True),
    "nodes": _Kind("nodes", "Node", "", namespaced=False, stored=True),
    # a log collector's DaemonSet (Fluent Bit): stored, its status the test's, as no pods are run for it
    "daemonsets": _Kind("daemonsets", "DaemonSet", "apps", stored=True),
    # the supporting services' StatefulSets (Kafka, MinIO, ZooKeeper, Redis with Sentinel): stored, their status the test's
    "statefulsets": _Kind("statefulsets", "StatefulSet", "apps", stored=True),
}


class ApiError(Exception):
    """An answer other than success: becomes a `Status` object with this code and reason."""

    def __init__(self, code: int, reason: str, message: str, details: Json | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Json:
        body: Json = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _not_found(kind: _Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', {"name": name, "group": kind.group, "kind": kind.plural})


def _invalid(kind: _Kind, name: str, causes: list[str]) -> ApiError:
    title = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
    return ApiError(
        422,
        "Invalid",
        f'{title} "{name}" is invalid: {"; ".join(causes)}',
        {"name": name, "group": kind.group, "kind": kind.kind, "causes": [{"message": c} for c in causes]},
    )


def now_rfc3339(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at))


def _field_paths(obj: Json) -> dict[tuple[str, ...], Any]:
    """A Secret's fields that managedFields track, by path: each data key, label and annotation, and its type."""
    metadata = obj.get("metadata") or {}
    paths: dict[tuple[str, ...], Any] = {("data", key): value for key, value in (obj.get("data") or {}).items()}
    paths |= {("metadata", part, key): value for part in ("labels", "annotations") for key, value in (metadata.get(part) or {}).items()}
    return paths | ({("type",): obj["type"]} if "type" in obj else {})


def _fields_v1(paths: set[tuple[str, ...]]) -> Json:
    """The FieldsV1 form of a set of paths: `{"f:data": {".": {}, "f:KEY": {}}, "f:type": {}}`."""
    tree: Json = {}
    for path in sorted(paths):
        node = tree
        for step in path[:-1]:
            node = node.setdefault(f"f:{step}", {".": {}} if step in ("data", "labels", "annotations") else {})
        node[f"f:{path[-1]}"] = {}
    return tree


def _paths_of(fields: Json, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The paths a FieldsV1 tree owns (its leaves)."""
    paths: set[tuple[str, ...]] = set()
    for key, child in fields.items():
        if key.startswith("f:"):
            inner = _paths_of(child, (*prefix, key[2:]))
            paths |= inner or ({(*prefix, key[2:])} if not {k for k in child if k != "."} else set())
    return paths


def managed_fields(stored: Json | None, updated: Json, manager: str) -> list[Json]:
    """`updated`'s managedFields after an Update by `manager`: it owns what it changed, stamped now; others lose that."""
    before = _field_paths(stored) if stored else {}
    after = _field_paths(updated)
    changed = {path for path, value in after.items() if before.get(path, object()) != value}
    sent = (updated.get("metadata") or {}).get("managedFields")
    kept = (stored or {}).get("metadata", {}).get("managedFields") or []
    entries = copy.deepcopy(sent if sent is not None and sent != kept else kept)
    if not changed:
        return entries
    result = []
    for entry in entries:
        owned = _paths_of(entry.get("fieldsV1") or {})
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            changed |= owned & set(after)
        elif remaining := (owned - changed) & set(after):
            result.append({**entry, "fieldsV1": _fields_v1(remaining)})
    writer = {"manager": manager, "operation": "Update", "apiVersion": "v1", "time": now_rfc3339(), "fieldsType": "FieldsV1"}
    return [*result, {**writer, "fieldsV1": _fields_v1(changed)}]


def random_suffix(length: int = 5) -> str:
    return "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(length))  # noqa: S311 - a name, not a secret


def template_hash(template: Json) -> str:
    """The `pod-template-hash` of a pod template: stable, 10 characters of Kubernetes' name alphabet."""
    digest = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        digest, index = divmod(digest, len(_SUFFIX_ALPHABET))
        chars.append(_SUFFIX_ALPHABET[index])
    return "".join(chars)


def kubeconfig(url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig (as a dict) for the stand-in at `url`, with a dummy bearer token.

    For an Airflow connection: `{"conn_type": "kubernetes", "extra": {"kube_config": <this dict>}}`
    (see `airflow_connection`); the provider's hook writes it to a file and loads it with
    `kubernetes.config.load_kube_config`.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "standin", "cluster": {"server": url}}],
        "users": [{"name": "standin", "user": {"token": "standin-token"}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin", "namespace": namespace}}],
        "current-context": "standin",
        "preferences": {},
    }


def airflow_connection(url: str, namespace: str = "default") -> str:
    """The JSON of an Airflow `kubernetes` connection to the stand-in, for `AIRFLOW_CONN_<ID>`."""
    extra = {"kube_config": kubeconfig(url, namespace), "namespace": namespace}
    return json.dumps({"conn_type": "kubernetes", "extra": extra})


# --- labels, selectors, patches --------------------------------------------------------------------


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "in":
            return labels.get(self.key) in self.values
        if self.op == "notin":
            return labels.get(self.key) not in self.values
        return (self.key in labels) == (self.op == "exists")


def parse_label_selector(text: str) -> Callable[[dict[str, str]], bool]:
    """`a=b,c!=d,e in (f,g),h notin (i),j,!k` as the API server reads `labelSelector`."""
    requirements: list[_Requirement] = []
    for term in (t.strip() for t in re.split(r",(?![^()]*\))", text) if t.strip()):
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            requirements.append(_Requirement(m.group(1), m.group(2), frozenset(v.strip() for v in m.group(3).split(","))))
        elif m := re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)", term):
            requirements.append(_Requirement(m.group(1), "notin" if m.group(2) == "!=" else "in", frozenset({m.group(3)})))
        elif m := re.fullmatch(r"!\s*([\w./-]+)", term):
            requirements.append(_Requirement(m.group(1), "!exists"))
        elif re.fullmatch(r"[\w./-]+", term):
            requirements.append(_Requirement(term, "exists"))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")

    def matches(labels: dict[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in requirements)

    return matches


def selector_matches(selector: Json, labels: dict[str, str]) -> bool:
    """A `LabelSelector` object (matchLabels, matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression.get("key", ""), expression.get("operator", ""), set(expression.get("values") or [])
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


def _field(obj: Json, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def parse_field_selector(text: str) -> Callable[[Json], bool]:
    """`metadata.name=x,status.phase!=Failed` as the API server reads `fieldSelector`."""
    terms: list[tuple[str, bool, str]] = []
    for term in (t.strip() for t in text.split(",") if t.strip()):
        m = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        terms.append((m.group(1), m.group(2) != "!=", m.group(3)))

    def matches(obj: Json) -> bool:
        return all((_field(obj, path) == value) == equal for path, equal, value in terms)

    return matches


# The patch merge keys of the fields a Deployment or Job template has (from the API's patchMergeKey tags).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def strategic_merge(original: Any, patch: Any, field_name: str = "") -> Any:  # noqa: PLR0912 - the directives of the format
    """A strategic merge patch as the API server applies it, for the built-in types served here."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result = dict(original) if isinstance(original, dict) else {}
        for key, value in patch.items():
            if key.startswith("$"):  # $retainKeys, $setElementOrder/..., $deleteFromPrimitiveList/...
                if key.startswith("$deleteFromPrimitiveList/"):
                    target = key.split("/", 1)[1]
                    result[target] = [v for v in result.get(target) or [] if v not in value]
                continue
            if value is None:
                result.pop(key, None)
            else:
                merged = strategic_merge(result.get(key), value, key)
                if merged is None:
                    result.pop(key, None)
                else:
                    result[key] = merged
        return result
    if isinstance(patch, list) and field_name in MERGE_KEYS and isinstance(original, list):
        key = MERGE_KEYS[field_name]
        if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
            return [item for item in patch if not (isinstance(item, dict) and "$patch" in item)]
        merged_list = [copy.deepcopy(item) for item in original]
        for item in patch:
            if not isinstance(item, dict):
                merged_list.append(item)
                continue
            index = next((i for i, old in enumerate(merged_list) if isinstance(old, dict) and old.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    merged_list.pop(index)
            elif index is None:
                merged_list.append(strategic_merge({}, item))
            else:
                merged_list[index] = strategic_merge(merged_list[index], item)
        return merged_list
    return copy.deepcopy(patch)


def merge_patch(original: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(document: Any, operations: list[Json]) -> Any:
    """RFC 6902 JSON patch; raises ValueError on a bad or failing operation."""
    doc = copy.deepcopy(document)

    def parent(parts: list[str]) -> tuple[Any, str]:
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(path: str) -> Any:
        node = doc
        for part in _pointer(path):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def remove(path: str) -> Any:
        container, last = parent(_pointer(path))
        return container.pop(int(last)) if isinstance(container, list) else container.pop(last)

    def add(path: str, value: Any) -> None:
        nonlocal doc
        parts = _pointer(path)
        if not parts:
            doc = value
            return
        container, last = parent(parts)
        if isinstance(container, list):
            container.insert(len(container) if last == "-" else int(last), value)
        elif isinstance(container, dict):
            container[last] = value
        else:
            raise ValueError(f"cannot add at {path}")

    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError(f"invalid JSON patch operation {op!r}")
        try:
            kind, path = op["op"], op["path"]
            if kind == "add":
                add(path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(path)
            elif kind == "replace":
                remove(path)
                add(path, copy.deepcopy(op["value"]))
            elif kind == "move":
                add(path, remove(op["from"]))
            elif kind == "copy":
                add(path, copy.deepcopy(get(op["from"])))
            elif kind == "test":
                if get(path) != op["value"]:
                    raise ValueError(f"testing value {path} failed")
            else:
                raise ValueError(f"unexpected kind of operation {kind!r}")
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"{op['op']} operation does not apply: doc is missing path: {op['path']}: {exc}") from None
    return doc


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion in env values, command and args (`$$(VAR)` stays literal)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


# --- defaults and validation ------------------------------------------------------------------------


def _default_container(container: Json) -> None:
    image = str(container.get("image", ""))
    container.setdefault("imagePullPolicy", "Always" if split_image(image)[1] == "latest" and "@" not in image else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
                probe.setdefault(key, value)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")
                probe["httpGet"].setdefault("path", "/")


def _default_pod_spec(spec: Json, restart_policy: str) -> None:
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        if isinstance(container, dict):
            _default_container(container)


def _validate_containers(spec: Any, where: str) -> list[str]:
    problems = []
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not containers:
        return [f"{where}.containers: Required value"]
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or not container.get("name"):
            problems.append(f"{where}.containers[{i}].name: Required value")
        elif not container.get("image"):
            problems.append(f"{where}.containers[{i}].image: Required value")
    return problems


def _validate_name(name: Any) -> list[str]:
    if not name:
        return ["metadata.name: Required value: name or generateName is required"]
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [
            f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ]
    return []


def default_deployment(obj: Json) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _default_pod_spec(template.setdefault("spec", {}), "Always")


def validate_deployment(obj: Json) -> list[str]:
    spec = obj.get("spec") or {}
    problems = _validate_name(obj.get("metadata", {}).get("name"))
    selector = spec.get("selector")
    labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    if not selector:
        problems.append("spec.selector: Required value")
    elif not selector_matches(selector, labels):
        problems.append(f"spec.template.metadata.labels: Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`")
    if int(spec.get("replicas", 1)) < 0:
        problems.append("spec.replicas: Invalid value: must be greater than or equal to 0")
    problems += _validate_containers((spec.get("template") or {}).get("spec"), "spec.template.spec")
    if spec.get("template", {}).get("spec", {}).get("restartPolicy", "Always") != "Always":
        problems.append('spec.template.spec.restartPolicy: Unsupported value: supported values: "Always"')
    return problems


def default_job(obj: Json, uid: str) -> None:
    spec = obj.setdefault("spec", {})
    name = obj["metadata"]["name"]
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    generated = {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name, "controller-uid": uid, "job-name": name}
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    template = spec.setdefault("template", {})
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **generated}
    obj["metadata"]["labels"] = {
        **{k: v for k, v in generated.items() if "job-name" in k or "controller" in k},
        **(obj["metadata"].get("labels") or {}),
    }
    _default_pod_spec(template.setdefault("spec", {}), "Never")


def validate_job(obj: Json) -> list[str]:
    spec = obj.get("spec") or {}
    problems = _validate_name(obj.get("metadata", {}).get("name"))
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    problems += _validate_containers(pod_spec, "spec.template.spec")
    if pod_spec.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append(
            f'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never" (got {pod_spec.get("restartPolicy")!r})'
        )
    return problems


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        amount = total * int(value[:-1]) / 100
        return math.ceil(amount) if round_up else math.floor(amount)
    return int(value or 0)


def max_unavailable(spec: Json) -> int:
    """As the deployment controller resolves it (`MaxUnavailable` and `ResolveFenceposts`)."""
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return min(unavailable, replicas)


# --- runtime state ----------------------------------------------------------------------------------


@dataclass
class _ReplicaSet:
    name: str
    hash: str
    template: Json
    revision: int
    pod_names: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ready_since: float | None = None
    running: bool = False
    waiting_reason: str | None = None  # CrashLoopBackOff, CreateContainerConfigError, ContainerCreating
    waiting_message: str = ""
    restarts: int = 0
    log_path: Path | None = None


@dataclass
class _DeploymentRuntime:
    namespace: str
    name: str
    uid: str
    replica_sets: dict[str, _ReplicaSet] = field(default_factory=dict)
    current: _ReplicaSet | None = None
    old: _ReplicaSet | None = None  # the previous pods, still serving during a rolling update
    cancel: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one worker at a time touches the process
    app: LocalProcessApp | None = None
    pending_reason: tuple[str, str] | None = None  # Progressing reason and message for the next status
    progress_at: float = field(default_factory=time.time)
    zero: bool = False  # scaled to zero replicas: nothing runs
    terminating: tuple[int, float] = (0, 0.0)  # after a scale to zero: pods still terminating, until when
    deleted: bool = False


@dataclass
class _JobRuntime:
    namespace: str
    name: str
    uid: str
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    logs: dict[str, str] = field(default_factory=dict)  # pod name -> stdout+stderr


class EnvNotReadyError(Exception):
    """A Secret (or key) a container's environment refers to does not exist (CreateContainerConfigError)."""


class Cluster:
    """The objects, the controllers and the kubelet. Thread-safe; the HTTP handler calls into it."""

    def __init__(
        self,
        *,
        image_map: dict[str, LocalImage],
        state_dir: Path,
        ready_delay: float = 0.5,
        job_backoff: float = 0.2,
        time_scale: float = 1.0,
    ) -> None:
        self.image_map = image_map
        self.state_dir = state_dir
        self.ready_delay = ready_delay
        self.termination_delay = 0.0  # seconds the pods of a Deployment scaled to zero take to terminate
        self.job_backoff = job_backoff
        self.time_scale = time_scale  # real seconds per second of cluster time, for a Job's work and deadline
        self.behaviours: dict[str, Behaviour] = {}
        self.job_work: dict[str, float] = {}  # image reference -> cluster seconds a Job pod works before its command
        self.lock = threading.RLock()
        self.objects: dict[str, dict[tuple[str, str], Json]] = {plural: {} for plural in KINDS}
        self.namespace_labels: dict[str, dict[str, str]] = {}  # the namespaces created through the API
        self.deployments: dict[tuple[str, str], _DeploymentRuntime] = {}
        self.jobs: dict[tuple[str, str], _JobRuntime] = {}
        self.retired: list[_DeploymentRuntime] = []  # deleted Deployments whose process is being stopped
        self._rv = 1
        self.closing = threading.Event()
        self._controller = threading.Thread(target=self._control_loop, name="kube-standin-controller", daemon=True)
        self._controller.start()

    # -- storage

    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def _present(self, kind: _Kind, obj: Json) -> Json:
        shown = copy.deepcopy(obj)
        if not kind.namespaced:  # kept under the namespace "" here; the API shows a cluster-scoped object without one
            shown["metadata"].pop("namespace", None)
        return {"kind": kind.kind, "apiVersion": kind.api_version, **shown}

    def get(self, plural: str, namespace: str, name: str) -> Json:
        kind = KINDS[plural]
        with self.lock:
            if plural == "pods" and (namespace, name) not in self.objects["pods"]:
                pod = self._deployment_pods(namespace).get(name)
                if pod is None:
                    raise _not_found(kind, name)
                return self._present(kind, pod)
            obj = self.objects[plural].get((namespace, name))
            if obj is None:
                raise _not_found(kind, name)
            return self._present(kind, obj)

    def list_items(self, plural: str, namespace: str | None, label_selector: str = "", field_selector: str = "") -> list[Json]:
        labels_ok = parse_label_selector(label_selector)
        fields_ok = parse_field_selector(field_selector)
        with self.lock:
            items = [obj for (ns, _), obj in self.objects[plural].items() if namespace is None or ns == namespace]
            if plural == "pods":
                for ns in {key[0] for key in self.deployments} if namespace is None else {namespace}:
                    items += self._deployment_pods(ns).values()
            items = [copy.deepcopy(o) for o in items if labels_ok(o["metadata"].get("labels") or {}) and fields_ok(o)]
        items = sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        for obj in items if not KINDS[plural].namespaced else []:
            obj["metadata"].pop("namespace")
        return items

    def list_object(self, plural: str, namespace: str | None, label_selector: str = "", field_selector: str = "") -> Json:
        kind = KINDS[plural]
        items = self.list_items(plural, namespace, label_selector, field_selector)
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": self.resource_version},
            "items": items,
        }

    def _new_metadata(self, obj: Json, namespace: str) -> Json:
        metadata: Json = obj.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + random_suffix()
        metadata["namespace"] = namespace
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = now_rfc3339()
        metadata["resourceVersion"] = self.next_rv()
        for key in ("deletionTimestamp", "selfLink"):
            metadata.pop(key, None)
        return metadata

    def create(self, plural: str, namespace: str, body: Json, *, manager: str = "") -> Json:
        kind = KINDS[plural]
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        body_namespace = (body.get("metadata") or {}).get("namespace")
        if body_namespace and body_namespace != namespace:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        obj = {k: v for k, v in copy.deepcopy(body).items() if k not in ("kind", "apiVersion")}
        with self.lock:
            metadata = self._new_metadata(obj, namespace)
            name = metadata.get("name", "")
            if plural == "deployments":
                default_deployment(obj)
                problems = validate_deployment(obj)
                metadata["generation"] = 1
                obj["status"] = {}
            elif plural == "jobs":
                problems = validate_job(obj)
                if not problems:
                    default_job(obj, metadata["uid"])
                metadata["generation"] = 1
                obj["status"] = {}
            elif plural == "secrets":
                problems = _validate_name(name)
                self._normalise_secret(obj)
                metadata["managedFields"] = managed_fields(None, obj, manager)
            elif kind.stored:
                problems = _validate_name(name)
            else:
                raise ApiError(405, "MethodNotAllowed", f"create is not supported for {plural} here")
            if problems:
                raise _invalid(kind, name, problems)
            if (namespace, name) in self.objects[plural]:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{kind.qualified} "{name}" already exists',
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
            self.objects[plural][(namespace, name)] = obj
            if plural == "deployments":
                self.deployments[(namespace, name)] = _DeploymentRuntime(namespace=namespace, name=name, uid=metadata["uid"])
            elif plural == "jobs":
                self._start_job(obj)
            return self._present(kind, obj)

    @staticmethod
    def _normalise_secret(obj: Json) -> None:
        data = dict(obj.get("data") or {})
        for key, value in (obj.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise _invalid(KINDS["secrets"], obj["metadata"].get("name", ""), [f"data[{key}]: Invalid value: not base64"]) from None
        obj["data"] = data
        obj.setdefault("type", "Opaque")

    def replace(self, plural: str, namespace: str, name: str, body: Json, *, subresource: str = "", manager: str = "") -> Json:  # noqa: PLR0912
        """PUT: the whole object (status ignored), or with subresource `status` only the status."""
        kind = KINDS[plural]
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not a JSON object")
        with self.lock:
            stored = self.objects[plural].get((namespace, name))
            if stored is None:
                raise _not_found(kind, name)
            body_metadata = body.get("metadata") or {}
            if body_metadata.get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            wanted_rv = body_metadata.get("resourceVersion")
            if wanted_rv and wanted_rv != stored["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
            updated = copy.deepcopy(stored)
            if subresource == "status":
                updated["status"] = copy.deepcopy(body.get("status") or {})
            else:
                for key in ("labels", "annotations", "finalizers", "ownerReferences"):
                    if key in body_metadata:
                        updated["metadata"][key] = copy.deepcopy(body_metadata[key])
                    else:
                        updated["metadata"].pop(key, None)
                if plural == "secrets":
                    for key in ("data", "stringData", "type", "immutable"):
                        updated.pop(key, None)
                        if key in body:
                            updated[key] = copy.deepcopy(body[key])
                    self._normalise_secret(updated)
                    updated["metadata"]["managedFields"] = managed_fields(
                        stored, {**updated, "metadata": {**updated["metadata"], **body_metadata}}, manager
                    )
                else:
                    updated["spec"] = copy.deepcopy(body.get("spec") or {})
                    self._check_spec_update(plural, stored, updated)
            updated["metadata"]["resourceVersion"] = self.next_rv()
            self.objects[plural][(namespace, name)] = updated
            return self._present(kind, updated)

    def _check_spec_update(self, plural: str, stored: Json, updated: Json) -> None:
        kind = KINDS[plural]
        name = stored["metadata"]["name"]
        if plural == "deployments":
            default_deployment(updated)
            problems = validate_deployment(updated)
            if updated["spec"].get("selector") != stored["spec"].get("selector"):
                problems.append(f"spec.selector: Invalid value: {json.dumps(updated['spec'].get('selector'))}: field is immutable")
        elif plural == "jobs":
            updated_template = updated["spec"].get("template")
            problems = [] if updated_template == stored["spec"].get("template") else ["spec.template: Invalid value: field is immutable"]
            for key, value in stored["spec"].items():
                updated["spec"].setdefault(key, value)
        else:
            raise ApiError(405, "MethodNotAllowed", f"update is not supported for {plural} here")
        if problems:
            raise _invalid(kind, name, problems)
        if updated["spec"] != stored["spec"]:
            updated["metadata"]["generation"] = int(stored["metadata"].get("generation", 1)) + 1

    def patch(  # noqa: PLR0912
        self, plural: str, namespace: str, name: str, content_type: str, raw: bytes, *, subresource: str = "", manager: str = ""
    ) -> Json:
        kind = KINDS[plural]
        try:
            patch = json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"error decoding patch: {exc}") from None
        with self.lock:
            stored = self.objects[plural].get((namespace, name))
            if stored is None:
                raise _not_found(kind, name)
            current = self._present(kind, stored)
            try:
                if content_type == "application/strategic-merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("json: cannot unmarshal array into Go value of type map[string]interface {}")
                    result = strategic_merge(current, patch)
                elif content_type == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("json: cannot unmarshal array into Go value of type map[string]interface {}")
                    result = merge_patch(current, patch)
                elif content_type == "application/json-patch+json":
                    if not isinstance(patch, list):
                        raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
                    result = json_patch(current, patch)
                else:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, "
                        f'application/merge-patch+json, application/strategic-merge-patch+json (got "{content_type}")',
                    )
            except ValueError as exc:
                raise ApiError(422, "Invalid", f'{kind.qualified} "{name}" is invalid: {exc}') from None
            if not isinstance(result, dict):
                raise ApiError(422, "Invalid", f'{kind.qualified} "{name}" is invalid: the patch did not result in an object')
            metadata = result.get("metadata") or {}
            for immutable in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                if immutable in stored["metadata"]:
                    metadata[immutable] = stored["metadata"][immutable]
            if metadata.get("resourceVersion") != stored["metadata"]["resourceVersion"] and not _patch_sets_rv(patch):
                metadata["resourceVersion"] = stored["metadata"]["resourceVersion"]
            result["metadata"] = metadata
            return self.replace(plural, namespace, name, result, subresource=subresource, manager=manager)

    def delete(self, plural: str, namespace: str, name: str, propagation: str | None) -> Json:
        kind = KINDS[plural]
        with self.lock:
            stored = self.objects[plural].pop((namespace, name), None)
            if stored is None and plural == "pods":
                raise ApiError(405, "MethodNotAllowed", "the pods of a Deployment are deleted by changing the Deployment here")
            if stored is None:
                raise _not_found(kind, name)
            if plural == "deployments":
                self._retire_deployment(self.deployments.pop((namespace, name)))
            elif plural == "jobs":
                runtime = self.jobs.pop((namespace, name), None)
                if runtime is not None:
                    runtime.cancel.set()
                policy = propagation or "Orphan"  # batch/v1 Jobs default to orphaning their pods
                for key, pod in list(self.objects["pods"].items()):
                    owners = pod["metadata"].get("ownerReferences") or []
                    if not any(owner.get("uid") == stored["metadata"]["uid"] for owner in owners):
                        continue
                    if policy in ("Background", "Foreground"):
                        del self.objects["pods"][key]
                        _kill_pod_processes(pod["metadata"]["uid"])
                    else:
                        pod["metadata"].pop("ownerReferences", None)
                        pod["metadata"]["resourceVersion"] = self.next_rv()
            elif plural == "pods":
                _kill_pod_processes(stored["metadata"]["uid"])
            else:
                self.next_rv()
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "group": kind.group, "kind": kind.plural, "uid": stored["metadata"]["uid"]},
            }

    def pod_log(self, namespace: str, name: str, tail_lines: int | None) -> str:
        with self.lock:
            pod = self.objects["pods"].get((namespace, name))
            text: str | None = None
            if pod is not None:
                text = next((rt.logs.get(name, "") for rt in self.jobs.values() if name in rt.logs), "")
            else:
                for runtime in self.deployments.values():
                    for rs in (runtime.current, runtime.old):
                        if rs is not None and name in rs.pod_names and runtime.namespace == namespace:
                            path = rs.log_path
                            text = path.read_text(errors="replace") if path is not None and path.exists() else ""
            if text is None:
                raise _not_found(KINDS["pods"], name)
        if tail_lines is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail_lines:]) if tail_lines > 0 else ""
        return text

    # -- secrets into environments

    def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        secret = self.objects["secrets"].get((namespace, name))
        if secret is None:
            return None
        return {key: base64.b64decode(value).decode(errors="replace") for key, value in (secret.get("data") or {}).items()}

    def resolve_env(self, namespace: str, pod_name: str, container: Json) -> dict[str, str]:  # noqa: PLR0912 - one branch a source
        """The container's environment as the kubelet builds it; raises EnvNotReadyError for a missing Secret or key."""
        env: dict[str, str] = {}
        with self.lock:
            for source in container.get("envFrom") or []:
                ref = source.get("secretRef")
                if not ref:
                    if source.get("configMapRef") and not source["configMapRef"].get("optional"):
                        raise EnvNotReadyError(
                            f'configmap "{source["configMapRef"].get("name")}" not found (ConfigMaps are not served here)'
                        )
                    continue
                values = self._secret(namespace, ref.get("name", ""))
                if values is None:
                    if ref.get("optional"):
                        continue
                    raise EnvNotReadyError(f'secret "{ref.get("name")}" not found')
                prefix = source.get("prefix", "")
                env.update({prefix + key: value for key, value in values.items()})
            for entry in container.get("env") or []:
                name = entry.get("name", "")
                if "value" in entry or not entry.get("valueFrom"):
                    env[name] = _expand(str(entry.get("value", "")), env)
                    continue
                value_from = entry["valueFrom"]
                if ref := value_from.get("secretKeyRef"):
                    values = self._secret(namespace, ref.get("name", ""))
                    if values is None or ref.get("key") not in values:
                        if ref.get("optional"):
                            continue
                        missing = (
                            f'secret "{ref.get("name")}" not found'
                            if values is None
                            else f"couldn't find key {ref.get('key')} in Secret {namespace}/{ref.get('name')}"
                        )
                        raise EnvNotReadyError(missing)
                    env[name] = values[ref["key"]]
                elif ref := value_from.get("fieldRef"):
                    env[name] = {
                        "metadata.name": pod_name,
                        "metadata.namespace": namespace,
                        "status.podIP": "127.0.0.1",
                        "status.hostIP": "127.0.0.1",
                        "spec.nodeName": "standin-node",
                    }.get(ref.get("fieldPath", ""), "")
                elif value_from.get("configMapKeyRef", {}).get("optional"):
                    continue
                else:
                    raise EnvNotReadyError(f"env {name}: only secretKeyRef and fieldRef are served here")
        env.setdefault("HOSTNAME", pod_name)
        return env

    def _image(self, reference: str) -> tuple[LocalImage | None, str]:
        repo, tag = split_image(reference)
        return self.image_map.get(repo), tag

    # -- the deployment controller

    def _control_loop(self) -> None:
        while not self.closing.wait(0.1):
            try:
                self.reconcile()
            except Exception:  # the controller must not die of one bad object
                log.exception("deployment controller")

    def reconcile(self) -> None:
        with self.lock:
            for key, obj in self.objects["deployments"].items():
                runtime = self.deployments[key]
                template = obj["spec"]["template"]
                wanted = template_hash(template)
                replicas = int(obj["spec"].get("replicas", 1))
                if runtime.current is None or runtime.current.hash != wanted:
                    self._start_rollout(runtime, obj, wanted)
                elif runtime.zero != (replicas == 0):  # scaled from or to zero: the pods start or go
                    self._start_worker(runtime, runtime.current, replicas)
                self._sync_pod_names(runtime, replicas)
                status = self._deployment_status(runtime, obj)
                annotations = obj["metadata"].setdefault("annotations", {})
                revision = str(runtime.current.revision) if runtime.current else "0"
                if status != obj.get("status") or annotations.get("deployment.kubernetes.io/revision") != revision:
                    annotations["deployment.kubernetes.io/revision"] = revision
                    obj["status"] = status
                    obj["metadata"]["resourceVersion"] = self.next_rv()

    def _sync_pod_names(self, runtime: _DeploymentRuntime, replicas: int) -> None:
        for rs in (runtime.current, runtime.old):
            if rs is None:
                continue
            while len(rs.pod_names) < replicas:
                rs.pod_names.append(f"{rs.name}-{random_suffix()}")
            del rs.pod_names[replicas:]

    def _start_rollout(self, runtime: _DeploymentRuntime, obj: Json, wanted: str) -> None:
        template = copy.deepcopy(obj["spec"]["template"])
        previous = runtime.current
        revision = max((rs.revision for rs in runtime.replica_sets.values()), default=0) + 1
        container = template["spec"]["containers"][0]
        image, _ = self._image(container["image"])
        previous_image = self._image(previous.template["spec"]["containers"][0]["image"])[0] if previous else None
        rolling = obj["spec"]["strategy"].get("type") == "RollingUpdate" and image is None and previous_image is None
        runtime.cancel.set()
        runtime.cancel = threading.Event()
        if runtime.old is not None and runtime.old.hash == wanted and runtime.old.ready_since is not None:
            # The previous pods still serve (rolling update): the restored template is available at once.
            runtime.current, runtime.old = runtime.old, None
            runtime.current.revision = revision
            runtime.pending_reason = ("ReplicaSetUpdated", f'ReplicaSet "{runtime.current.name}" is progressing.')
            runtime.progress_at = time.time()
            return
        existing = runtime.replica_sets.get(wanted)
        rs = _ReplicaSet(name=f"{runtime.name}-{wanted}", hash=wanted, template=template, revision=revision)
        runtime.replica_sets[wanted] = rs
        runtime.old = previous if rolling and previous is not None and previous.ready_since is not None else None
        runtime.current = rs
        if existing is None:
            runtime.pending_reason = ("NewReplicaSetCreated", f'Created new replica set "{rs.name}"')
        else:
            runtime.pending_reason = ("ReplicaSetUpdated", f'ReplicaSet "{rs.name}" is progressing.')
        runtime.progress_at = time.time()
        self._start_worker(runtime, rs, int(obj["spec"].get("replicas", 1)))

    def _start_worker(self, runtime: _DeploymentRuntime, rs: _ReplicaSet, replicas: int) -> None:
        """Play the pods of `rs` (none when scaled to zero) in a thread of their own, replacing the last one."""
        runtime.cancel.set()
        runtime.cancel = threading.Event()
        if replicas == 0 and not runtime.zero and self.termination_delay:
            running = int((self.objects["deployments"].get((runtime.namespace, runtime.name)) or {}).get("status", {}).get("replicas", 0))
            runtime.terminating = (running, time.time() + self.termination_delay)
        runtime.zero = replicas == 0
        rs.ready_since, rs.running, rs.restarts, rs.waiting_reason = None, False, 0, "ContainerCreating"
        rs.started = time.time()
        self._sync_pod_names(runtime, replicas)
        runtime.worker = threading.Thread(
            target=self._pod_worker, args=(runtime, rs, runtime.cancel), name=f"kube-standin-{runtime.name}-{rs.hash}", daemon=True
        )
        runtime.worker.start()

    def _deployment_status(self, runtime: _DeploymentRuntime, obj: Json) -> Json:
        spec = obj["spec"]
        desired = int(spec.get("replicas", 1))
        min_ready = int(spec.get("minReadySeconds", 0))
        now = time.time()
        rs = runtime.current
        if rs is not None and rs.ready_since is not None and runtime.old is not None:
            runtime.old = None  # the new pods are ready: the old ones are scaled down
        new_ready = desired if rs is not None and rs.ready_since is not None else 0
        new_available = new_ready if rs is not None and rs.ready_since is not None and rs.ready_since + min_ready <= now else 0
        old_count = desired if runtime.old is not None else 0
        terminating, until = runtime.terminating
        replicas = desired + old_count + (terminating if desired == 0 and now < until else 0)
        ready = new_ready + old_count
        available = new_available + old_count
        status: Json = {
            "observedGeneration": obj["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": desired,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0),
        }
        previous: Json = obj.get("status") or {}
        conditions = {c["type"]: c for c in previous.get("conditions") or []}
        stamp = now_rfc3339(now)

        def condition(kind: str, state: str, reason: str, message: str, *, touch: bool = False) -> Json:
            old: Json | None = conditions.get(kind)
            if old is not None and old["status"] == state and old["reason"] == reason and not touch:
                return old
            transition = old["lastTransitionTime"] if old is not None and old["status"] == state else stamp
            return {
                "type": kind,
                "status": state,
                "lastUpdateTime": stamp,
                "lastTransitionTime": transition,
                "reason": reason,
                "message": message,
            }

        if available >= desired - max_unavailable(spec):
            available_condition = condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            available_condition = condition(
                "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
            )
        rs_name = rs.name if rs else obj["metadata"]["name"]
        deadline = spec.get("progressDeadlineSeconds")
        complete = replicas == desired and available == desired and status["observedGeneration"] >= obj["metadata"]["generation"]
        prev_old = int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0))
        progressed = (
            desired > int(previous.get("updatedReplicas", 0))
            or replicas - desired < prev_old
            or ready > int(previous.get("readyReplicas", 0))
            or available > int(previous.get("availableReplicas", 0))
        )
        progressing = conditions.get("Progressing")
        if runtime.pending_reason is not None and not complete:
            reason, message = runtime.pending_reason
            progressing = condition("Progressing", "True", reason, message, touch=True)
            runtime.progress_at = now
        elif complete:
            progressing = condition("Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.')
        elif progressed and previous:
            progressing = condition("Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', touch=True)
            runtime.progress_at = now
        elif (
            deadline is not None
            and progressing is not None
            and progressing["reason"] != "NewReplicaSetAvailable"
            and (progressing["reason"] == "ProgressDeadlineExceeded" or runtime.progress_at + float(deadline) < now)
        ):
            progressing = condition(
                "Progressing", "False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs_name}" has timed out progressing.'
            )
        runtime.pending_reason = None
        status["conditions"] = [available_condition] + ([progressing] if progressing is not None else [])
        return {k: v for k, v in status.items() if v not in (0, None)}

    def _deployment_pods(self, namespace: str) -> dict[str, Json]:
        """The pods of the Deployments in `namespace`, made up from the kubelet's state."""
        pods: dict[str, Json] = {}
        for runtime in self.deployments.values():
            if runtime.namespace != namespace:
                continue
            for rs in (runtime.current, runtime.old):
                if rs is None:
                    continue
                for pod_name in rs.pod_names:
                    pods[pod_name] = self._deployment_pod(runtime, rs, pod_name)
        return pods

    def _deployment_pod(self, runtime: _DeploymentRuntime, rs: _ReplicaSet, pod_name: str) -> Json:
        template = rs.template
        ready = rs.ready_since is not None
        started = now_rfc3339(rs.started)
        statuses = []
        for index, container in enumerate(template["spec"]["containers"]):
            if index == 0 and rs.waiting_reason:
                state: Json = {"waiting": {"reason": rs.waiting_reason, "message": rs.waiting_message}}
            else:
                state = {"running": {"startedAt": started}}
            statuses.append(
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": ready,
                    "started": "running" in state,
                    "restartCount": rs.restarts if index == 0 else 0,
                    "state": state,
                }
            )
        running = rs.running or ready
        return {
            "metadata": {
                "name": pod_name,
                "generateName": f"{rs.name}-",
                "namespace": runtime.namespace,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{runtime.uid}/{pod_name}")),
                "resourceVersion": self.objects["deployments"][(runtime.namespace, runtime.name)]["metadata"]["resourceVersion"],
                "creationTimestamp": started,
                "labels": {**(template.get("metadata", {}).get("labels") or {}), "pod-template-hash": rs.hash},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": rs.name,
                        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{runtime.uid}/{rs.name}")),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {**copy.deepcopy(template["spec"]), "nodeName": "standin-node"},
            "status": {
                "phase": "Running" if running else "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                    {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": started},
                    {"type": "ContainersReady", "status": "True" if ready else "False", "lastTransitionTime": started},
                ],
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": started,
                "containerStatuses": statuses,
            },
        }

    # -- the kubelet for Deployments

    def _pod_worker(self, runtime: _DeploymentRuntime, rs: _ReplicaSet, cancel: threading.Event) -> None:
        with runtime.lock:
            if cancel.is_set():
                return
            if runtime.app is not None:  # Recreate: the old process goes first; its port is needed
                runtime.app.stop()
                runtime.app = None
            if not rs.pod_names:
                return
            container = rs.template["spec"]["containers"][0]
            env = self._wait_for_env(runtime.namespace, rs.pod_names[0], container, rs, cancel)
            if env is None:
                return
            image, tag = self._image(container["image"])
            try:
                if image is None:
                    self._play_unmapped(rs, str(container["image"]), cancel)
                else:
                    self._play_mapped(runtime, rs, image, tag=tag, container=container, env=env, cancel=cancel)
            except Exception as exc:
                log.exception("kube stand-in: the pods of %s/%s", runtime.namespace, runtime.name)
                with self.lock:
                    rs.running, rs.ready_since = False, None
                    rs.waiting_reason, rs.waiting_message = "RunContainerError", str(exc)

    def _wait_for_env(
        self, namespace: str, pod_name: str, container: Json, rs: _ReplicaSet, cancel: threading.Event
    ) -> dict[str, str] | None:
        while not cancel.is_set():
            try:
                env = self.resolve_env(namespace, pod_name, container)
            except EnvNotReadyError as exc:
                with self.lock:
                    rs.waiting_reason, rs.waiting_message = "CreateContainerConfigError", str(exc)
                cancel.wait(0.3)
                continue
            with self.lock:
                rs.waiting_reason, rs.waiting_message = None, ""
            return env
        return None

    def _play_unmapped(self, rs: _ReplicaSet, image: str, cancel: threading.Event) -> None:
        behaviour = self.behaviours.get(image, "ready")
        with self.lock:
            rs.running = behaviour != "crash"
            if behaviour == "crash":
                rs.waiting_reason, rs.waiting_message = "CrashLoopBackOff", f"back-off restarting failed container of {image}"
        if behaviour == "crash":
            while not cancel.wait(1.0):
                with self.lock:
                    rs.restarts += 1
            return
        if behaviour == "ready" and not cancel.wait(self.ready_delay):
            with self.lock:
                rs.ready_since = time.time()

    def _play_mapped(
        self,
        runtime: _DeploymentRuntime,
        rs: _ReplicaSet,
        image: LocalImage,
        *,
        tag: str,
        container: Json,
        env: dict[str, str],
        cancel: threading.Event,
    ) -> None:
        ports = [p for p in container.get("ports") or [] if p.get("containerPort")]
        port = int(ports[0]["containerPort"]) if ports else _free_port()
        probe = container.get("readinessProbe") or {}
        check = self._probe(probe, ports, port, image.readiness_path)
        app = image_process(image, name=f"kube-{runtime.namespace}-{runtime.name}", tag=tag, port=port, state_dir=self.state_dir, env=env)
        app.stop()  # a process this Deployment left from an earlier run of the stand-in holds the port
        runtime.app = app
        with self.lock:
            rs.log_path = app.directory / f"{tag}.log"
        initial_delay = float(probe.get("initialDelaySeconds", 0))
        back_off = 0.5
        while not cancel.is_set():
            app.start(tag)
            with self.lock:
                rs.running, rs.started, rs.waiting_reason = True, time.time(), None
            if cancel.wait(initial_delay):
                return
            while not cancel.is_set():
                if app.current() is None:
                    break
                ok = check()
                with self.lock:
                    if ok and rs.ready_since is None:
                        rs.ready_since = time.time()
                    elif not ok:
                        rs.ready_since = None
                cancel.wait(PROBE_INTERVAL if rs.ready_since is None else 1.0)
            if cancel.is_set():
                return
            with self.lock:  # the container exited: the kubelet restarts it after a back-off
                rs.running, rs.ready_since = False, None
                rs.restarts += 1
                rs.waiting_reason, rs.waiting_message = (
                    "CrashLoopBackOff",
                    f"back-off {back_off:.1f}s restarting failed container: {app.log_tail(tag)}",
                )
            app.stop()
            if cancel.wait(back_off):
                return
            back_off = min(back_off * 2, 5.0)

    @staticmethod
    def _probe(probe: Json, ports: list[Json], port: int, fallback_path: str) -> Callable[[], bool]:
        def resolve(value: Any) -> int:
            if isinstance(value, str) and not value.isdigit():
                return next((int(p["containerPort"]) for p in ports if p.get("name") == value), port)
            return int(value) if value else port

        if tcp := probe.get("tcpSocket"):
            tcp_port = resolve(tcp.get("port"))

            def tcp_check() -> bool:
                try:
                    with socket.create_connection(("127.0.0.1", tcp_port), timeout=1.0):
                        return True
                except OSError:
                    return False

            return tcp_check
        http_get = probe.get("httpGet") or {}
        path = http_get.get("path") or fallback_path if http_get else fallback_path
        url = f"http://127.0.0.1:{resolve(http_get.get('port'))}{path}"
        timeout = float(probe.get("timeoutSeconds", 1))

        def http_check() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    return 200 <= int(response.status) < 400
            except (OSError, ValueError):
                return False

        return http_check

    def _retire_deployment(self, runtime: _DeploymentRuntime) -> None:
        runtime.deleted = True
        runtime.cancel.set()
        self.retired.append(runtime)

        def stop() -> None:
            with runtime.lock:
                if runtime.app is not None:
                    runtime.app.stop()
                    runtime.app = None

        threading.Thread(target=stop, name=f"kube-standin-stop-{runtime.name}", daemon=True).start()

    # -- the job controller and its kubelet

    def _start_job(self, job: Json) -> None:
        metadata = job["metadata"]
        runtime = _JobRuntime(namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"])
        self.jobs[(runtime.namespace, runtime.name)] = runtime
        runtime.thread = threading.Thread(target=self._job_worker, args=(runtime,), name=f"kube-standin-job-{runtime.name}", daemon=True)
        runtime.thread.start()

    def _update_job_status(self, runtime: _JobRuntime, **changes: Any) -> Json | None:
        with self.lock:
            job = self.objects["jobs"].get((runtime.namespace, runtime.name))
            if job is None or job["metadata"]["uid"] != runtime.uid:
                return None
            status = job.setdefault("status", {})
            for key, value in changes.items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value
            job["metadata"]["resourceVersion"] = self.next_rv()
            return job

    def _new_job_pod(self, runtime: _JobRuntime, job: Json) -> Json:
        template = copy.deepcopy(job["spec"]["template"])
        name = f"{runtime.name}-{random_suffix()}"
        pod: Json = {
            "metadata": {
                "name": name,
                "generateName": f"{runtime.name}-",
                "namespace": runtime.namespace,
                "labels": template.get("metadata", {}).get("labels") or {},
                "annotations": template.get("metadata", {}).get("annotations") or {},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": runtime.name,
                        "uid": runtime.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
                "finalizers": ["batch.kubernetes.io/job-tracking"],
            },
            "spec": {**template["spec"], "nodeName": "standin-node"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]},
        }
        with self.lock:
            self._new_metadata(pod, runtime.namespace)
            self.objects["pods"][(runtime.namespace, name)] = pod
            runtime.logs[name] = ""
        return pod

    def _set_pod_status(self, pod: Json, **changes: Any) -> None:
        with self.lock:
            stored = self.objects["pods"].get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
            if stored is None or stored["metadata"]["uid"] != pod["metadata"]["uid"]:
                return
            stored["status"].update(changes)
            if stored["status"].get("phase") in ("Succeeded", "Failed"):
                stored["metadata"].pop("finalizers", None)
            stored["metadata"]["resourceVersion"] = self.next_rv()

    def _job_worker(self, runtime: _JobRuntime) -> None:
        try:
            self._run_job(runtime)
        except Exception:
            log.exception("kube stand-in: job %s/%s", runtime.namespace, runtime.name)

    def _run_job(self, runtime: _JobRuntime) -> None:
        start = time.time()
        job = self._update_job_status(runtime, startTime=now_rfc3339(start), active=1, ready=0, uncountedTerminatedPods={})
        if job is None:
            return
        spec = job["spec"]
        backoff_limit = int(spec.get("backoffLimit", 6))
        deadline = spec.get("activeDeadlineSeconds")
        end = start + float(deadline) * self.time_scale if deadline is not None else None
        container = spec["template"]["spec"]["containers"][0]
        failed = 0
        while not runtime.cancel.is_set():
            pod = self._new_job_pod(runtime, job)
            pod_name = pod["metadata"]["name"]
            outcome, exit_code, output = self._run_job_pod(runtime, pod, container, end)
            if outcome == "cancelled":
                return
            finished = now_rfc3339()
            terminated = {"exitCode": exit_code, "reason": "Completed" if outcome == "succeeded" else "Error", "finishedAt": finished}
            with self.lock:
                runtime.logs[pod_name] = output
            self._set_pod_status(
                pod,
                phase="Succeeded" if outcome == "succeeded" else "Failed",
                containerStatuses=[
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"terminated": terminated},
                    }
                ],
                conditions=[{"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": finished}],
            )
            if runtime.cancel.is_set():  # the Job was deleted while its (orphaned) pod ran: no more attempts
                return
            if outcome == "succeeded":
                conditions = [
                    {
                        "type": "SuccessCriteriaMet",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                    },
                    {
                        "type": "Complete",
                        "status": "True",
                        "reason": "CompletionsReached",
                        "message": "Reached expected number of succeeded pods",
                    },
                ]
                for condition in conditions:
                    condition.update(lastProbeTime=finished, lastTransitionTime=finished)
                self._update_job_status(runtime, active=None, ready=0, succeeded=1, completionTime=finished, conditions=conditions)
                return
            failed += 1
            if outcome == "deadline" or failed > backoff_limit:
                reason, message = (
                    ("DeadlineExceeded", "Job was active longer than specified deadline")
                    if outcome == "deadline"
                    else ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
                )
                conditions = [
                    {"type": kind, "status": "True", "reason": reason, "message": message} for kind in ("FailureTarget", "Failed")
                ]
                for condition in conditions:
                    condition.update(lastProbeTime=finished, lastTransitionTime=finished)
                self._update_job_status(runtime, active=None, ready=0, failed=failed, conditions=conditions)
                return
            self._update_job_status(runtime, failed=failed, active=1, ready=0)
            if runtime.cancel.wait(self.job_backoff):
                return

    def _work(self, runtime: _JobRuntime, image: str, end: float | None) -> tuple[str, int, str] | None:
        """The pod's simulated work before its command (`set_job_work`); how the attempt ended, if it ended there."""
        work = self.job_work.get(image, 0.0) * self.time_scale
        if work and runtime.cancel.wait(min(work, end - time.time()) if end is not None else work):
            return "cancelled", 0, ""
        if end is not None and time.time() >= end:
            return "deadline", 137, ""
        return None

    def _run_job_pod(self, runtime: _JobRuntime, pod: Json, container: Json, end: float | None) -> tuple[str, int, str]:
        """Run one attempt: ('succeeded' | 'failed' | 'deadline' | 'cancelled', exit code, output)."""
        pod_name = pod["metadata"]["name"]
        while True:
            try:
                env = self.resolve_env(runtime.namespace, pod_name, container)
                break
            except EnvNotReadyError as exc:
                waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                self._set_pod_status(
                    pod,
                    containerStatuses=[
                        {
                            "name": container["name"],
                            "image": container["image"],
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": waiting,
                        }
                    ],
                )
                if end is not None and time.time() >= end:
                    return "deadline", 0, ""
                if runtime.cancel.wait(0.3):
                    return "cancelled", 0, ""
        args = [_expand(str(a), env) for a in list(container.get("command") or []) + list(container.get("args") or [])]
        image, _ = self._image(container["image"])
        started = now_rfc3339()
        self._set_pod_status(
            pod,
            phase="Running",
            startTime=started,
            containerStatuses=[
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": started}},
                }
            ],
        )
        self._update_job_status(runtime, ready=1)
        no_command = ("failed", 128, "the container has no command: images' default entrypoints are not known here\n")
        if (ended := self._work(runtime, container["image"], end) or (None if args else no_command)) is not None:
            return ended
        timeout = max(end - time.time(), 0.01) if end is not None else _JOB_TIMEOUT_NO_DEADLINE
        try:
            result = run_in_image(
                image or LocalImage(command=[]),
                args,
                env={**env, POD_MARKER: pod["metadata"]["uid"]},
                timeout=timeout,
                tag=split_image(container["image"])[1],
            )
        except subprocess.TimeoutExpired as exc:
            return "deadline", 137, _text(exc.stdout) + _text(exc.stderr)
        except OSError as exc:  # the executable is missing: the container cannot start
            return "failed", 128, f"exec: {exc}\n"
        return ("succeeded" if result.returncode == 0 else "failed"), result.returncode, result.stdout + result.stderr

    # -- control

    def set_behaviour(self, image: str, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ApiError(400, "BadRequest", f"behaviour must be one of {', '.join(BEHAVIOURS)}, not {behaviour!r}")
        with self.lock:
            self.behaviours[image] = behaviour  # type: ignore[assignment]

    def set_job_work(self, image: str, seconds: float) -> None:
        if seconds < 0:
            raise ApiError(400, "BadRequest", f"seconds must not be negative, not {seconds}")
        with self.lock:
            self.job_work[image] = seconds

    def state(self) -> Json:
        with self.lock:
            deployments = {}
            for (ns, name), runtime in self.deployments.items():
                app = runtime.app.current() if runtime.app is not None else None
                rs = runtime.current
                deployments[f"{ns}/{name}"] = {
                    "replicaSet": rs.name if rs else None,
                    "revision": rs.revision if rs else None,
                    "ready": bool(rs and rs.ready_since is not None),
                    "waiting": rs.waiting_reason if rs else None,
                    "restarts": rs.restarts if rs else 0,
                    "process": {"version": app.version, "pid": app.pid, "port": runtime.app.config.port} if app and runtime.app else None,
                }
            jobs = {f"{ns}/{name}": {"pods": sorted(runtime.logs)} for (ns, name), runtime in self.jobs.items()}
            return {
                "deployments": deployments,
                "jobs": jobs,
                "behaviours": dict(self.behaviours),
                "jobWork": dict(self.job_work),
                "timeScale": self.time_scale,
                "images": sorted(self.image_map),
                "readyDelay": self.ready_delay,
            }

    def reset(self) -> None:
        """Forget every object, stop every process and Job, clear the image behaviours."""
        with self.lock:
            runtimes = list(self.deployments.values()) + self.retired
            jobs = list(self.jobs.values())
            pods = [pod["metadata"]["uid"] for pod in self.objects["pods"].values()]
            for runtime in runtimes:
                runtime.cancel.set()
            for job in jobs:
                job.cancel.set()
            for objects in self.objects.values():
                objects.clear()
            self.namespace_labels.clear()
            self.deployments.clear()
            self.jobs.clear()
            self.retired = []
            self.behaviours.clear()
            self.job_work.clear()
            self.next_rv()
        for uid in pods:
            _kill_pod_processes(uid)
        for runtime in runtimes:
            with runtime.lock:  # waits for the worker to let go (it sees the cancel within a probe interval)
                if runtime.app is not None:
                    runtime.app.stop()
                    runtime.app = None
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=5)

    def close(self) -> None:
        self.reset()
        self.closing.set()
        self._controller.join(timeout=5)


def _patch_sets_rv(patch: Any) -> bool:
    if isinstance(patch, dict):
        return bool((patch.get("metadata") or {}).get("resourceVersion"))
    if isinstance(patch, list):
        return any(isinstance(op, dict) and str(op.get("path", "")).startswith("/metadata/resourceVersion") for op in patch)
    return False


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kill_pod_processes(pod_uid: str) -> None:
    """Kill the processes of a Job's pod: our descendants whose environment carries the pod's uid."""
    import psutil

    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if process.environ().get(POD_MARKER) == pod_uid:
                process.send_signal(signal.SIGKILL)


# --- HTTP ---------------------------------------------------------------------------------------------

_GROUP_VERSION = r"(?:api/(?P<core>v1)|apis/(?P<group>[a-z0-9.-]+)/(?P<version>v[0-9a-z]+))"
_NAMESPACED = re.compile(rf"^/{_GROUP_VERSION}/namespaces/(?P<ns>[^/]+)/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>status|log))?)?$")
_CLUSTER_WIDE = re.compile(rf"^/{_GROUP_VERSION}/(?P<plural>[a-z]+)$")
_CLUSTER_SCOPED = re.compile(rf"^/{_GROUP_VERSION}/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?$")


def _served(match: re.Match[str]) -> bool:
    """The path names a kind this server knows, under the group and version it is served at."""
    kind = KINDS.get(match.group("plural"))
    if kind is None:
        return False
    return (match.group("group") or "", match.group("version") or match.group("core")) == (kind.group, kind.version)


def _resource_list(group_version: str, plurals: list[str]) -> Json:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    resources: list[Json] = []
    for plural in plurals:
        kind = KINDS[plural]
        resources.append({"name": plural, "singularName": kind.kind.lower(), "namespaced": True, "kind": kind.kind, "verbs": verbs})
        if plural in ("deployments", "jobs"):
            resources.append(
                {"name": f"{plural}/status", "singularName": "", "namespaced": True, "kind": kind.kind, "verbs": ["get", "patch", "update"]}
            )
        if plural == "pods":
            resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]})
    if group_version == "v1":
        resources.append(
            {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace", "verbs": ["get", "list"]}
        )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


class _Handler(BaseHTTPRequestHandler):
    cluster: ClassVar[Cluster]
    server_version = "kube-standin/1"
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked watch streams
    _raw_body = b""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode())

    def _body(self) -> bytes:
        return self._raw_body

    def _json_body(self) -> Any:
        raw = self._body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {exc}") from None

    def _handle(self) -> None:
        # Read the whole body first: the connection is kept alive, the next request follows it.
        self._raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self._route()
        except ApiError as exc:
            self._json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:
            log.exception("kube stand-in: %s %s", self.command, self.path)
            self._json(
                500, ApiError(500, "InternalError", f"an error on the server ({exc}) has prevented the request from succeeding").status()
            )

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- routes

    def _route(self) -> None:  # noqa: PLR0911, PLR0912, PLR0915 - one dispatch table for the whole API
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        method = self.command
        if path.startswith("/_standin"):
            self._control(method, path)
            return
        if method == "GET" and path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok", "text/plain")
            return
        if method == "GET" and (path in ("/version", "/api", "/apis", "/api/v1") or re.fullmatch(r"/apis/(apps|batch)(/v1)?", path)):
            self._json(200, self._discovery(path))
            return
        if method == "POST" and path == "/api/v1/namespaces":
            self._json(201, self._create_namespace(self._json_body()))
            return
        if method == "GET" and (m := re.fullmatch(r"/api/v1/namespaces(?:/([^/]+))?", path)):
            names = sorted(
                {"default", "kube-system", "kube-public"}
                | {key[0] for objects in self.cluster.objects.values() for key in objects if key[0]}
                | set(self.cluster.namespace_labels)
            )
            if m.group(1):
                self._json(200, self._namespace(m.group(1)))
            else:
                items = [self._namespace(n) for n in names]
                self._json(
                    200,
                    {
                        "kind": "NamespaceList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": self.cluster.resource_version},
                        "items": items,
                    },
                )
            return
        if (m := _CLUSTER_SCOPED.match(path)) and _served(m) and not KINDS[m.group("plural")].namespaced:
            self._cluster_scoped(method, m.group("plural"), m.group("name"), query)
            return
        if (m := _CLUSTER_WIDE.match(path)) and _served(m):
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})")
            self._list(m.group("plural"), None, query)
            return
        m = _NAMESPACED.match(path)
        if not m or not _served(m):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        plural, namespace, name, sub = m.group("plural"), m.group("ns"), m.group("name"), m.group("sub") or ""
        cluster = self.cluster
        if (sub == "log" and plural != "pods") or (sub == "status" and plural not in ("deployments", "jobs")):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET":
                self._list(plural, namespace, query)
            elif method == "POST":
                self._json(201, cluster.create(plural, namespace, self._json_body(), manager=self._manager(query)))
            else:
                raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})")
            return
        if sub == "log":
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            tail = query.get("tailLines")
            self._send(200, cluster.pod_log(namespace, name, int(tail) if tail else None).encode(), "text/plain")
        elif method == "GET":
            self._json(200, cluster.get(plural, namespace, name))
        elif method == "PUT":
            self._json(200, cluster.replace(plural, namespace, name, self._json_body(), subresource=sub, manager=self._manager(query)))
        elif method == "PATCH":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            self._json(
                200, cluster.patch(plural, namespace, name, content_type, self._body(), subresource=sub, manager=self._manager(query))
            )
        elif method == "DELETE" and not sub:
            body = self._json_body()
            policy = query.get("propagationPolicy") or (body.get("propagationPolicy") if isinstance(body, dict) else None)
            if policy is None and (
                query.get("orphanDependents") == "false" or (isinstance(body, dict) and body.get("orphanDependents") is False)
            ):
                policy = "Background"
            if policy not in (None, "Orphan", "Background", "Foreground"):
                raise ApiError(422, "Invalid", f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{policy}"')
            self._json(200, cluster.delete(plural, namespace, name, policy))
        else:
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})")

    def _manager(self, query: dict[str, str]) -> str:
        """Who writes, as managedFields name it: the request's fieldManager, else its User-Agent up to the first "/"."""
        return query.get("fieldManager") or (self.headers.get("User-Agent") or "unknown").split("/")[0]

    def _cluster_scoped(self, method: str, plural: str, name: str | None, query: dict[str, str]) -> None:
        """A cluster-scoped stored kind (nodes, persistent volumes, cluster issuers): kept under the namespace ""."""
        if method == "GET" and name is None:
            self._list(plural, None, query)
        elif method == "GET" and name is not None:
            self._json(200, self.cluster.get(plural, "", name))
        elif method == "POST" and name is None:
            self._json(201, self.cluster.create(plural, "", self._json_body()))
        elif method == "DELETE" and name is not None:
            self._json(200, self.cluster.delete(plural, "", name, None))
        else:
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource ({method})")

    def _namespace(self, name: str) -> Json:
        """A namespace as the API shows it: the labels it was created with, and the name label every namespace has."""
        labels = {**self.cluster.namespace_labels.get(name, {}), "kubernetes.io/metadata.name": name}
        return {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": name, "labels": labels},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    def _create_namespace(self, body: Any) -> Json:
        metadata = body.get("metadata") if isinstance(body, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or _validate_name(name):
            raise ApiError(422, "Invalid", f'Namespace "{name}" is invalid: metadata.name: Invalid value')
        with self.cluster.lock:
            if name in self.cluster.namespace_labels:
                raise ApiError(409, "AlreadyExists", f'namespaces "{name}" already exists', {"name": name, "kind": "namespaces"})
            self.cluster.namespace_labels[name] = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}  # type: ignore[union-attr]
            self.cluster.next_rv()
        return self._namespace(name)

    def _list(self, plural: str, namespace: str | None, query: dict[str, str]) -> None:
        labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
        if query.get("watch", "").lower() in ("true", "1"):
            self._watch(plural, namespace, labels, fields, query)
        else:
            self._json(200, self.cluster.list_object(plural, namespace, labels, fields))

    def _watch(self, plural: str, namespace: str | None, labels: str, fields: str, query: dict[str, str]) -> None:
        """Stream watch events (one JSON object a line) until timeoutSeconds, the client leaves or the server stops."""
        kind = KINDS[plural]
        given = query.get("resourceVersion", "0")
        since = int(given) if given.isdigit() else 0
        end = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        seen: dict[str, Json] = {}
        first = True
        while time.monotonic() < end and not self.cluster.closing.is_set():
            items = {o["metadata"]["uid"]: o for o in self.cluster.list_items(plural, namespace, labels, fields)}
            events: list[Json] = []
            for uid, obj in items.items():
                shown = {"kind": kind.kind, "apiVersion": kind.api_version, **obj}
                rv = int(obj["metadata"]["resourceVersion"])
                if uid not in seen:
                    if not (first and since and rv <= since):
                        events.append({"type": "ADDED", "object": shown})
                elif seen[uid]["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                    events.append({"type": "MODIFIED", "object": shown})
            events += [
                {"type": "DELETED", "object": {"kind": kind.kind, "apiVersion": kind.api_version, **obj}}
                for uid, obj in seen.items()
                if uid not in items
            ]
            seen, first = items, False
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()
            time.sleep(0.1)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _discovery(self, path: str) -> Json:
        address = "{}:{}".format(*self.server.server_address[:2])  # type: ignore[index]
        if path == "/version":
            return {
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0-standin",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
            }
        if path == "/api/v1":
            return _resource_list("v1", ["pods", "secrets"])
        groups = {
            "apps": {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            },
            "batch": {
                "name": "batch",
                "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
            },
        }
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(groups.values())}
        group = path.split("/")[2]
        if path.endswith("/v1"):
            return _resource_list(f"{group}/v1", ["deployments"] if group == "apps" else ["jobs"])
        return {"kind": "APIGroup", "apiVersion": "v1", **groups[group]}

    def _control(self, method: str, path: str) -> None:
        """The test control API:

        POST /_standin/reset                                      forget everything, stop every process
        POST /_standin/images  {"image": "repo:tag", "behaviour": "ready|stall|crash"}
        PUT  /_standin/image-map  {"<repo>": {"command": [...], "bin_dir": ..., "readiness_path": ...}}
        POST /_standin/config  {"ready_delay_seconds": 0.5, "job_backoff_seconds": 0.2, "time_scale": 0.01}
        POST /_standin/job-work  {"image": "repo:tag", "seconds": 3600}   Job pods of that image work that long first
        GET  /_standin/state                                      deployments (process, readiness), jobs, behaviours
        """
        cluster = self.cluster
        body = self._json_body() if method in ("POST", "PUT") else None
        if method == "POST" and path == "/_standin/reset":
            cluster.reset()
        elif method in ("POST", "PUT") and path == "/_standin/images" and isinstance(body, dict):
            cluster.set_behaviour(str(body.get("image", "")), str(body.get("behaviour", "ready")))
        elif method in ("POST", "PUT") and path == "/_standin/image-map" and isinstance(body, dict):
            cluster.image_map = _image_map_from_json(body)
        elif method == "POST" and path == "/_standin/config" and isinstance(body, dict):
            if "ready_delay_seconds" in body:
                cluster.ready_delay = float(body["ready_delay_seconds"])
            if "job_backoff_seconds" in body:
                cluster.job_backoff = float(body["job_backoff_seconds"])
            if "time_scale" in body:
                cluster.time_scale = float(body["time_scale"])
        elif method == "POST" and path == "/_standin/job-work" and isinstance(body, dict):
            cluster.set_job_work(str(body.get("image", "")), float(body.get("seconds", 0)))
        elif method == "GET" and path == "/_standin/state":
            pass
        else:
            raise ApiError(404, "NotFound", f"no control endpoint {method} {path}")
        self._json(200, cluster.state())


def _image_map_from_json(raw: Json) -> dict[str, LocalImage]:
    return {
        repo: LocalImage(
            command=list(entry["command"]),
            bin_dir=Path(entry["bin_dir"]) if entry.get("bin_dir") else None,
            readiness_path=entry.get("readiness_path", "/health"),
        )
        for repo, entry in raw.items()
    }


class KubeApiServer:
    """The stand-in on a thread of this process; a context manager that stops every process it started.

    with KubeApiServer(image_map={"registry.example.com/app": LocalImage([...])}, state_dir=tmp) as kube:
        os.environ["AIRFLOW_CONN_KUBE"] = kube.airflow_connection()
        kube.set_image_behaviour("registry.example.com/other:2.0", "stall")
    """

    def __init__(
        self,
        *,
        image_map: dict[str, LocalImage] | Path | str | None,
        state_dir: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        ready_delay: float = 0.5,
        job_backoff: float = 0.2,
    ) -> None:
        images = image_map if isinstance(image_map, dict) else load_image_map(image_map)
        self.state_dir = state_dir
        self._host = host
        self._port = port
        self._settings = {"ready_delay": ready_delay, "job_backoff": job_backoff}
        self._images = images
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            raise RuntimeError("the stand-in is not started")
        return self._cluster

    def start(self) -> KubeApiServer:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(image_map=self._images, state_dir=self.state_dir, **self._settings)
        handler = type("Handler", (_Handler,), {"cluster": cluster})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._cluster = cluster
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="kube-standin-http", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return kubeconfig(self.url, namespace)

    def airflow_connection(self, namespace: str = "default") -> str:
        return airflow_connection(self.url, namespace)

    def set_image_behaviour(self, image: str, behaviour: Behaviour) -> None:
        """How the pods of an image that is not in the image map behave: ready (default), stall, crash."""
        self.cluster.set_behaviour(image, behaviour)

    def set_ready_delay(self, seconds: float) -> None:
        self.cluster.ready_delay = seconds

    def set_termination_delay(self, seconds: float) -> None:
        """Pods of a Deployment scaled to zero count in its `status.replicas` for `seconds` more (terminating)."""
        self.cluster.termination_delay = seconds

    def set_job_work(self, image: str, seconds: float, *, time_scale: float | None = None) -> None:
        """Job pods of `image` (the exact reference) work `seconds` of cluster time before their command runs;
        `time_scale`: real seconds per cluster second from now on (0.01 plays an hour's Job in 36 s)."""
        self.cluster.set_job_work(image, seconds)
        if time_scale is not None:
            self.cluster.time_scale = time_scale

    def reset(self) -> None:
        self.cluster.reset()

    def state(self) -> Json:
        return self.cluster.state()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._cluster is not None:
            self._cluster.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--image-map", type=Path)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ready-delay", type=float, default=0.5)
    parser.add_argument("--kubeconfig-out", type=Path, help="write a kubeconfig for the stand-in here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    server = KubeApiServer(image_map=args.image_map, state_dir=args.state_dir, port=args.port, host=args.host, ready_delay=args.ready_delay)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with server:
        if args.kubeconfig_out:
            args.kubeconfig_out.write_text(json.dumps(server.kubeconfig(), indent=2))
        print(f"kube stand-in at {server.url}", flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
