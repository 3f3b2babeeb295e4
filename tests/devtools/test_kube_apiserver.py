"""The Kubernetes API stand-in, driven by the official `kubernetes` client and the provider's KubernetesHook.

What matters is that a client waiting as `kubectl rollout status` does sees success, a stall or a failure
as against a real cluster, that mapped images run real processes answering real HTTP, and that Jobs run,
fail, log and time out as the Job controller reports them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from kubernetes import client, config, watch

from devtools.kube_apiserver import KubeApiServer, kubeconfig
from devtools.local_images import LocalImage
from devtools.local_postgres import free_port

NS = "default"
TINY_APP = Path(__file__).with_name("kube_fixtures") / "tiny_app.py"
MAPPED = "registry.test/tiny"
UNMAPPED = "registry.test/elsewhere"


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    root = tmp_path_factory.mktemp("kube")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "image-tool"
    tool.write_text(f"#!{sys.executable}\nimport os, sys\nprint('image-tool', *sys.argv[1:], os.environ.get('GREETING'))\n")
    tool.chmod(0o755)
    image_map = {
        MAPPED: LocalImage(
            command=["{python}", str(TINY_APP), "--version", "{version}", "--port", "{port}"], bin_dir=bin_dir, readiness_path="/health"
        )
    }
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with KubeApiServer(image_map=image_map, state_dir=root / "state", ready_delay=0.2, job_backoff=0.05) as server:
        yield server
    time.sleep(0.2)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {[p.cmdline() for p in left]}"


@pytest.fixture
def api(kube):
    kube.reset()
    api_client = config.new_client_from_config_dict(kube.kubeconfig())
    yield api_client
    api_client.close()


@pytest.fixture
def apps(api):
    return client.AppsV1Api(api)


GOOD_ROLLOUT_DEADLINE = 30


def deployment(name: str, image: str, *, port: int = 8080, deadline: int = 2, strategy: str = "RollingUpdate", **container) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": deadline,
            "strategy": {"type": strategy},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": port}], **container}]},
            },
        },
    }


def rollout_status(apps: client.AppsV1Api, name: str, timeout: float = 10) -> str:
    """Wait as `kubectl rollout status` does: 'complete', or 'deadline' when the progress deadline was exceeded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        d = apps.read_namespaced_deployment(name, NS)
        s = d.status
        if s.observed_generation is not None and s.observed_generation >= d.metadata.generation:
            progressing = next((c for c in s.conditions or [] if c.type == "Progressing"), None)
            if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
                return "deadline"
            updated, replicas, available = s.updated_replicas or 0, s.replicas or 0, s.available_replicas or 0
            if updated >= d.spec.replicas and replicas <= updated and available >= updated:
                return "complete"
        time.sleep(0.05)
    raise AssertionError(f"rollout of {name} neither completed nor failed within {timeout} s")


def conditions(apps: client.AppsV1Api, name: str) -> dict[str, tuple[str, str]]:
    status = apps.read_namespaced_deployment_status(name, NS).status
    return {c.type: (c.status, c.reason) for c in status.conditions or []}


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


def test_discovery_errors_and_metadata(kube, apps):
    assert get_json(kube.url + "/version")["major"] == "1"
    assert "apps" in [g["name"] for g in get_json(kube.url + "/apis")["groups"]]

    with pytest.raises(client.ApiException) as missing:
        apps.read_namespaced_deployment("nothing", NS)
    status = json.loads(missing.value.body)
    assert (missing.value.status, status["kind"], status["status"], status["reason"]) == (404, "Status", "Failure", "NotFound")
    assert status["message"] == 'deployments.apps "nothing" not found'

    created = apps.create_namespaced_deployment(NS, deployment("meta", f"{UNMAPPED}:1.0"))
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.generation == 1
    assert created.spec.strategy.rolling_update.max_surge == "25%"  # the API server's defaults
    with pytest.raises(client.ApiException) as exists:
        apps.create_namespaced_deployment(NS, deployment("meta", f"{UNMAPPED}:1.0"))
    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"

    bad = deployment("bad", f"{UNMAPPED}:1.0")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(client.ApiException) as invalid:
        apps.create_namespaced_deployment(NS, bad)
    assert invalid.value.status == 422

    assert rollout_status(apps, "meta") == "complete"
    first = apps.read_namespaced_deployment("meta", NS)
    labelled = apps.patch_namespaced_deployment("meta", NS, {"metadata": {"labels": {"team": "ml"}}})
    assert labelled.metadata.generation == 1 and int(labelled.metadata.resource_version) > int(first.metadata.resource_version)
    first.spec.replicas = 1
    with pytest.raises(client.ApiException) as stale:  # a replace with an old resourceVersion
        apps.replace_namespaced_deployment("meta", NS, first)
    assert stale.value.status == 409 and json.loads(stale.value.body)["reason"] == "Conflict"
    assert [d.metadata.name for d in apps.list_namespaced_deployment(NS, label_selector="team=ml").items] == ["meta"]
    assert apps.delete_namespaced_deployment("meta", NS).status == "Success"
    assert apps.list_namespaced_deployment(NS).items == []


