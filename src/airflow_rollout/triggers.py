"""Triggers of ours, for the waits no provider trigger covers: they run in Airflow's triggerer (or in place, see
`airflow_rollout.waits`) and poll through the providers' async hooks, holding no worker slot.

A trigger fires once: `{"status": "success"}` when what it waits for is done, `{"status": "error", "message": ...}`
when it can no longer be. The step that deferred runs again after it and reads the outcome from the system itself,
so the event is a wake-up call, not the record.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class _DeploymentTrigger(BaseTrigger):
    """Polls one Kubernetes Deployment through the provider's AsyncKubernetesHook until `_problem` says done."""

    def __init__(self, *, conn_id: str, namespace: str, deployment: str, poll_interval: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger declares no types
        self.conn_id = conn_id
        self.namespace = namespace
        self.deployment = deployment
        self.poll_interval = poll_interval

    def _arguments(self) -> dict[str, Any]:
        return {"conn_id": self.conn_id, "namespace": self.namespace, "deployment": self.deployment, "poll_interval": self.poll_interval}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._arguments()

    async def _problem(self, deployment: Any) -> str | None:
        """None when done; else what it waits for. Raises AppNotReadyError when it can never be done."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
        from kubernetes_asyncio import client

        from airflow_rollout.targets.base import AppNotReadyError

        hook = AsyncKubernetesHook(conn_id=self.conn_id)
        while True:
            async with hook.get_conn() as api:
                deployment = await client.AppsV1Api(api).read_namespaced_deployment(self.deployment, self.namespace)
            try:
                problem = await self._problem(deployment)
            except AppNotReadyError as exc:
                yield TriggerEvent({"status": "error", "message": str(exc)})  # type: ignore[no-untyped-call]
                return
            if problem is None:
                yield TriggerEvent({"status": "success"})  # type: ignore[no-untyped-call]
                return
            self.log.debug("deployment %s/%s: %s", self.namespace, self.deployment, problem)
            await asyncio.sleep(self.poll_interval)


class DeploymentRolloutTrigger(_DeploymentTrigger):
    """Fires when `version` has rolled out as `kubectl rollout status` judges it, and `readiness_url` answers 2xx."""

    def __init__(self, *, container: str | None, version: str, readiness_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.container = container
        self.version = version
        self.readiness_url = readiness_url

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "container": self.container, "version": self.version, "readiness_url": self.readiness_url}

    async def _problem(self, deployment: Any) -> str | None:
        from airflow_rollout.targets.base import http_problem
        from airflow_rollout.targets.kubernetes import version_problem

        if (problem := version_problem(deployment, self.container, self.version)) is not None:
            return problem
        answer = await asyncio.to_thread(http_problem, self.readiness_url)  # one GET of at most two seconds
        return None if answer is None else f"{self.readiness_url}: {answer}"


class DeploymentScaledDownTrigger(_DeploymentTrigger):
    """Fires when no pod of the Deployment is left (after it was scaled to 0)."""

    async def _problem(self, deployment: Any) -> str | None:
        pods = deployment.status.replicas or 0
        return f"{pods} pod(s) still running" if pods else None
