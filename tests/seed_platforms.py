"""What the seed systems' platforms declare when they are set up as the seeds ask, put into the stand-ins.

The checklists' kubernetes, databricks_api and delta_table items read these; the e2e releases and the item
check tests start from them, and each failing-case test breaks one.
"""

from __future__ import annotations

import copy
import json
import secrets
import time
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
    """The namespace's other objects, by resource plural: HPAs, quota, service account, role binding, ingress, and
    what the cluster's operators hold (ai_etl_operated_objects)."""
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
                "metadata": {"name": "ai-etl", "annotations": AI_ETL_INGRESS_ANNOTATIONS},
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
        **ai_etl_operated_objects(),
    }


# the seed's issuer for the ingress (cert-manager's ingress-shim reads it), and ingress-nginx's limit per client IP
# (requests a second) with the burst it allows above it (a multiple of the limit)
AI_ETL_INGRESS_ANNOTATIONS = {
    "cert-manager.io/cluster-issuer": "letsencrypt-prod",
    "nginx.ingress.kubernetes.io/limit-rps": "20",
    "nginx.ingress.kubernetes.io/limit-burst-multiplier": "3",
}
READY = {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-11-01T00:00:00Z"}


def ai_etl_operated_objects() -> dict[str, list[dict[str, Any]]]:
    """What the cluster's operators hold for the namespace, with the status their controllers write: cert-manager's
    issuer and the ingress certificate it renews, the Prometheus Operator's scrape targets and rules, the backend's
    CSI volume and its snapshot, and the nodes (three control-plane, three workers)."""
    return {
        "clusterissuers": [
            {
                "metadata": {"name": "letsencrypt-prod"},
                "spec": {
                    "acme": {
                        "server": "https://acme-v02.api.letsencrypt.org/directory",
                        "email": "ops@example.com",
                        "privateKeySecretRef": {"name": "letsencrypt-prod-account"},
                        "solvers": [{"http01": {"ingress": {"ingressClassName": "nginx"}}}],
                    }
                },
                "status": {
                    "conditions": [{**READY, "reason": "ACMEAccountRegistered"}],
                    "acme": {"uri": "https://acme-v02.api.letsencrypt.org/acme/acct/1"},
                },
            }
        ],
        "certificates": [
            {
                "metadata": {"name": "ai-etl-tls"},
                "spec": {
                    "secretName": "ai-etl-tls",
                    "dnsNames": ["ai-etl.example.com"],
                    "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt-prod"},
                },
                "status": {
                    "conditions": [READY],
                    "notBefore": "2026-11-01T00:00:00Z",
                    "notAfter": "2027-01-30T00:00:00Z",
                    "renewalTime": "2026-12-31T00:00:00Z",
                    "revision": 3,
                },
            }
        ],
        "servicemonitors": [
            {
                "metadata": {"name": name},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
                },
            }
            for name in ("backend", "llm-gateway")
        ],
        "prometheusrules": [
            {
                "metadata": {"name": "ai-etl"},
                "spec": {
                    "groups": [
                        {
                            "name": "ai-etl.rules",
                            "rules": [
                                {"record": "job:http_requests:rate5m", "expr": "sum by (job) (rate(http_requests_total[5m]))"},
                                {
                                    "alert": "HighErrorRate",
                                    "expr": 'sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05',
                                    "for": "5m",
                                    "labels": {"severity": "critical"},
                                },
                            ],
                        }
                    ]
                },
            }
        ],
        "persistentvolumeclaims": [
            {
                "metadata": {"name": "backend-uploads"},
                "spec": {
                    "storageClassName": "gp3",
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "20Gi"}},
                    "volumeName": "pvc-backend-uploads",
                },
                "status": {"phase": "Bound"},
            }
        ],
        "persistentvolumes": [
            {
                "metadata": {"name": "pvc-backend-uploads"},
                "spec": {
                    "storageClassName": "gp3",
                    "capacity": {"storage": "20Gi"},
                    "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0123456789abcdef0", "fsType": "ext4"},
                    "claimRef": {"namespace": AI_ETL_NAMESPACE, "name": "backend-uploads"},
                },
                "status": {"phase": "Bound"},
            }
        ],
        "volumesnapshots": [
            {
                "metadata": {"name": "backend-uploads-daily"},
                "spec": {"volumeSnapshotClassName": "ebs-snapshots", "source": {"persistentVolumeClaimName": "backend-uploads"}},
                "status": {"readyToUse": True, "restoreSize": "20Gi", "creationTime": "2026-12-01T02:00:00Z"},
            }
        ],
        "nodes": [
            {
                "metadata": {
                    "name": f"{role}-{n}",
                    "labels": {"node-role.kubernetes.io/control-plane": ""} if role == "control-plane" else {},
                },
                "status": {"conditions": [{**READY, "reason": "KubeletReady"}]},
            }
            for role in ("control-plane", "worker")
            for n in (1, 2, 3)
        ],
    }


