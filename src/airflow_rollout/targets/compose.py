"""compose app target: one service of a docker compose project (seeds 003 and 004).

Deploying a version is `docker compose -f FILE -p PROJECT up -d --no-deps SERVICE` with the compose
file's tag variable set to the version, run as an argument list; the version running is the tag of the
service container's image as `docker compose ps` reports it. Ready means docker calls the container
healthy (when the service has a healthcheck) and the readiness path answers 2xx. Rolling back is the same
`up` with the tag recorded before the release.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from airflow_rollout.config import IncludePath, Name, ServingAppConfig, resolve_path
from airflow_rollout.targets.base import AppNotReadyError, LocallyPolledApp, http_problem
from airflow_rollout.targets.registry import TargetEnvironment, register_app_kind
from airflow_rollout.tool_output import error_line, shown_command

log = logging.getLogger(__name__)


# What docker compose itself prints on stderr (logrus): `WARN[0000] The "X" variable is not set.`
COMPOSE_OWN_LINE = re.compile(r"^(?:DEBU|INFO|WARN|ERRO|FATA)\[\d{4}\] ")


class ComposeError(RuntimeError):
    """docker compose refused or failed a command."""


@dataclass(frozen=True)
class RunningService:
    version: str
    image: str
    state: str
    health: str


def split_image(reference: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` -> (repo, tag); a reference without a tag means `latest`, as docker reads it."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = name.rsplit(":", 1)
        return repo, tag
    return name, "latest"


def image_tag(image: str) -> str:
    return split_image(image)[1]


class ComposeServiceTarget(ServingAppConfig):
    """A service of a docker compose project, deployed with `docker compose up -d --no-deps SERVICE`.

    The compose file names the image with a variable for the tag (`image: repo/backend:${BACKEND_TAG:-latest}`);
    a release sets that variable to the version. Readiness: the service's own healthcheck as docker reports
    it, then the readiness path over HTTP.
    """

    kind: Literal["compose"]
    compose_file: IncludePath = Field(description="absolute, {state_dir}/..., or relative to include/")
    project: Name
    service: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")]
    tag_variable: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,62}$")]
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+$")] = Field(description="where the service answers, e.g. http://127.0.0.1:8000")
    docker: list[str] = Field(default_factory=lambda: ["docker"], min_length=1, description="the docker CLI, as an argument list")

    @property
    def base_url(self) -> str:
        return self.url


class ComposeServiceApp(LocallyPolledApp):
    config: ComposeServiceTarget
    capabilities = frozenset()  # one compose project per machine: no spare copy for the drill
    poll_seconds = 0.3  # each look runs `docker compose ps`

    def base_url(self) -> str:
        return self.config.base_url

    def __init__(self, *, config: ComposeServiceTarget, environment: TargetEnvironment) -> None:
        self.config = config
        self.target_environment = environment

    def _compose(self, *args: str, tag: str | None = None, timeout: float = 300, with_stderr: bool = False) -> str:
        command = [*self.config.docker, "compose", "-f", str(resolve_path(self.config.compose_file)), "-p", self.config.project, *args]
        env = dict(os.environ)
        if tag is not None:
            env[self.config.tag_variable] = tag
        result = subprocess.run(  # noqa: S603 - docker's argument list; the tag is a pattern-checked version, passed in the environment
            command, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode:
            shown = f"{' '.join(command[:2])} {shown_command(args)}"
            log.error("%s exited with %s; its output:\n%s", shown, result.returncode, (result.stdout + result.stderr).strip())
            raise ComposeError(f"{shown} exited with {result.returncode}: {error_line(result.stderr)}")
        return result.stdout + result.stderr if with_stderr else result.stdout

    def _containers(self, *services: str) -> dict[str, RunningService]:
        """Per service, its container as `docker compose ps -a` reports it, running or not."""
        output = self._compose("ps", "-a", "--format", "json", *services)
        rows: list[dict[str, Any]] = []
        for line in (raw.strip() for raw in output.splitlines()):
            if line.startswith("["):  # older compose versions print one JSON array
                rows.extend(json.loads(line))
            elif line:
                rows.append(json.loads(line))
        return {
            row["Service"]: RunningService(
                version=image_tag(row["Image"]), image=row["Image"], state=row.get("State", ""), health=row.get("Health", "")
            )
            for row in reversed(rows)  # the first row of a service wins, as it did when one service was asked for
            if "Service" in row
        }

    def service_state(self) -> RunningService | None:
        """The service's container as `docker compose ps -a` reports it, running or not; None when there is none."""
        return self._containers(self.config.service).get(self.config.service)

    def project_state(self) -> dict[str, RunningService | None]:
        """Every service the compose file defines (those the release does not deploy too), with its container or None."""
        defined = self.services()
        containers = self._containers()
        return {service: containers.get(service) for service in defined}

    def services(self) -> list[str]:
        """The services the compose file defines, those the release does not deploy too."""
        return self._compose("config", "--services").split()

    def project_config(self) -> dict[str, Any]:
        """The compose file as docker compose reads it (`config --format json`): defaults filled in, variables set."""
        config: dict[str, Any] = json.loads(self._compose("config", "--format", "json"))
        return config

    def logs(self, service: str, since: datetime | None = None) -> list[str]:
        """The lines the service's container printed (since `since`), as `docker compose logs` reads them from docker.

        Both of its output streams: compose writes a container's stderr lines (where Python's logging writes) to its
        own stderr, beside its own warnings (`WARN[0000] ...`), which are left out.
        """
        window = ["--since", since.astimezone(UTC).isoformat().replace("+00:00", "Z")] if since else []
        output = self._compose("logs", "--no-color", "--no-log-prefix", *window, service, with_stderr=True)
        return [line for line in output.splitlines() if not COMPOSE_OWN_LINE.match(line)]

    def current(self) -> RunningService | None:
        """The version running now, or None when the service's container is not running."""
        service = self.service_state()
        return service if service and service.state == "running" else None

    def begin_switch(self, version: str) -> None:
        """`up -d --no-deps` the service at `version`."""
        log.info("docker compose up %s at %s (%s=%s)", self.config.service, version, self.config.tag_variable, version)
        try:
            self._compose("up", "-d", "--no-deps", self.config.service, tag=version)
        except ComposeError as exc:
            raise AppNotReadyError(f"{self.config.name} {version} did not start: {exc}") from None

    def readiness_problem(self, version: str) -> str | None:
        """Docker's health check first (when the service has one), then the readiness path over HTTP."""
        service = self.service_state()
        if service is None or service.version != version:
            raise AppNotReadyError(f"{self.config.name}: the service runs {service.image if service else 'nothing'}, not {version}")
        if service.state != "running":
            raise AppNotReadyError(f"{self.config.name} {version} is {service.state}: the container exited")
        if service.health == "unhealthy":
            raise AppNotReadyError(f"{self.config.name} {version}: docker reports the container unhealthy")
        if service.health not in {"", "healthy"}:
            return f"health {service.health}"
        url = self.config.url + self.config.readiness.path
        return None if (problem := http_problem(url)) is None else f"{problem} at {url}"

    def recorded_version(self) -> str | None:
        """The version of the service's container, running or not."""
        service = self.service_state()
        return service.version if service else None

    def stop(self) -> None:
        """`docker compose stop` the service: its container stays, so `up` brings a tag back."""
        self._compose("stop", self.config.service)


register_app_kind(ComposeServiceTarget, lambda config, environment: ComposeServiceApp(config=config, environment=environment))
