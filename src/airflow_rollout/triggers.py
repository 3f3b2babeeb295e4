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

    from airflow_rollout.targets.base import LocallyPolledApp


class _PollingTrigger(BaseTrigger):
    """Reads the object waited for every `poll_interval` seconds until `_problem` says it is done, or never will be."""

    def __init__(self, *, poll_interval: float, deadline: float) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger declares no types
        self.poll_interval = poll_interval
        self.deadline = deadline  # epoch seconds: the trigger gives up itself, as `dag.test()` sets it no timeout
        self.waiting_for: str | None = None  # the last look's problem, for a wait that times out around the trigger

    def _arguments(self) -> dict[str, Any]:
        return {"poll_interval": self.poll_interval, "deadline": self.deadline}

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
            self.waiting_for = problem
            if time.time() > self.deadline:
                yield TriggerEvent({"status": WAIT_FAILED, "message": f"not done in time: {problem}"})  # type: ignore[no-untyped-call]
                return
            self.log.debug("%s: %s", self._arguments(), problem)
            await asyncio.sleep(self.poll_interval)


class _ConnectionTrigger(_PollingTrigger):
    """Polls an object of an outside system, reached through the Airflow connection `conn_id`."""

    def __init__(self, *, conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "conn_id": self.conn_id}


class _DeploymentTrigger(_ConnectionTrigger):
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


class _DatabricksAppTrigger(_ConnectionTrigger):
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


class AppReadyTrigger(_PollingTrigger):
    """Fires when an app running beside Airflow (a local process, a compose service) serves `version`.

    The app is built again here from its kind, config and environment, so the look is the app's own
    `readiness_problem` (`airflow_rollout.targets.base.LocallyPolledApp`), run in a thread: it reads a process
    table or runs `docker compose ps`, neither of them async.
    """

    def __init__(self, *, kind: str, config: dict[str, Any], system: str, state_dir: str, version: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.config = config
        self.system = system
        self.state_dir = state_dir
        self.version = version

    def _arguments(self) -> dict[str, Any]:
        where = {"kind": self.kind, "config": self.config, "system": self.system, "state_dir": self.state_dir}
        return {**super()._arguments(), **where, "version": self.version}

    def _app(self) -> LocallyPolledApp:
        from pathlib import Path

        from airflow_rollout.targets.base import LocallyPolledApp
        from airflow_rollout.targets.registry import TargetEnvironment, app_kinds

        kind = app_kinds()[self.kind]
        app = kind.build(kind.config.model_validate(self.config), TargetEnvironment(system=self.system, state_dir=Path(self.state_dir)))
        if not isinstance(app, LocallyPolledApp):
            raise TypeError(f"a {self.kind} app is not polled from this machine")
        return app

    async def _read(self) -> Any:
        return None  # the app's own look, in `_problem`

    async def _problem(self, current: Any) -> str | None:
        del current
        app = self._app()  # built on each look: cheap (a config and paths), and nothing stale is kept
        return await asyncio.to_thread(app.readiness_problem, self.version)


class ProcessesGoneTrigger(_PollingTrigger):
    """Fires when no process of a local app is left (its leader `leader`, started at `started`, its descendants and its
    process group), or when `deadline` passes: the end of their grace period after SIGTERM, when what is left is
    killed by the step's next run. Neither is a failure of the wait; the step looks again and decides."""

    def __init__(self, *, leader: int, started: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.leader = leader
        self.started = started

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "leader": self.leader, "started": self.started}

    async def _read(self) -> Any:
        from airflow_rollout.targets.local_process import processes_left

        return await asyncio.to_thread(processes_left, self.leader, self.started)

    async def _problem(self, current: Any) -> str | None:
        if not current or time.time() >= self.deadline:
            return None
        return f"{len(current)} process(es) still running"