# the seed's production LOG_LEVEL on every Deployment, and its feature flags and service addresses on the backend
AI_ETL_ENV = [{"name": "LOG_LEVEL", "value": "INFO"}]
AI_ETL_FEATURE_FLAGS = ("ENABLE_AI_AGENTS", "ENABLE_DRIFT_MONITORING", "ENABLE_VECTOR_SEARCH", "AUTO_CLEANUP_ENABLED")


def ai_etl_deployment(name: str, container: dict[str, Any], replicas: int = 2) -> dict[str, Any]:
    """A seed Deployment: the container given, with the seed's resources, security settings and environment."""
    labels = {"app": name}
    flags = [{"name": flag, "value": "true"} for flag in AI_ETL_FEATURE_FLAGS] if name == "backend" else []
    addresses = [{"name": key, "value": value} for key, value in AI_ETL_BACKEND_ADDRESSES.items()] if name == "backend" else []
    container = {**container, "env": [*AI_ETL_ENV, *flags, *addresses, *container.get("env", [])]}
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
    api.call_api(
        resource_path("daemonsets", AI_ETL_LOGGING_NAMESPACE, None),
        "POST",
        body=copy.deepcopy(AI_ETL_LOG_COLLECTOR),
        auth_settings=["BearerToken"],
        response_types_map={201: "object"},
    )
    for statefulset in ai_etl_supporting_statefulsets():
        api.call_api(
            resource_path("statefulsets", AI_ETL_NAMESPACE, None),
            "POST",
            body=statefulset,
            auth_settings=["BearerToken"],
            response_types_map={201: "object"},
        )
    api.call_api(
        resource_path("deployments", "kube-system", None),
        "POST",
        body=copy.deepcopy(AI_ETL_CLUSTER_AUTOSCALER),
        auth_settings=["BearerToken"],
        response_types_map={201: "object"},
    )


# seed 002's log collection: Fluent Bit's DaemonSet in its own namespace as its Helm chart installs it, a ready pod on
# each of the three workers (numberUnavailable is left out at 0, as the API server omits it)
AI_ETL_LOGGING_NAMESPACE = "logging"
AI_ETL_LOG_COLLECTOR: dict[str, Any] = {
    "metadata": {"name": "fluent-bit", "labels": {"app.kubernetes.io/name": "fluent-bit", "app.kubernetes.io/instance": "fluent-bit"}},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "fluent-bit"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "fluent-bit"}},
            "spec": {"containers": [{"name": "fluent-bit", "image": "cr.fluentbit.io/fluent/fluent-bit:3.2.2"}]},
        },
    },
    "status": {
        "currentNumberScheduled": 3,
        "desiredNumberScheduled": 3,
        "numberAvailable": 3,
        "numberMisscheduled": 0,
        "numberReady": 3,
        "updatedNumberScheduled": 3,
        "observedGeneration": 1,
    },
}


# seed 002's supporting services as their Helm charts install them in the app's namespace (the seed's environment reaches
# them by short name: kafka:9092, minio:9000), with ClickHouse's ZooKeeper ensemble and Redis with Sentinel beside them:
# StatefulSets whose every replica is ready (the chart's name and replica count; a real cluster has its own)
AI_ETL_SUPPORTING_STATEFULSETS = {  # name: (replicas, the containers of a pod)
    "kafka": (3, ["kafka"]),
    "minio": (4, ["minio"]),
    "zookeeper": (3, ["zookeeper"]),
    "redis-node": (3, ["redis", "sentinel"]),
}


