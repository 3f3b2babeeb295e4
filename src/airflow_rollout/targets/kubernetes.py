"""kubernetes app target and migration Job (seed 002), through the cncf-kubernetes provider's KubernetesHook.

Deploying a version sets the Deployment's container image to `<image>:<version>` and waits for the rollout
the way `kubectl rollout status` does: the controller has observed the new generation, every replica is
updated and available, no old replica is left, and the `Progressing` condition has not reported
`ProgressDeadlineExceeded`. Before touching the Deployment the release records its whole pod template;
a rollback puts that template back (a JSON patch replacing `/spec/template`, not a guess at the previous
ReplicaSet) and waits for that rollout too.

Migrations run as a Job of the new version's image (`alembic upgrade head`), its pod log copied into the
task log; a failed Job fails the migration, which makes the release restore its data.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field

from airflow_rollout.config import ConnId, ImageRepository, K8sName, ProfileError, ServingAppConfig
from airflow_rollout.targets.base import AppCapability, AppNotReadyError, AppStopError, AppTarget, http_problem
from airflow_rollout.targets.compose import image_tag
from airflow_rollout.targets.migrations import MigrationError
from airflow_rollout.targets.registry import register_app_kind
from airflow_rollout.tool_output import error_line, shown_command
from airflow_rollout.triggers import DeploymentRolloutTrigger, DeploymentScaledDownTrigger
from airflow_rollout.waits import WaitFailedError, wait_for

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from airflow.providers.cncf.kubernetes.triggers.job import KubernetesJobTrigger

    from airflow_rollout.config import KubernetesJobMigrations

log = logging.getLogger(__name__)

_Trigger = TypeVar("_Trigger", DeploymentRolloutTrigger, DeploymentScaledDownTrigger)

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class RunningDeployment:
    version: str
    image: str


def _hook(conn_id: str) -> KubernetesHook:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id)


def rollout_problem(deployment: Any) -> str | None:
    """None when the rollout is complete; else what it is waiting for. Raises when it can no longer complete."""
    spec, status, metadata = deployment.spec, deployment.status, deployment.metadata
    # As kubectl does: the conditions describe the generation the controller observed, so a deadline exceeded
    # by the previous template (the one a rollback just replaced) says nothing about the new one.
    if (status.observed_generation or 0) < (metadata.generation or 0):
        return "waiting for the controller to observe the new generation"
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            raise AppNotReadyError(
                f"deployment {metadata.name} exceeded its progress deadline ({spec.progress_deadline_seconds} s): {condition.message}"
            )
    wanted = spec.replicas if spec.replicas is not None else 1
    updated, replicas, available = status.updated_replicas or 0, status.replicas or 0, status.available_replicas or 0
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    if replicas > updated:
        return f"{replicas - updated} old replicas pending termination"
    if available < updated:
        return f"{available} of {updated} updated replicas available"
    return None


def container_of(deployment: Any, name: str | None) -> Any:
    """The Deployment's container `name` (default: the first); a sync or an async client's model alike."""
    containers = deployment.spec.template.spec.containers
    if name is None:
        return containers[0]
    found = next((c for c in containers if c.name == name), None)
    if found is None:
        raise ProfileError(f"deployment {deployment.metadata.name} has no container {name!r}")
    return found


def version_problem(deployment: Any, container: str | None, version: str) -> str | None:
    """None when `version` has rolled out; else what the rollout waits for. Raises when it can no longer complete."""
    running = image_tag(container_of(deployment, container).image)
    if running != version:
        raise AppNotReadyError(f"deployment {deployment.metadata.name} runs {running}, not {version}: changed by someone else?")
    return rollout_problem(deployment)


class KubernetesTarget(ServingAppConfig):
    """One Deployment, deployed by setting its container's image tag to the version (seed 002)."""

    kind: Literal["kubernetes"]
    conn_id: ConnId
    namespace: K8sName
    deployment: K8sName
    container: K8sName | None = Field(default=None, description="the container whose image is set; default: the first")
    image: ImageRepository = Field(description="the repository; the tag is the version")
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+$")] = Field(description="where the service answers (ingress or service URL)")

    @property
    def base_url(self) -> str:
        return self.url

    def connection_ids(self) -> list[str]:
        return [self.conn_id]


