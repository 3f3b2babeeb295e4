"""What the seed systems' platforms declare when they are set up as the seeds ask, put into the stand-ins.

The checklists' kubernetes items read these; the e2e releases and the item
check tests start from them, and each failing-case test breaks one.
"""

from __future__ import annotations

import copy
from typing import Any

AI_ETL_NAMESPACE = "ai-etl-prod"

# the seed's Pod Security: the restricted profile enforced on the namespace
AI_ETL_NAMESPACE_LABELS = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}

# what each of the seed's Deployments declares beside its container's image, ports and probes
AI_ETL_POD_SPEC: dict[str, Any] = {
    "serviceAccountName": "ai-etl-app",
    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
}
AI_ETL_CONTAINER: dict[str, Any] = {
    "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}


def ai_etl_objects() -> dict[str, list[dict[str, Any]]]:
    """The namespace's other objects, by resource plural: HPAs, quota, service account, role binding, ingress."""
    return {
        "horizontalpodautoscalers": [
            {
                "metadata": {"name": name},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": 2,
                    "maxReplicas": 10,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
                    ],
                },
            }
            for name in ("backend", "llm-gateway")
        ],
        "resourcequotas": [
            {"metadata": {"name": "ai-etl-quota"}, "spec": {"hard": {"limits.cpu": "16", "limits.memory": "32Gi", "pods": "50"}}}
        ],
        "serviceaccounts": [{"metadata": {"name": "ai-etl-app"}}],
        "rolebindings": [
            {
                "metadata": {"name": "ai-etl-app-read"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ai-etl-app-read"},
                "subjects": [{"kind": "ServiceAccount", "name": "ai-etl-app", "namespace": AI_ETL_NAMESPACE}],
            }
        ],
        "ingresses": [
            {
                "metadata": {"name": "ai-etl"},
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": ["ai-etl.example.com"], "secretName": "ai-etl-tls"}],
                    "rules": [
                        {
                            "host": "ai-etl.example.com",
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {"service": {"name": "frontend", "port": {"number": 3000}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        ],
    }


def ai_etl_deployment(name: str, container: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    """A seed Deployment: the container given, with the seed's resources and security settings."""
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {**copy.deepcopy(AI_ETL_POD_SPEC), "containers": [{**copy.deepcopy(AI_ETL_CONTAINER), **container}]},
            },
        },
    }


def create_ai_etl_platform(api: Any) -> None:
    """The namespace (with its labels) and its objects, through the API server the client `api` talks to."""
    api.call_api(
        "/api/v1/namespaces",
        "POST",
        body={"metadata": {"name": AI_ETL_NAMESPACE, "labels": AI_ETL_NAMESPACE_LABELS}},
        auth_settings=["BearerToken"],
        response_types_map={201: "object"},
    )
    from airflow_rollout.item_checks.kubernetes import resource_path

    for plural, objects in ai_etl_objects().items():
        for obj in objects:
            api.call_api(
                resource_path(plural, AI_ETL_NAMESPACE, None),
                "POST",
                body=obj,
                auth_settings=["BearerToken"],
                response_types_map={201: "object"},
            )