def ai_etl_supporting_statefulsets() -> list[dict[str, Any]]:
    """The supporting services' StatefulSets, each with all its replicas ready (the status the controller writes)."""
    statefulsets = []
    for name, (replicas, containers) in AI_ETL_SUPPORTING_STATEFULSETS.items():
        labels = {"app.kubernetes.io/name": name}
        pods = [{"name": c, "image": f"docker.io/bitnami/{'redis-sentinel' if c == 'sentinel' else name}:latest"} for c in containers]
        statefulsets.append(
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": replicas,
                    "serviceName": f"{name}-headless",
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": pods}},
                },
                "status": {
                    "observedGeneration": 1,
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "currentReplicas": replicas,
                    "updatedReplicas": replicas,
                    "availableReplicas": replicas,
                },
            }
        )
    return statefulsets


# seed 002's "Generate strong JWT secrets" as `openssl rand -hex 32` makes them (64 hexadecimal digits), in the Secret the
# backend takes its environment from (a fresh pair for each cluster set up), with the seed's other secret variables
# ("Set all required environment variables": the secret key, the database URL with its password, the LLM providers' keys)
AI_ETL_BACKEND_SECRET = "ai-etl-backend-env"


def ai_etl_backend_secrets() -> dict[str, str]:
    return {
        "JWT_SECRET_KEY": secrets.token_hex(32),
        "WEBHOOK_SECRET": secrets.token_hex(32),
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"postgresql+asyncpg://ai_etl:{secrets.token_hex(16)}@postgres:5432/ai_etl",
        "OPENAI_API_KEY": f"sk-{secrets.token_hex(24)}",
        "ANTHROPIC_API_KEY": f"sk-ant-{secrets.token_hex(24)}",
    }


# the seed's service addresses, in the backend's env as its Deployment sets them (nothing secret in them)
AI_ETL_BACKEND_ADDRESSES = {
    "REDIS_URL": "redis://redis-node:6379/0",
    "CLICKHOUSE_HOST": "clickhouse",
    "AIRFLOW_BASE_URL": "http://airflow:8080",
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "MINIO_ENDPOINT": "minio:9000",
}


# node autoscaling: the Cluster Autoscaler's Deployment in kube-system (its chart's name), scaling the workers' group
AI_ETL_CLUSTER_AUTOSCALER: dict[str, Any] = {
    "metadata": {"name": "cluster-autoscaler", "labels": {"app.kubernetes.io/name": "cluster-autoscaler"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "cluster-autoscaler"}},
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "cluster-autoscaler"}},
            "spec": {
                "containers": [
                    {
                        "name": "cluster-autoscaler",
                        "image": "registry.k8s.io/autoscaling/cluster-autoscaler:v1.31.0",
                        "command": ["./cluster-autoscaler", "--cloud-provider=aws", "--nodes=3:10:ai-etl-workers"],
                    }
                ]
            },
        },
    },
}


# seed 002's ClickHouse table (system.tables: database, name, engine, partition_key, engine_full): replicated,
# partitioned by month, its rows dropped after 90 days; its columns (system.columns) compressed, one with its own codec
AI_ETL_CLICKHOUSE_TABLE = (
    "etl",
    "pipeline_runs",
    "ReplicatedMergeTree",
    "toYYYYMM(day)",
    "ReplicatedMergeTree('/clickhouse/tables/{shard}/etl/pipeline_runs', '{replica}') PARTITION BY toYYYYMM(day)"
    " ORDER BY (day, run_id) TTL day + toIntervalDay(90) SETTINGS index_granularity = 8192",
)
AI_ETL_CLICKHOUSE_COLUMNS = [("etl", "pipeline_runs", "day", ""), ("etl", "pipeline_runs", "duration_ms", "CODEC(Delta(4), ZSTD(1))")]
# its replica here (system.replicas: database, table, is_readonly, absolute_delay, total_replicas, active_replicas):
# writable, caught up, one of two replicas, both active
AI_ETL_CLICKHOUSE_REPLICA = ("etl", "pipeline_runs", 0, 0, 2, 2)