class KubernetesApp(AppTarget):
    config: KubernetesTarget
    capabilities = frozenset({AppCapability.SNAPSHOT_RESTORE})

    def __init__(self, *, config: KubernetesTarget) -> None:
        self.config = config

    def base_url(self) -> str:
        return self.config.url

    @cached_property
    def hook(self) -> KubernetesHook:
        return _hook(self.config.conn_id)

    @property
    def _apps(self) -> Any:
        return self.hook.apps_v1_client

    def _read(self) -> Any:
        return self._apps.read_namespaced_deployment(self.config.deployment, self.config.namespace)

    def _container(self, deployment: Any) -> Any:
        return container_of(deployment, self.config.container)

    def current(self) -> RunningDeployment | None:
        """The version the Deployment's template runs (its image tag)."""
        image = self._container(self._read()).image
        return RunningDeployment(version=image_tag(image), image=image)

    def probe(self, kind: str) -> Any:
        """The container's `<kind>Probe` (liveness, readiness, startup) as the Deployment declares it, or None."""
        return getattr(self._container(self._read()), f"{kind}_probe")

    def recorded_version(self) -> str | None:
        running = self.current()
        return running.version if running else None

    def snapshot(self) -> dict[str, Any]:
        """The whole pod template, as the API serves it, and the replica count: what a rollback puts back."""
        deployment = self._read()
        template: dict[str, Any] = self._apps.api_client.sanitize_for_serialization(deployment.spec.template)
        return {"template": template, "replicas": deployment.spec.replicas}

    def quiesce(self) -> dict[str, Any]:
        """Scale the Deployment to 0; `wait_quiesced` waits until no pod is left. Returns the replica count it had."""
        replicas = self._read().spec.replicas
        log.info("scaling %s/%s from %s replicas to 0", self.config.namespace, self.config.deployment, replicas)
        self._apps.patch_namespaced_deployment(self.config.deployment, self.config.namespace, {"spec": {"replicas": 0}})
        return {"replicas": replicas}

    def wait_quiesced(self) -> None:
        """Until no pod of the Deployment is left: nothing of it serves or writes any more."""
        if not self._read().status.replicas:
            return
        seconds = self.config.readiness.timeout_seconds
        try:
            wait_for(self._trigger(DeploymentScaledDownTrigger), f"deployment {self.config.deployment} scaled to 0", timeout=seconds)
        except WaitFailedError as exc:
            raise AppStopError(f"deployment {self.config.deployment}: pod(s) still running after scaling to 0 ({exc})") from None

    def resume(self, quiesced: dict[str, Any], version: str | None = None) -> float:
        """The replica count `quiesce` recorded back, at `version` (its image) or at the template left in place."""
        began = time.monotonic()
        deployment = self._read()
        spec: dict[str, Any] = {"replicas": quiesced.get("replicas")}
        if version:
            container = self._container(deployment).name
            spec["template"] = {"spec": {"containers": [{"name": container, "image": f"{self.config.image}:{version}"}]}}
        self._apps.patch_namespaced_deployment(self.config.deployment, self.config.namespace, {"spec": spec})
        self.wait_ready(version or image_tag(self._container(deployment).image))
        return time.monotonic() - began

    def switch_to(self, version: str) -> float:
        began = time.monotonic()
        deployment = self._read()
        container = self._container(deployment).name
        image = f"{self.config.image}:{version}"
        log.info("setting %s/%s container %s to %s", self.config.namespace, self.config.deployment, container, image)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
        self._apps.patch_namespaced_deployment(self.config.deployment, self.config.namespace, patch)
        self.wait_ready(version)
        return time.monotonic() - began

    def restore(self, snapshot: dict[str, Any]) -> float:
        """Put the recorded pod template and replica count back exactly (a JSON patch) and wait for that rollout."""
        began = time.monotonic()
        log.info("restoring the recorded pod template of %s/%s", self.config.namespace, self.config.deployment)
        self._apps.patch_namespaced_deployment(
            self.config.deployment,
            self.config.namespace,
            [
                {"op": "replace", "path": "/spec/template", "value": snapshot["template"]},
                {"op": "replace", "path": "/spec/replicas", "value": snapshot["replicas"]},
            ],
        )
        self.wait_ready(image_tag(self._container(self._read()).image))
        return time.monotonic() - began

    def wait_ready(self, version: str) -> float:
        """Wait as `kubectl rollout status` does, then for the readiness path over HTTP; in the triggerer inside a task."""
        began = time.monotonic()
        readiness_url = self.config.url + self.config.readiness.path
        if version_problem(self._read(), self.config.container, version) is None and http_problem(readiness_url) is None:
            return 0.0
        seconds = self.config.readiness.timeout_seconds
        trigger = self._trigger(DeploymentRolloutTrigger, container=self.config.container, version=version, readiness_url=readiness_url)
        try:
            event = wait_for(trigger, f"deployment {self.config.deployment} {version} rollout", timeout=seconds)
        except WaitFailedError as exc:
            raise AppNotReadyError(f"deployment {self.config.deployment} {version} not ready: {exc}") from None
        if event["status"] != "success":
            raise AppNotReadyError(event["message"])
        return time.monotonic() - began

    def _trigger(self, kind: type[_Trigger], **arguments: Any) -> _Trigger:
        where = {"conn_id": self.config.conn_id, "namespace": self.config.namespace, "deployment": self.config.deployment}
        deadline = time.time() + self.config.readiness.timeout_seconds
        return kind(**where, poll_interval=POLL_SECONDS, deadline=deadline, **arguments)