def test_rollout_stall_then_restore(kube, apps):
    apps.create_namespaced_deployment(NS, deployment("web", f"{UNMAPPED}:1.0"))
    assert rollout_status(apps, "web") == "complete"
    assert conditions(apps, "web") == {"Available": ("True", "MinimumReplicasAvailable"), "Progressing": ("True", "NewReplicaSetAvailable")}

    kube.set_image_behaviour(f"{UNMAPPED}:2.0", "stall")
    patched = apps.patch_namespaced_deployment(
        "web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"{UNMAPPED}:2.0"}]}}}}
    )
    assert patched.metadata.generation == 2
    assert patched.spec.template.spec.containers[0].ports[0].container_port == 8080  # merged by name, not replaced
    began = time.monotonic()
    assert rollout_status(apps, "web") == "deadline"
    assert time.monotonic() - began >= 1.5
    status = apps.read_namespaced_deployment_status("web", NS).status
    # RollingUpdate: the old pod still serves while the new one never becomes ready.
    assert (status.replicas, status.updated_replicas, status.available_replicas) == (2, 1, 1)
    assert conditions(apps, "web")["Progressing"] == ("False", "ProgressDeadlineExceeded")

    current = apps.read_namespaced_deployment("web", NS)
    current.spec.template.spec.containers[0].image = f"{UNMAPPED}:1.0"
    restored = apps.replace_namespaced_deployment("web", NS, current)
    assert restored.metadata.generation == 3
    assert rollout_status(apps, "web") == "complete"
    assert apps.read_namespaced_deployment("web", NS).metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_recreate_crash_with_json_patch_then_merge_patch(kube, apps, api):
    apps.create_namespaced_deployment(NS, deployment("worker", f"{UNMAPPED}:1.0", strategy="Recreate"))
    assert rollout_status(apps, "worker") == "complete"
    kube.set_image_behaviour(f"{UNMAPPED}:crashy", "crash")
    apps.patch_namespaced_deployment(
        "worker", NS, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": f"{UNMAPPED}:crashy"}]
    )
    assert rollout_status(apps, "worker") == "deadline"
    assert conditions(apps, "worker")["Available"] == ("False", "MinimumReplicasUnavailable")
    pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="app=worker").items
    assert len(pods) == 1
    assert pods[0].status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"

    apps.patch_namespaced_deployment(
        "worker",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"{UNMAPPED}:1.1", "ports": [{"containerPort": 8080}]}]}}}},
        _content_type="application/merge-patch+json",
    )
    assert rollout_status(apps, "worker") == "complete"
    assert conditions(apps, "worker")["Available"] == ("True", "MinimumReplicasAvailable")