def fill_ai_etl_clickhouse(server: Any) -> None:
    """The seed's table, its columns and its replica in a ClickHouse stand-in's system tables."""
    server.execute("INSERT INTO system.tables VALUES (?, ?, ?, ?, ?)", [AI_ETL_CLICKHOUSE_TABLE])
    server.execute("INSERT INTO system.columns VALUES (?, ?, ?, ?)", AI_ETL_CLICKHOUSE_COLUMNS)
    server.execute("INSERT INTO system.replicas VALUES (?, ?, ?, ?, ?, ?)", [AI_ETL_CLICKHOUSE_REPLICA])


# --- seed 004's server (MLOps system) --------------------------------------------------------------------

# the .env.example the MLOps system ships: PostgreSQL, the API's database URL, Airflow's secret key and admin, the model
MLOPS_ENV_EXAMPLE = """POSTGRES_USER=mlops
POSTGRES_PASSWORD=mlops_password
POSTGRES_DB=mlops
DATABASE_URL=postgresql://mlops:mlops_password@postgres:5432/mlops
AIRFLOW__WEBSERVER__SECRET_KEY=your-secret-key-here
_AIRFLOW_WWW_USER_USERNAME=admin
_AIRFLOW_WWW_USER_PASSWORD=admin
MODEL_PATH=models/
F1_SCORE_THRESHOLD=0.8
"""


def mlops_env(database_url: str) -> dict[str, str]:
    """The server's .env made from the example as seed 004 asks: every key set, the passwords and secret key changed."""
    return {
        "POSTGRES_USER": "mlops",
        "POSTGRES_PASSWORD": "pg-e2e-password-changed",
        "POSTGRES_DB": "mlops",
        "DATABASE_URL": database_url,
        "AIRFLOW__WEBSERVER__SECRET_KEY": "airflow-e2e-secret-key-changed",
        "_AIRFLOW_WWW_USER_USERNAME": "admin",
        "_AIRFLOW_WWW_USER_PASSWORD": "admin-e2e-password-changed",
        "MODEL_PATH": "models/default",
        "F1_SCORE_THRESHOLD": "0.8",
    }


def mlops_airflow() -> Any:
    """The system's own Airflow (a stand-in of its webserver's REST API) as the seed sets it up: the @daily data collection
    DAG, the training DAG (triggered by hand) and the @daily validation DAG (the seed names no file for these two:
    mlops-system.yaml names them), no import errors, the admin user with the password the .env above sets. Their runs:
    data collection tested by hand, then daily; the first training triggered by hand, its pretraining and classifier
    tasks done; the daily validation."""
    from devtools.airflow_standin import AirflowStandin, dag, dag_run, task_instance, user

    password = mlops_env("")["_AIRFLOW_WWW_USER_PASSWORD"]
    dags = [dag("data_collection_dag", "@daily"), dag("model_training_dag", None), dag("model_validation_dag", "@daily")]
    airflow = AirflowStandin(dags=dags, users={"admin": (password, user("admin", ["Admin"]))}, import_errors=[])
    training = dag_run("model_training_dag", "manual__2026-12-01T09:00:00+00:00", run_type="manual", state="success", day=1)
    airflow.dag_runs += [
        dag_run("data_collection_dag", "manual__2026-12-01T08:00:00+00:00", run_type="manual", state="success", day=1),
        dag_run("data_collection_dag", "scheduled__2026-12-02T00:00:00+00:00", run_type="scheduled", state="success", day=2),
        training,
        dag_run("model_validation_dag", "scheduled__2026-12-02T00:00:00+00:00", run_type="scheduled", state="success", day=2),
    ]
    airflow.task_instances += [task_instance(training, task, "success") for task in ("pretrain", "train_classifier", "save_model")]
    return airflow


# seed 002's Airflow (AIRFLOW_BASE_URL): its REST API lets the backend's user in, and holds the pipelines it generated
AI_ETL_AIRFLOW_USER = ("ai-etl-backend", "ai-etl-e2e-airflow-password")


def ai_etl_airflow() -> Any:
    """Seed 002's Airflow, healthy, with a generated pipeline's DAG and the backend's user (the Op role)."""
    from devtools.airflow_standin import AirflowStandin, dag, user

    login, password = AI_ETL_AIRFLOW_USER
    return AirflowStandin(dags=[dag("etl_orders_daily", "@daily")], users={login: (password, user(login, ["Op"]))}, import_errors=[])


