"""Triggers of ours, for the waits no provider trigger covers: they run in Airflow's triggerer (or in place, see
`airflow_rollout.waits`) and poll through the providers' async hooks, holding no worker slot.

A trigger fires once: `{"status": "success"}` when what it waits for is done, `{"status": WAIT_FAILED, "message": ...}`
when it can no longer be or its deadline passed first: the step's next run fails at that wait (see
`airflow_rollout.waits.deferring`) rather than beginning the operation again. The step that deferred runs again after it and reads the
outcome from the system itself, so the event is a wake-up call, not the record.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_rollout.waits import WAIT_FAILED

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class _PollingTrigger(BaseTrigger):
    """Reads the object waited for every `poll_interval` seconds until `_problem` says it is done, or never will be."""

    def __init__(self, *, conn_id: str, poll_interval: float, deadline: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger declares no types
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline  # epoch seconds: the trigger gives up itself, as `dag.test()` sets it no timeout

    def _arguments(self) -> dict[str, Any]:
        return {"conn_id": self.conn_id, "poll_interval": self.poll_interval, "deadline": self.deadline}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._arguments()

    async def _read(self) -> Any:
        """The object as its API serves it now."""
        raise NotImplementedError

    async def _problem(self, current: Any) -> str | None:
        """None when done; else what it waits for. Raises AppNotReadyError (or AppStopError) when it can never be done."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_rollout.targets.base import AppNotReadyError, AppStopError

        while True:
            try:
                problem = await self._problem(await self._read())
            except (AppNotReadyError, AppStopError) as exc:
                yield TriggerEvent({"status": WAIT_FAILED, "message": str(exc)})  # type: ignore[no-untyped-call]
                return
            if problem is None:
                yield TriggerEvent({"status": "success"})  # type: ignore[no-untyped-call]
                return
            if time.time() > self.deadline:
                yield TriggerEvent({"status": WAIT_FAILED, "message": f"not done in time: {problem}"})  # type: ignore[no-untyped-call]
                return
            self.log.debug("%s: %s", self._arguments(), problem)
            await asyncio.sleep(self.poll_interval)


class _DeploymentTrigger(_PollingTrigger):
    """Polls one Kubernetes Deployment through the provider's AsyncKubernetesHook."""

    def __init__(self, *, namespace: str, deployment: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace
        self.deployment = deployment

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "namespace": self.namespace, "deployment": self.deployment}

    async def _read(self) -> Any:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
        from kubernetes_asyncio import client

        async with AsyncKubernetesHook(conn_id=self.conn_id).get_conn() as api:
            return await client.AppsV1Api(api).read_namespaced_deployment(self.deployment, self.namespace)


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


class _DatabricksAppTrigger(_PollingTrigger):
    """Polls one Databricks App (`GET /api/2.0/apps/{name}`) through the provider's DatabricksHook, async."""

    def __init__(self, *, app_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_name = app_name

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "app_name": self.app_name}

    async def _read(self) -> Any:
        from airflow.providers.databricks.hooks.databricks import DatabricksHook

        from airflow_rollout.targets.databricks import a_api

        async with DatabricksHook(databricks_conn_id=self.conn_id) as hook:
            return await a_api(hook, "GET", f"2.0/apps/{self.app_name}")


class DatabricksAppComputeTrigger(_DatabricksAppTrigger):
    """Fires when the App's compute is in `state` (ACTIVE after a start, STOPPED after a stop)."""

    def __init__(self, *, state: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "state": self.state}

    async def _problem(self, current: Any) -> str | None:
        state = (current.get("compute_status") or {}).get("state")
        return None if state == self.state else f"compute {state}, waiting for {self.state}"


class DatabricksAppServingTrigger(_DatabricksAppTrigger):
    """Fires when the App runs `source_code_path` (its deployment done) and its readiness path answers 2xx."""

    def __init__(self, *, source_code_path: str, readiness_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_code_path = source_code_path
        self.readiness_path = readiness_path

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "source_code_path": self.source_code_path, "readiness_path": self.readiness_path}

    async def _problem(self, current: Any) -> str | None:
        from airflow_rollout.targets.base import http_problem
        from airflow_rollout.targets.databricks import serving_problem

        if (problem := serving_problem(current, self.source_code_path)) is not None:
            return problem
        url = str(current["url"]).rstrip("/") + self.readiness_path
        answer = await asyncio.to_thread(http_problem, url)  # one GET of at most two seconds
        return None if answer is None else f"{url}: {answer}"