def test_mapped_image_runs_a_real_process_with_secrets(kube, apps, api):
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(NS, {"metadata": {"name": "app-secrets"}, "stringData": {"token": "s3cret", "GREETING": "hello"}})
    assert core.read_namespaced_secret("app-secrets", NS).data["token"] == "czNjcmV0"  # base64, as the API answers
    port = free_port()
    # A good rollout is given the time a loaded machine may need to stop the old process and start the new one
    # (a 2 s deadline failed a good rollout once, under a full test run); only the broken image gets the short one.
    spec = deployment(
        "tiny",
        f"{MAPPED}:1.2.0",
        port=port,
        deadline=GOOD_ROLLOUT_DEADLINE,
        readinessProbe={"httpGet": {"path": "/health", "port": port}, "periodSeconds": 1},
        env=[{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "token"}}}],
        envFrom=[{"secretRef": {"name": "app-secrets"}}],
    )
    apps.create_namespaced_deployment(NS, spec)
    assert rollout_status(apps, "tiny", timeout=GOOD_ROLLOUT_DEADLINE) == "complete"
    assert get_json(f"http://127.0.0.1:{port}/health") == {"version": "1.2.0", "greeting": "hello", "token": "s3cret"}
    pid = kube.state()["deployments"]["default/tiny"]["process"]["pid"]

    apps.patch_namespaced_deployment(
        "tiny", NS, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"{MAPPED}:1.3.0"}]}}}}
    )
    assert rollout_status(apps, "tiny", timeout=GOOD_ROLLOUT_DEADLINE) == "complete"
    assert get_json(f"http://127.0.0.1:{port}/health")["version"] == "1.3.0"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # Recreate: the old one stopped

    apps.patch_namespaced_deployment(
        "tiny",
        NS,
        {"spec": {"progressDeadlineSeconds": 2, "template": {"spec": {"containers": [{"name": "app", "image": f"{MAPPED}:broken"}]}}}},
    )
    assert rollout_status(apps, "tiny", timeout=15) == "deadline"
    pod = core.list_namespaced_pod(NS, label_selector="app=tiny").items[0]
    assert pod.status.container_statuses[0].restart_count >= 1
    assert "does not start" in pod_log(core, pod.metadata.name, NS)

    apps.patch_namespaced_deployment(
        "tiny",
        NS,
        {
            "spec": {
                "progressDeadlineSeconds": GOOD_ROLLOUT_DEADLINE,
                "template": {"spec": {"containers": [{"name": "app", "image": f"{MAPPED}:1.3.0"}]}},
            }
        },
    )
    assert rollout_status(apps, "tiny", timeout=GOOD_ROLLOUT_DEADLINE) == "complete"
    assert get_json(f"http://127.0.0.1:{port}/health")["version"] == "1.3.0"

    apps.delete_namespaced_deployment("tiny", NS)
    end = time.monotonic() + 10
    while kube_port_open(port) and time.monotonic() < end:
        time.sleep(0.1)
    assert not kube_port_open(port)


def pod_log(core: client.CoreV1Api, name: str, namespace: str) -> str:
    # kubernetes-client 36 returns the repr of the bytes ("b'...'") for text responses (kubernetes-client/python#2596),
    # against a real cluster as much as here: read the raw response instead.
    return core.read_namespaced_pod_log(name, namespace, _preload_content=False).data.decode()


def kube_port_open(port: int) -> bool:
    try:
        get_json(f"http://127.0.0.1:{port}/health")
    except OSError:
        return False
    return True


def test_watch_sees_the_rollout_complete(apps):
    apps.create_namespaced_deployment(NS, deployment("watched", f"{UNMAPPED}:1.0"))
    seen = []
    stream = watch.Watch()
    for event in stream.stream(apps.list_namespaced_deployment, NS, field_selector="metadata.name=watched", timeout_seconds=5):
        reasons = {c.type: c.reason for c in event["object"].status.conditions or []}
        seen.append((event["type"], reasons.get("Progressing")))
        if reasons.get("Progressing") == "NewReplicaSetAvailable":
            stream.stop()
    assert seen[0][0] == "ADDED" and seen[-1] == ("MODIFIED", "NewReplicaSetAvailable")


def job(
    name: str, command: list[str], *, image: str = f"{UNMAPPED}:1", backoff_limit: int = 0, deadline: int | None = None, **container
) -> dict:
    spec: dict = {
        "backoffLimit": backoff_limit,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": image, "command": command, **container}]}},
    }
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def wait_job(batch: client.BatchV1Api, name: str, timeout: float = 10) -> client.V1Job:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = batch.read_namespaced_job_status(name, NS)
        if any(c.type in ("Complete", "Failed") and c.status == "True" for c in found.status.conditions or []):
            return found
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not finish within {timeout} s")