def ai_etl_airflow_connection(airflow: Any) -> str:
    """The `ai_etl_airflow` connection: the Airflow webserver, logged in as the backend's user."""
    login, password = AI_ETL_AIRFLOW_USER
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": airflow.port, "login": login, "password": password})


def mlops_airflow_connection(airflow: Any) -> str:
    """The `mlops_airflow` connection: the webserver, logged in as its admin."""
    password = mlops_env("")["_AIRFLOW_WWW_USER_PASSWORD"]
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": airflow.port, "login": "admin", "password": password})


# --- Databricks (seeds 000 and 001) ---------------------------------------------------------------------

WAREHOUSES: dict[str, dict[str, Any]] = {
    "ontos-prod-warehouse": {
        "warehouse_type": "PRO",
        "auto_stop_mins": 45,
        "spot_instance_policy": "COST_OPTIMIZED",
        "enable_photon": True,
    },
    "ml-prod-warehouse": {
        "warehouse_type": "PRO",
        "enable_photon": True,
        "min_num_clusters": 1,
        "max_num_clusters": 4,
        "auto_stop_mins": 30,
    },
}
WORKSPACE_SETTINGS: dict[str, Any] = {
    "secret_scopes": [{"name": "ml-prod", "backend_type": "AZURE_KEYVAULT", "keys": ["feature-store-token"]}],
    "ip_access_lists": [{"label": "corporate", "list_type": "ALLOW", "ip_addresses": ["10.0.0.0/16"], "enabled": True}],
    "workspace_conf": {"enableIpAccessLists": "true"},
    "cluster_policies": [
        {
            "name": "ml-jobs",
            "definition": {
                "autotermination_minutes": {"type": "range", "minValue": 10, "maxValue": 60},
                "node_type_id": {"type": "allowlist", "values": ["Standard_DS3_v2", "Standard_DS4_v2"]},
            },
        }
    ],
    # seed 001's production pool the jobs' clusters start from
    "instance_pools": [
        {"instance_pool_name": "ml-prod-pool", "node_type_id": "Standard_DS3_v2", "min_idle_instances": 1, "max_capacity": 20}
    ],
    # seed 000's service principal the workbench app authenticates as (the profile's grants name it)
    "service_principals": [{"displayName": "ontos-app-sp", "active": True}],
}
# seed 001's batch inference job (101): scheduled nightly, the on-call told when it fails
BATCH_JOB_SETTINGS: dict[str, Any] = {
    "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
    "email_notifications": {"on_failure": ["ml-oncall@example.com"]},
    "tasks": [{"task_key": "main", "max_retries": 2, "min_retry_interval_millis": 60000}],
    # an automated workload runs as a service principal (its application id), not as a person
    "run_as": {"service_principal_name": "6f1c2a4e-0b7d-4c55-9e3a-2d8f1b7c9a10"},
}
# seed 001's retraining job (102): started whenever the feature table changes
RETRAINING_JOB_SETTINGS: dict[str, Any] = {
    "trigger": {"pause_status": "UNPAUSED", "table_update": {"table_names": ["ml.features.customer_features"], "condition": "ANY_UPDATED"}},
    "email_notifications": {"on_failure": ["ml-oncall@example.com"]},
    "tasks": [{"task_key": "train", "max_retries": 1}],
}
# seed 001's tracking, online serving, monitoring and alerting as the workspace's APIs return them
ML_PLATFORM_SETTINGS: dict[str, Any] = {
    "experiments": [{"name": "/Shared/ml/churn_classifier", "artifact_location": "dbfs:/databricks/mlflow-tracking/churn_classifier"}],
    "online_tables": [
        {
            "name": "ml.features.customer_features_online",
            "spec": {
                "source_table_full_name": "ml.features.customer_features",
                "primary_key_columns": ["customer_id"],
                "run_continuously": {},
            },
            "status": {"detailed_state": "ONLINE_CONTINUOUS_UPDATE", "message": "Online table is continuously updating."},
        }
    ],
    "quality_monitors": [
        {
            "table_name": "ml.monitoring.inference_log",
            "status": "MONITOR_STATUS_ACTIVE",
            "output_schema_name": "ml.monitoring",
            "drift_metrics_table_name": "ml.monitoring.inference_log_drift_metrics",
            "profile_metrics_table_name": "ml.monitoring.inference_log_profile_metrics",
            "inference_log": {
                "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
                "prediction_col": "prediction",
                "timestamp_col": "prediction_timestamp",
                "model_id_col": "model_version",
                "granularities": ["1 day"],
            },
        }
    ],
    "notification_destinations": [
        {"display_name": "ml-alerts", "destination_type": "SLACK"},
        {"display_name": "ml-oncall", "destination_type": "PAGERDUTY"},
    ],
}
SERVED_ENTITIES = [
    {
        "name": "churn",
        "entity_name": "ml.models.churn_classifier",
        "entity_version": "2",
        "workload_size": "Small",
        "scale_to_zero_enabled": False,
    }
]
# the endpoint's AI Gateway limits each caller's queries (the seed's "Rate limiting configured")
SERVING_AI_GATEWAY: dict[str, Any] = {"rate_limits": [{"calls": 100, "key": "user", "renewal_period": "minute"}]}
TABLE_PROPERTIES = {
    "delta.autoOptimize.optimizeWrite": "true",
    "delta.autoOptimize.autoCompact": "true",
    "delta.deletedFileRetentionDuration": "interval 7 days",
    "delta.logRetentionDuration": "interval 30 days",
}


