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
from typing import TYPE_CHECKING, Annotated, Any, Literal

import psutil
from pydantic import Field, field_validator

from airflow_rollout.config import COMMAND_PLACEHOLDERS, INCLUDE_DIR, ConnId, ServingAppConfig, refuse_unknown_placeholders
from airflow_rollout.targets.base import AppCapability, AppNotReadyError, AppStopError, LocallyPolledApp, http_problem
from airflow_rollout.targets.migrations import connection_uri
from airflow_rollout.targets.registry import TargetEnvironment, register_app_kind

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


KILL_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class RunningApp:
    version: str
    pid: int
    started: float  # process start time as the kernel reports it, to recognise the pid as ours


def _process_start_time(pid: int) -> float | None:
    """Start time of a live process; None when there is none (an exited child awaiting its reaping counts as none)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def _processes_of(leader: int, started: float) -> list[psutil.Process]:
    """The live processes of the app whose leader is `leader`: the leader, its descendants, and whatever is
    left in its process group (workers re-parented to init when the leader exited first)."""
    import psutil

    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(leader)
        if abs(process.create_time() - started) <= 1.0:
            found[leader] = process
            found |= {child.pid: child for child in process.children(recursive=True)}
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            # The group id is the leader's pid (a session of its own); a process born before the leader is
            # someone else's that happens to reuse the number.
            if os.getpgid(process.pid) == leader and process.create_time() >= started - 1.0:
                found[process.pid] = process
    alive = []
    for process in found.values():
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def processes_left(leader: int, started: float) -> list[psutil.Process]:
    """The app's live processes. After the look, a leader that died since the last one (a zombie now, counted as gone)
    is collected when this process started it (the same worker), so that it does not stay one."""
    left = _processes_of(leader, started)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(leader, os.WNOHANG)
    return left


def _listeners(port: int) -> list[psutil.Process]:
    """The processes listening on `port` on this machine."""
    pids = {
        c.pid for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }
    found = []
    for pid in sorted(pids):
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def _describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid} ({' '.join(process.cmdline())[:120]})"
    except psutil.Error:
        return f"pid {process.pid}"


def _top_of_group(process: psutil.Process) -> psutil.Process:
    """The process's oldest ancestor in its own process group: a service's master above its workers."""
    group = os.getpgid(process.pid)
    top = process
    while (parent := top.parent()) is not None and parent.pid > 1 and os.getpgid(parent.pid) == group:
        top = parent
    return top


class LocalProcessTarget(ServingAppConfig):
    """A service run on this machine, one process per version, started from an argument list."""

    kind: Literal["local_process"]
    command: list[str] = Field(min_length=1)
    port: Annotated[int, Field(ge=1024, le=65535)]
    host: str = "127.0.0.1"
    env_from_connections: dict[str, ConnId] = Field(default_factory=dict)
    stop_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 15

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, command: list[str]) -> list[str]:
        refuse_unknown_placeholders(command, COMMAND_PLACEHOLDERS)
        return command

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection_ids(self) -> list[str]:
        return list(self.env_from_connections.values())


class LocalProcessApp(LocallyPolledApp):
    config: LocalProcessTarget
    capabilities = frozenset({AppCapability.SPARE_COPY})
    poll_seconds = 0.2

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
        self.system = system
        self.target_environment = TargetEnvironment(system=system, state_dir=state_dir)
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
        """The profile's arguments, placeholders filled in: {state_dir} is ROLLOUT_STATE_DIR, {app_dir} this app's own directory."""
        from airflow_rollout.config import state_dir

        values = {
            "version": version,
            "port": str(self.config.port),
            "python": sys.executable,
            "include": str(INCLUDE_DIR),
            "state_dir": str(state_dir()),
            "app_dir": str(self.directory),
        }
        return [arg.format(**values) for arg in self.config.command]

    def environment(self) -> dict[str, str]:
        from airflow.sdk import BaseHook

        env = dict(os.environ) | self.extra_env
        for variable, conn_id in self.config.env_from_connections.items():
            env[variable] = self.env_overrides.get(variable) or connection_uri(BaseHook.get_connection(conn_id))
        return env

    def start(self, version: str) -> RunningApp:
        if holders := _listeners(self.config.port):
            # Whatever answers there would pass our readiness check in the new version's place.
            raise AppNotReadyError(
                f"{self.config.name} {version} not started: port {self.config.port} is already served by "
                + ", ".join(map(_describe, holders))
                + " (not a process this package started: stop it, or adopt it with the `adopt` DAG)"
            )
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
        self._record(app)
        return app

    def _record(self, app: RunningApp) -> None:
        self._write_state({"version": app.version, "pid": app.pid, "started": app.started})

    def _write_state(self, data: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.state_file)

    def base_url(self) -> str:
        return self.config.base_url

    def spare_copy(self, port: int, connection_urls: dict[str, str], state_dir: Path) -> LocalProcessApp:
        config = self.config.model_copy(update={"port": port})
        env = {var: connection_urls[conn_id] for var, conn_id in config.env_from_connections.items() if conn_id in connection_urls}
        return LocalProcessApp(config=config, system=self.system, state_dir=state_dir, env_overrides=env)

    def adopt(self, version: str) -> str:
        """Manage from now on the service already listening on the app's port, as `version` (nothing is restarted).

        Found by its port, the one thing the profile already knows about it: a pid file's place and format are
        the service's own. The listener's process-group leader is recorded, so that a later stop reaches the
        master and its workers as it does for a process this package started.
        """
        running = self.current()
        if running is not None:
            if running.version != version:
                raise AppNotReadyError(f"{self.config.name} runs {running.version}, started by this package, not {version}")
            return f"already managed: {version}, pid {running.pid}"
        listeners = _listeners(self.config.port)
        if not listeners:
            raise AppNotReadyError(
                f"nothing listens on port {self.config.port}: start {self.config.name} {version} first "
                "(or release it instead: the first release starts it)"
            )
        leader = _top_of_group(listeners[0])
        self.directory.mkdir(parents=True, exist_ok=True)
        self._record(RunningApp(version=version, pid=leader.pid, started=float(leader.create_time())))
        return f"took over {_describe(leader)}, listening on port {self.config.port}, as {version}"

    def stop(self) -> None:
        """Stop the version running, with every process it spawned: SIGTERM to all, SIGKILL to what is left.

        A service's workers (gunicorn's, a job queue's) may outlive their leader: the stop waits for the whole
        process group, not only for the pid it started, so nothing of the old version still writes to the
        database or holds the port when the stop returns.
        """
        self._terminate()
        self._finish_stop()

    def quiesce(self) -> dict[str, Any]:
        """SIGTERM to the version running and all it spawned; `wait_quiesced` gives them their grace period."""
        running = self.current()
        self._terminate()
        return {"version": running.version} if running else {}

    def wait_quiesced(self) -> None:
        self._finish_stop()

    def _terminate(self) -> None:
        """SIGTERM, once: when it was sent is kept in the state file, so that a run of the step after a deferred
        wait goes on with the same grace period instead of beginning another."""
        if not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        processes = _processes_of(int(data["pid"]), float(data["started"]))
        if not processes or "terminated_at" in data:
            return
        log.info("stopping %s %s (pid %s and %d more)", self.config.name, data["version"], data["pid"], len(processes) - 1)
        self._write_state({**data, "terminated_at": time.time()})  # before the signal: a retry must not restart the clock
        self._signal(processes, signal.SIGTERM)

    def _finish_stop(self) -> None:
        """Until every process of the version is gone: the rest of its grace period after SIGTERM, then SIGKILL."""
        if not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        leader, started, version = int(data["pid"]), float(data["started"]), data["version"]
        grace = float(data.get("terminated_at", time.time())) + self.config.stop_timeout_seconds - time.time()
        if survivors := self._wait_gone(leader, started, grace, f"{self.config.name} {version} to stop after SIGTERM"):
            log.warning(
                "%s: %d process(es) still running %.0f s after SIGTERM (pids %s); killing them",
                self.config.name,
                len(survivors),
                self.config.stop_timeout_seconds,
                ", ".join(str(p.pid) for p in survivors),
            )
            self._signal(survivors, signal.SIGKILL)
            if left := self._wait_gone(leader, started, KILL_WAIT_SECONDS, f"{self.config.name} {version} to die of SIGKILL"):
                raise AppStopError(f"{self.config.name} {version}: pids {', '.join(str(p.pid) for p in left)} survived SIGKILL")
        if holders := _listeners(self.config.port):
            # A worker that left the process group (a daemonising job runner) still serves, and may write.
            raise AppStopError(
                f"{self.config.name} {version} was stopped, but port {self.config.port} is still served by "
                + ", ".join(map(_describe, holders))
                + ": a process outside its process group (a daemonised worker?) must be stopped by hand"
            )

    @staticmethod
    def _wait_gone(leader: int, started: float, seconds: float, what: str) -> list[psutil.Process]:
        """The app's processes still alive after at most `seconds`: in the task for the first few, then in the
        triggerer (`airflow_rollout.triggers.ProcessesGoneTrigger`)."""
        from airflow_rollout import waits
        from airflow_rollout.triggers import ProcessesGoneTrigger

        if (left := processes_left(leader, started)) and seconds > 0:
            trigger = ProcessesGoneTrigger(leader=leader, started=started, poll_interval=0.05, deadline=time.time() + seconds)
            # The trigger ends at its deadline itself: what is left then is the caller's to kill, not a failed wait.
            waits.wait_for(trigger, what, timeout=seconds + KILL_WAIT_SECONDS, in_place_first=waits.SHORT_WAIT_SECONDS)
            left = processes_left(leader, started)
        return left

    @staticmethod
    def _signal(processes: list[psutil.Process], sig: signal.Signals) -> None:
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)

    def readiness_problem(self, version: str) -> str | None:
        if (app := self.current()) is None or app.version != version:
            raise AppNotReadyError(
                f"{self.config.name} {version} exited before it became ready; see {self.directory / (version + '.log')}: "
                + self.log_tail(version)
            )
        url = self.config.base_url + self.config.readiness.path
        return None if (problem := http_problem(url)) is None else f"{problem} at {url}"

    def log_tail(self, version: str, lines: int = 5) -> str:
        path = self.directory / f"{version}.log"
        if not path.exists():
            return "(no log)"
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])

    def begin_switch(self, version: str) -> None:
        """Stop whatever runs, start `version`."""
        self.stop()
        self.start(version)


def _local_process(config: LocalProcessTarget, environment: TargetEnvironment) -> LocalProcessApp:
    return LocalProcessApp(config=config, system=environment.system, state_dir=environment.state_dir)


register_app_kind(LocalProcessTarget, _local_process)