def test_jobs_through_the_kubernetes_hook(kube, monkeypatch):
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    kube.reset()
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", kube.airflow_connection())
    hook = KubernetesHook(conn_id="kube_standin")
    batch, core = hook.batch_v1_client, hook.core_v1_client
    assert hook.get_namespace() == NS
    # The extra's kube_config may also be a JSON string, as the connection form stores it.
    as_string = {"conn_type": "kubernetes", "extra": {"kube_config": json.dumps(kube.kubeconfig())}}
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN_STR", json.dumps(as_string))
    assert KubernetesHook(conn_id="kube_standin_str").core_v1_client.list_namespaced_pod(NS).items == []
    core.create_namespaced_secret(NS, {"metadata": {"name": "job-secrets"}, "data": {"greeting": "aGk="}})
    env = [{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "job-secrets", "key": "greeting"}}}]

    batch.create_namespaced_job(NS, job("migrate", ["image-tool", "upgrade", "$(GREETING)"], image=f"{MAPPED}:1.2.0", env=env))
    done = wait_job(batch, "migrate")
    assert done.status.succeeded == 1 and done.status.completion_time and done.status.start_time
    assert {c.type for c in done.status.conditions} >= {"Complete"}
    pods = core.list_namespaced_pod(NS, label_selector="job-name=migrate").items
    assert len(pods) == 1 and pods[0].status.phase == "Succeeded"
    assert pods[0].metadata.labels["controller-uid"] == done.metadata.uid
    assert pod_log(core, pods[0].metadata.name, NS) == "image-tool upgrade hi hi\n"

    script = "import sys; print('attempting'); sys.exit('schema is newer than this build')"
    batch.create_namespaced_job(NS, job("fails", [sys.executable, "-c", script], backoff_limit=1))
    failed = wait_job(batch, "fails")
    assert failed.status.failed == 2 and not failed.status.succeeded
    reason = next(c.reason for c in failed.status.conditions if c.type == "Failed")
    assert reason == "BackoffLimitExceeded"
    pods = core.list_namespaced_pod(NS, label_selector="job-name=fails").items
    assert len(pods) == 2 and {p.status.phase for p in pods} == {"Failed"}
    assert pod_log(core, pods[0].metadata.name, NS) == "attempting\nschema is newer than this build\n"

    batch.create_namespaced_job(NS, job("slow", ["sleep", "30"], deadline=1))
    slow = wait_job(batch, "slow")
    assert next(c.reason for c in slow.status.conditions if c.type == "Failed") == "DeadlineExceeded"

    batch.delete_namespaced_job("fails", NS, propagation_policy="Background")
    assert core.list_namespaced_pod(NS, label_selector="job-name=fails").items == []
    with pytest.raises(client.ApiException) as gone:
        batch.read_namespaced_job("fails", NS)
    assert gone.value.status == 404


def test_job_waits_for_its_secret_and_delete_kills_it(kube, api):
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    env_from = [{"secretRef": {"name": "late"}}]
    batch.create_namespaced_job(NS, job("later", [sys.executable, "-c", "import os; print(os.environ['WORD'])"], envFrom=env_from))
    time.sleep(0.5)
    pod = core.list_namespaced_pod(NS, label_selector="job-name=later").items[0]
    assert pod.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError"
    core.create_namespaced_secret(NS, {"metadata": {"name": "late"}, "stringData": {"WORD": "now"}})
    assert wait_job(batch, "later").status.succeeded == 1
    assert pod_log(core, pod.metadata.name, NS) == "now\n"

    batch.create_namespaced_job(NS, job("forever", ["sleep", "60"]))
    end = time.monotonic() + 5
    while not sleeping():
        assert time.monotonic() < end, "the job's process did not start"
        time.sleep(0.05)
    batch.delete_namespaced_job("forever", NS, body=client.V1DeleteOptions(propagation_policy="Foreground"))
    time.sleep(0.3)
    assert not sleeping()


def sleeping() -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.name() == "sleep" and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            pass
    return found