def set_up_workspace(server: Any) -> None:
    """The workspace's warehouses and settings as the seeds ask for them."""
    for warehouse_id, settings in WAREHOUSES.items():
        server.add_warehouse(warehouse_id, **settings)
    server.set_settings(**copy.deepcopy(WORKSPACE_SETTINGS))
    server.set_settings(**copy.deepcopy(ML_PLATFORM_SETTINGS))
    server.set_settings(**copy.deepcopy(APP_AND_SQL_SETTINGS))


# seed 000's app runs as the service principal the grants name, and acts for the signed-in user with OAuth scopes;
# the workspace's SQL warehouses stop a statement after an hour; seed 001's cost dashboard (its title is ours: a real
# profile names its own)
APP_AND_SQL_SETTINGS: dict[str, Any] = {
    "apps": {
        "ontos-ml-workbench": {
            "service_principal_name": "ontos-app-sp",
            "user_api_scopes": ["sql", "iam.current-user:read"],
            "effective_user_api_scopes": ["sql", "iam.current-user:read"],
        }
    },
    "warehouse_config": {
        "security_policy": "DATA_ACCESS_CONTROL",
        "sql_configuration_parameters": {"configuration_pairs": [{"key": "STATEMENT_TIMEOUT", "value": "3600"}]},
    },
    "dashboards": [{"display_name": "ML Platform Cost Monitoring"}],
}


# seed 000's app.yaml environment in production: debug off, logging at INFO (LOG_LEVEL is our name: the seed names none)
ONTOS_APP_ENV: list[dict[str, str]] = [{"name": "DEBUG", "value": "false"}, {"name": "LOG_LEVEL", "value": "INFO"}]


def ontos_app_yaml(command: list[str], env: list[dict[str, str]] | None = None) -> str:
    """The workbench's app.yaml as Databricks reads it: the command and the production environment (JSON is YAML)."""
    return json.dumps({"command": command, "env": ONTOS_APP_ENV if env is None else env})


def set_table_properties(target: Any, properties: dict[str, str] | None = None) -> None:
    """The seed's Delta properties on every table of a unity_catalog data target."""
    pairs = ", ".join(f"'{key}' = '{value}'" for key, value in (TABLE_PROPERTIES if properties is None else properties).items())
    for table in target.config.tables:
        target.warehouse.execute(f"ALTER TABLE {target.table(table)} SET TBLPROPERTIES ({pairs})")


def cluster_feature_tables(target: Any) -> None:
    """Seed 001's liquid clustering: every feature table clustered by its key."""
    for table in target.config.tables:
        target.warehouse.execute(f"ALTER TABLE {target.table(table)} CLUSTER BY (customer_id)")


DATABRICKS_SYSTEMS = ("ontos-ml-workbench", "databricks-ml-platform")


