"""local_process app target: one process per version of a service on this machine.

The process is started from the profile's argument list in a session of its own, so it outlives the
Airflow task that started it. What runs is written to `<state>/apps/<system>/<app>/current.json`
(version, pid, the process's start time to tell a recycled pid from ours); the log of each version
goes beside it. Secrets reach the process through its environment, built from Airflow connections.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rollout.config import INCLUDE_DIR, LocalProcessTarget
from rollout.targets.migrations import connection_uri

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


class AppNotReadyError(RuntimeError):
    """The new version did not answer its readiness check in time (or exited)."""


def http_problem(url: str) -> str | None:
    """None when `url` answers 2xx; otherwise what is wrong, for the message when waiting runs out."""
    import httpx

    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if response.is_success else f"HTTP {response.status_code}"


@dataclass(frozen=True)
class RunningApp:
    version: str
    pid: int
    started: float  # process start time as the kernel reports it, to recognise the pid as ours


def _process_start_time(pid: int) -> float | None:
    """Start time of a live process; None when there is none (an exited child awaiting its reaping counts as none)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


class LocalProcessApp:
    def __init__(
        self,
        *,
        config: LocalProcessTarget,
        system: str,
        state_dir: Path,
        env_overrides: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.env_overrides = env_overrides or {}
        self.extra_env = extra_env or {}
        self.directory = state_dir / "apps" / system / config.name
        self.state_file = self.directory / "current.json"

    def current(self) -> RunningApp | None:
        """The version running now, or None if nothing of ours is running."""
        if not self.state_file.exists():
            return None
        data = json.loads(self.state_file.read_text())
        app = RunningApp(version=data["version"], pid=int(data["pid"]), started=float(data["started"]))
        started = _process_start_time(app.pid)
        if started is None or abs(started - app.started) > 1.0:
            return None
        return app

    def recorded_version(self) -> str | None:
        """The version last started here, whether or not it still runs."""
        if not self.state_file.exists():
            return None
        return str(json.loads(self.state_file.read_text())["version"])

    def command(self, version: str) -> list[str]:
        values = {
            "version": version,
            "port": str(self.config.port),
            "python": sys.executable,
            "include": str(INCLUDE_DIR),
            "state_dir": str(self.directory),
        }
        return [arg.format(**values) for arg in self.config.command]

    def environment(self) -> dict[str, str]:
        from airflow.sdk import BaseHook

        env = dict(os.environ) | self.extra_env
        for variable, conn_id in self.config.env_from_connections.items():
            env[variable] = self.env_overrides.get(variable) or connection_uri(BaseHook.get_connection(conn_id))
        return env

    def start(self, version: str) -> RunningApp:
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.directory / f"{version}.log"
        args = self.command(version)
        log.info("starting %s %s: %s (log: %s)", self.config.name, version, args, log_path)
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(  # noqa: S603 - the profile's command as an argument list; the version in it is pattern-checked
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
                close_fds=True,
            )
        app = RunningApp(version=version, pid=process.pid, started=_process_start_time(process.pid) or time.time())
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": app.version, "pid": app.pid, "started": app.started}))
        tmp.replace(self.state_file)
        return app

    def stop(self) -> None:
        app = self.current()
        if app is None:
            return
        log.info("stopping %s %s (pid %d)", self.config.name, app.version, app.pid)
        self._signal(app.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_timeout_seconds
        while self.current() is not None and time.monotonic() < deadline:
            self._reap(app.pid)
            time.sleep(0.1)
        if self.current() is not None:
            log.warning("%s did not stop within %.0f s; killing it", self.config.name, self.config.stop_timeout_seconds)
            self._signal(app.pid, signal.SIGKILL)
            time.sleep(0.2)
        self._reap(app.pid)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)  # the whole session: a wrapper script's children go too

    @staticmethod
    def _reap(pid: int) -> None:
        # When this process started the app (the same worker), collect it so it leaves no zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    def wait_ready(self, version: str) -> float:
        """Wait until the readiness path answers 2xx; returns the seconds it took."""

        url = self.config.base_url + self.config.readiness.path
        began = time.monotonic()
        deadline = began + self.config.readiness.timeout_seconds
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            app = self.current()
            if app is None or app.version != version:
                raise AppNotReadyError(
                    f"{self.config.name} {version} exited before it became ready; see {self.directory / (version + '.log')}: "
                    + self.log_tail(version)
                )
            if (problem := http_problem(url)) is None:
                return time.monotonic() - began
            last_problem = problem
            time.sleep(0.2)
        raise AppNotReadyError(
            f"{self.config.name} {version} was not ready at {url} within {self.config.readiness.timeout_seconds:.0f} s ({last_problem})"
        )

    def log_tail(self, version: str, lines: int = 5) -> str:
        path = self.directory / f"{version}.log"
        if not path.exists():
            return "(no log)"
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])

    def switch_to(self, version: str) -> float:
        """Stop whatever runs, start `version`, wait until ready; returns seconds without a ready service."""
        began = time.monotonic()
        self.stop()
        self.start(version)
        self.wait_ready(version)
        return time.monotonic() - began