def test_cli_serves_and_writes_a_kubeconfig(tmp_path):
    import subprocess

    port = free_port()
    out = tmp_path / "kubeconfig.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    args = [
        sys.executable,
        "-m",
        "devtools.kube_apiserver",
        "--port",
        str(port),
        "--state-dir",
        str(tmp_path),
        "--kubeconfig-out",
        str(out),
    ]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline()
        assert json.loads(out.read_text()) == kubeconfig(f"http://127.0.0.1:{port}")
        assert get_json(f"http://127.0.0.1:{port}/api")["versions"] == ["v1"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_a_failed_migration_job_leads_with_its_command_and_the_exception_line(kube, monkeypatch, tmp_path, caplog):
    from airflow_rollout.config import KubernetesJobMigrations
    from airflow_rollout.targets.kubernetes import KubernetesJobMigrator
    from airflow_rollout.targets.migrations import MigrationError

    kube.reset()
    monkeypatch.setenv("AIRFLOW_CONN_KUBE_STANDIN", kube.airflow_connection())
    script = tmp_path / "migrate.py"
    script.write_text("print('noise ' * 500)\nraise RuntimeError('Can not locate revision 3c4d')\n")
    config = KubernetesJobMigrations(
        kind="kubernetes_job",
        conn_id="kube_standin",
        namespace=NS,
        image=UNMAPPED,
        command=[sys.executable, str(script), "upgrade", "head"],
    )
    with caplog.at_level("INFO", logger="airflow_rollout.targets.kubernetes"), pytest.raises(MigrationError) as caught:
        KubernetesJobMigrator(config=config, version="1.2.0", job_name="migrate-1-2-0").run()
    assert str(caught.value) == (
        f"migration job migrate-1-2-0 (`{sys.executable} {script} upgrade head`) failed (BackoffLimitExceeded): "
        "RuntimeError: Can not locate revision 3c4d"
    )
    assert "noise " * 500 in caplog.text and "Traceback (most recent call last)" in caplog.text  # the whole pod log


def test_kept_kinds_and_labelled_namespaces_answer_as_the_api_does(api):
    """The kinds no controller acts on here are kept as created, under their own group and version only."""
    from kubernetes.client.exceptions import ApiException

    def call(path: str, method: str = "GET", body: dict | None = None, status: int = 200) -> dict:
        return api.call_api(path, method, body=body, auth_settings=["BearerToken"], response_types_map={status: "object"})[0]

    call("/api/v1/namespaces", "POST", {"metadata": {"name": "apps", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}, 201)
    labels = call("/api/v1/namespaces/apps")["metadata"]["labels"]
    assert labels == {"pod-security.kubernetes.io/enforce": "restricted", "kubernetes.io/metadata.name": "apps"}
    assert call("/api/v1/namespaces/elsewhere")["metadata"]["labels"] == {"kubernetes.io/metadata.name": "elsewhere"}
    with pytest.raises(ApiException) as taken:
        call("/api/v1/namespaces", "POST", {"metadata": {"name": "apps"}}, 201)
    assert taken.value.status == 409
    hpa = {
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5},
    }
    created = call("/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers", "POST", hpa, 201)
    assert (created["kind"], created["apiVersion"], created["spec"]["minReplicas"]) == ("HorizontalPodAutoscaler", "autoscaling/v2", 2)
    listed = call("/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers")
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web"]
    with pytest.raises(ApiException) as wrong_version:
        call("/apis/autoscaling/v1/namespaces/apps/horizontalpodautoscalers")
    assert wrong_version.value.status == 404


def test_a_secret_s_managed_fields_record_who_changed_what_and_when(api):
    """As the API server keeps them for Update operations: a writer owns what it changed, stamped when it changed it; a
    write that changes nothing keeps the time; a writer taking a key over removes it from the one that had it; managed
    fields a client sends replace the stored ones, as the API server lets a write reset them."""
    core = client.CoreV1Api(api)

    def entries() -> dict[str, tuple[set[str], str]]:
        fields = core.read_namespaced_secret("env", "apps").metadata.managed_fields
        return {e.manager: (set(e.fields_v1.get("f:data", {})) - {"."}, e.time.isoformat()) for e in fields}

    secret = {"metadata": {"name": "env"}, "stringData": {"A": "1", "B": "2"}}
    core.create_namespaced_secret("apps", secret, field_manager="kubectl-create")
    [created] = core.read_namespaced_secret("env", "apps").metadata.managed_fields
    assert (created.manager, created.operation, created.fields_v1["f:data"]) == (
        "kubectl-create",
        "Update",
        {".": {}, "f:A": {}, "f:B": {}},
    )
    assert created.fields_v1["f:type"] == {}
    old = {"manager": "kubectl-create", "operation": "Update", "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1"}
    core.patch_namespaced_secret("env", "apps", {"metadata": {"managedFields": [{**old, "fieldsV1": {"f:data": {"f:A": {}, "f:B": {}}}}]}})
    assert entries() == {"kubectl-create": ({"f:A", "f:B"}, "2026-01-01T00:00:00+00:00")}
    core.patch_namespaced_secret("env", "apps", {"metadata": {"labels": {"team": "etl"}}}, field_manager="kubectl-label")
    core.patch_namespaced_secret("env", "apps", {"data": {"B": "Mg=="}}, field_manager="external-secrets")  # B as it was
    assert entries()["kubectl-create"] == ({"f:A", "f:B"}, "2026-01-01T00:00:00+00:00") and "external-secrets" not in entries()
    core.patch_namespaced_secret("env", "apps", {"stringData": {"B": "rotated"}}, field_manager="external-secrets")
    after = entries()
    assert after["kubectl-create"] == ({"f:A"}, "2026-01-01T00:00:00+00:00")
    assert after["external-secrets"][0] == {"f:B"} and after["external-secrets"][1] > "2026-01-01T00:00:00+00:00"
    assert after["kubectl-label"][0] == set()  # it owns the label only