def context(system: str) -> Any:
    """The system as maintenance and the item checks see it: its profile, no release."""
    from airflow_rollout.config import load_profile
    from airflow_rollout.context import SystemContext

    return SystemContext(profile=load_profile(system))


def shipped_checks(system: str, kind: str) -> dict[str, Any]:
    """The checks of one kind in the system's shipped checklist, by item text."""
    from airflow_rollout.checklists import load_checklist

    checklist = load_checklist(system)
    assert checklist is not None
    return {e.item.text: e.item.check for e in checklist.entries() if e.item.check is not None and e.item.check.kind == kind}


# Seed 002's monitoring, as Prometheus and Grafana hold it when set up as the seed asks (devtools/monitoring_standin.py):
# a retention of 15 days, the key metrics scraped from the services, the seed's four alerts with its thresholds, and
# its four dashboards
AI_ETL_SERIES: list[dict[str, str]] = [
    {"__name__": "http_requests_total", "job": "backend", "method": "GET", "status": "200"},
    {"__name__": "http_requests_total", "job": "backend", "method": "POST", "status": "500"},
    {"__name__": "http_request_duration_seconds_bucket", "job": "backend", "le": "2"},
    {"__name__": "etl_pipeline_runs_total", "job": "backend", "status": "success"},
    {"__name__": "etl_pipeline_runs_total", "job": "backend", "status": "failed"},
    {"__name__": "db_pool_connections_in_use", "job": "backend"},
    {"__name__": "db_pool_size", "job": "backend"},
    {"__name__": "llm_cost_usd_total", "job": "llm-gateway", "model": "gpt-4o"},
    {"__name__": "llm_request_duration_seconds_bucket", "job": "llm-gateway", "le": "5"},
    # what the exporters report on the replicas: postgres_exporter's lag of each standby, redis_exporter's lag of each
    # replica and the replicas' link to their master, ClickHouse's own endpoint's replica delay and read-only replicas
    {"__name__": "pg_replication_lag_seconds", "job": "postgres", "instance": "postgres-replica-1:9187"},
    {"__name__": "redis_connected_slave_lag_seconds", "job": "redis", "slave_ip": "10.0.2.12"},
    {"__name__": "redis_master_link_up", "job": "redis", "instance": "redis-node-1:9121"},
    {"__name__": "ClickHouseAsyncMetrics_ReplicasMaxAbsoluteDelay", "job": "clickhouse"},
    {"__name__": "ClickHouseMetrics_ReadonlyReplica", "job": "clickhouse"},
    # Fluent Bit's records sent by its Loki output (the output's name label is the plugin's, numbered)
    {"__name__": "fluentbit_output_proc_records_total", "job": "fluent-bit", "name": "loki.0"},
]
AI_ETL_ALERTS = {
    "HighErrorRate": 'sum(rate(http_requests_total{job="backend",status=~"5.."}[5m]))'
    ' / sum(rate(http_requests_total{job="backend"}[5m])) > 0.05',
    "SlowApiResponses": 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="backend"}[5m]))) > 2',
    "DatabaseDown": 'pg_up{job="postgres"} == 0',
    "DiskSpaceLow": '1 - node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes{mountpoint="/"} > 0.8',
}
AI_ETL_DASHBOARDS = ("System Overview", "API Performance", "Pipeline Analytics", "LLM Usage")
# seed 002's on-call: Alertmanager pages PagerDuty for critical alerts and sends the rest to Slack, as its status shows its
# configuration (secrets masked as <secret>); the receiver names are ours, a real profile's Alertmanager has its own
AI_ETL_ALERTMANAGER_CONFIG = """global:
  resolve_timeout: 5m
route:
  receiver: slack-ops
  group_by: [alertname]
  routes:
  - receiver: pagerduty-oncall
    matchers: ['severity="critical"']
receivers:
- name: slack-ops
  slack_configs:
  - api_url: <secret>
    channel: '#ai-etl-ops'
- name: pagerduty-oncall
  pagerduty_configs:
  - routing_key: <secret>
"""
# seed 002's Loki (where Fluent Bit forwards): the compactor deletes logs after 31 days, and the collector labels each
# line with the pod's namespace and app label (the label names are the Fluent Bit output's: a real profile sets its own)
AI_ETL_LOKI_CONFIG = """compactor:
  working_directory: /loki/compactor
  retention_enabled: true
  delete_request_store: s3
limits_config:
  retention_period: 744h
"""