class KubernetesJobMigrator:
    """`alembic upgrade head` (or the profile's command) as a Job of the new version's image."""

    def __init__(self, *, config: KubernetesJobMigrations, version: str, job_name: str) -> None:
        self.config = config
        self.version = version
        self.job_name = job_name

    @cached_property
    def hook(self) -> KubernetesHook:
        return _hook(self.config.conn_id)

    def manifest(self) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "migrate", "image": f"{self.config.image}:{self.version}", "command": self.config.command}
        if self.config.env_from_secret:
            container["envFrom"] = [{"secretRef": {"name": self.config.env_from_secret}}]
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.job_name, "labels": {"app.kubernetes.io/managed-by": "airflow-rollout"}},
            "spec": {
                "backoffLimit": 0,  # a migration that failed once is not retried blindly: the data is restored instead
                "activeDeadlineSeconds": self.config.timeout_seconds,
                "ttlSecondsAfterFinished": 7 * 24 * 3600,  # kept a week for whoever investigates
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        }

    def run(self) -> str:
        """Create the Job (or find the one an earlier attempt created), wait for it, return its log."""
        from kubernetes.client.exceptions import ApiException

        batch, namespace = self.hook.batch_v1_client, self.config.namespace
        try:
            batch.create_namespaced_job(namespace, self.manifest())
            log.info("created migration job %s/%s", namespace, self.job_name)
        except ApiException as exc:
            if exc.status != 409:  # 409: an earlier attempt of this release created it; follow that one
                raise
        if not (conditions := self.end_conditions()):
            # The Job's activeDeadlineSeconds ends it; the minute more is for the cluster to say so.
            try:
                wait_for(self.trigger(), f"migration job {namespace}/{self.job_name}", timeout=self.config.timeout_seconds + 60)
            except WaitFailedError as exc:  # a migration's failure, as a failed Job is: the release restores its data
                raise MigrationError(str(exc)) from None
            if not (conditions := self.end_conditions()):
                raise MigrationError(f"migration job {self.job_name}: its trigger fired, yet the Job has not ended")
        output = self.logs()
        log.info("migration job %s log:\n%s", self.job_name, output)
        if "Failed" in conditions:
            reason = conditions["Failed"].reason or "failed"
            shown = shown_command(self.config.command)
            raise MigrationError(f"migration job {self.job_name} (`{shown}`) failed ({reason}): {error_line(output)}")
        return output

    def end_conditions(self) -> dict[str, Any]:
        """The Job's `Complete` or `Failed` condition by type, once it has one; empty while it runs."""
        status = self.hook.batch_v1_client.read_namespaced_job_status(self.job_name, self.config.namespace).status
        conditions = {c.type: c for c in status.conditions or [] if c.status == "True"}
        return conditions if "Complete" in conditions or "Failed" in conditions else {}

    def trigger(self) -> KubernetesJobTrigger:
        """The provider's trigger: it fires once the Job is Complete or Failed (its pods' logs are read afterwards)."""
        from airflow.providers.cncf.kubernetes.triggers.job import KubernetesJobTrigger

        namespace = self.config.namespace
        return KubernetesJobTrigger(
            job_name=self.job_name,
            job_namespace=namespace,
            pod_names=[],
            pod_namespace=namespace,
            base_container_name="migrate",
            kubernetes_conn_id=self.config.conn_id,
            poll_interval=POLL_SECONDS,
            get_logs=False,
        )

    def logs(self) -> str:
        core, namespace = self.hook.core_v1_client, self.config.namespace
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={self.job_name}").items
        chunks = []
        for pod in sorted(pods, key=lambda p: p.metadata.creation_timestamp or 0):
            # _preload_content=False: kubernetes 36's read_namespaced_pod_log returns the repr of the bytes otherwise
            response = core.read_namespaced_pod_log(pod.metadata.name, namespace, _preload_content=False)
            chunks.append(response.data.decode(errors="replace"))
        return "".join(chunks).strip()


register_app_kind(KubernetesTarget, lambda config, _environment: KubernetesApp(config=config))