def set_up_ai_etl_monitoring(server: Any) -> None:
    """Prometheus's retention, series and alerting rules, Grafana's dashboards and Alertmanager's routes, as seed 002's
    monitoring has them."""
    server.retention = "15d"
    server.series[:] = copy.deepcopy(AI_ETL_SERIES)
    rules = [
        {"name": name, "query": query, "duration": 300, "labels": {"severity": "warning"}, "health": "ok", "type": "alerting", "alerts": []}
        for name, query in AI_ETL_ALERTS.items()
    ]
    server.rule_groups[:] = [{"name": "ai-etl", "file": "/etc/prometheus/rules/ai-etl.yaml", "interval": 30, "rules": rules}]
    server.dashboards[:] = [
        {"uid": title.lower().replace(" ", "-"), "title": title, "panels": [{"id": 1, "type": "timeseries", "title": title}]}
        for title in AI_ETL_DASHBOARDS
    ]
    server.alertmanager_config = AI_ETL_ALERTMANAGER_CONFIG
    server.loki_config = AI_ETL_LOKI_CONFIG
    now = str(time.time_ns())
    server.log_streams[:] = [
        {"stream": {"namespace": AI_ETL_NAMESPACE, "app": app, "container": app}, "values": [[now, f"INFO {app} started"]]}
        for app in ("backend", "frontend", "llm-gateway")
    ]


# Seed 003's monitoring (Step 10): Grafana with the three dashboards the seed imports, and Prometheus as its data source
# (uid `prometheus`: the seed gives none, include/checklists/routing-ml-platform.yaml names it)
ROUTING_DASHBOARDS = ("Routing ML Overview", "Model Training Metrics", "API Performance")


def set_up_routing_monitoring(server: Any) -> None:
    """Grafana's dashboards and its Prometheus data source (the stand-in's own Prometheus), as seed 003 sets them up."""
    server.dashboards[:] = [
        {"uid": title.lower().replace(" ", "-"), "title": title, "panels": [{"id": 1, "type": "timeseries", "title": title}]}
        for title in ROUTING_DASHBOARDS
    ]
    url = f"http://127.0.0.1:{server.prometheus_port}"
    server.datasources[:] = [{"id": 1, "uid": "prometheus", "name": "Prometheus", "type": "prometheus", "access": "proxy", "url": url}]


# Seed 001's GitHub Actions (devtools/github_standin.py): the repository's environments dev, staging and production, the
# production one guarded by required reviewers and a branch policy, a deploy workflow per environment, and the CI's
# integration-tests job passed on the head of main. The repository, the reviewers, the workflow files and the job are
# ours (the seed names none): databricks-ml-platform.yaml names them.
ML_GITHUB_REPOSITORY = "acme/ml-platform"
ML_GITHUB_TOKEN = "ml-github-e2e-token"
ML_GITHUB_WORKFLOWS = ("deploy-dev.yml", "deploy-staging.yml", "deploy-prod.yml")


def ml_github() -> Any:
    """The repository's GitHub API as seed 001's CI/CD sets it up."""
    from devtools.github_standin import BRANCH_POLICY, GitHubStandin, check_run, environment, required_reviewers, workflow

    github = GitHubStandin(repository=ML_GITHUB_REPOSITORY, token=ML_GITHUB_TOKEN)
    github.environments.update(
        dev=environment("dev", []),
        staging=environment("staging", []),
        production=environment("production", [required_reviewers("ml-lead", "ops-lead"), BRANCH_POLICY], protected_branches=True),
    )
    github.workflows += [
        workflow(index, f"Deploy to {name.removeprefix('deploy-').removesuffix('.yml')}", f".github/workflows/{name}")
        for index, name in enumerate(ML_GITHUB_WORKFLOWS, 1)
    ]
    github.head_check_runs["main"] = [check_run("unit-tests", "success"), check_run("integration-tests", "success")]
    return github


def ml_github_connection(github: Any) -> str:
    """The `github` connection: the stand-in's API, with a token that reads the repository."""
    return json.dumps({"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": github.port, "password": ML_GITHUB_TOKEN})
