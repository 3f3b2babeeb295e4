"""`make up` and `make down`: Airflow on this machine, over every system profile, connections from `.env`.

`up` reads the connections from `.env` in the project root (lines `AIRFLOW_CONN_<ID>=<JSON or URI>`,
see `.env.example`) and refuses, before it starts anything, when the file is missing or a line is
malformed: the message names the line, never its value. Then it starts `airflow standalone` (SQLite or
the database ROLLOUT_UP_METADATA_DB names, LocalExecutor, parallelism 4) on 127.0.0.1 with every profile
of include/systems (or ROLLOUT_SYSTEMS_DIR) in the release form, waits until every DAG is parsed, unpauses
the manually triggered ones and prints the UI's address and where the admin password is. Its Airflow home
stays in `.state/up/` between runs.
`down` stops it: SIGINT, then SIGTERM, then SIGKILL to every process of its session, within 15 s.

    python -m devtools.up start [--env-file PATH] [--state-dir DIR]
    python -m devtools.up stop [--state-dir DIR]

The port is AIRFLOW__API__PORT (8080). The demo's Airflow (`devtools.demo`) is started, reached
and stopped with the helpers here too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import psutil

from airflow_rollout.config import PROJECT_ROOT, ProfileError, configured_systems, load_profile, systems_dir
from airflow_rollout.targets.base import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

API_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
UP_DIR = PROJECT_ROOT / ".state" / "up"
ENV_FILE = PROJECT_ROOT / ".env"
# `make down` returns within 15 s: this, and the start of the command itself.
STOP_BUDGET_SECONDS = 13.0
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
CONN_PREFIX = "AIRFLOW_CONN_"
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Airflow looks connection `my_db` up as AIRFLOW_CONN_MY_DB: the id part must be in capitals.
CONN_VARIABLE = re.compile(r"AIRFLOW_CONN_[A-Z0-9_]+")
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# `$NAME` or `${NAME}` in a value that is not single-quoted: docker compose reads it as a variable.
REFERENCE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
# What .env.example puts where a secret or a host goes: `<password>`, `change-me-...`.
PLACEHOLDER = re.compile(r"<[A-Za-z0-9 _./-]+>|change-me", re.IGNORECASE)


def say(text: str, prefix: str = "up") -> None:
    print(f"[{prefix}] {text}", flush=True)


# --- Airflow's settings -------------------------------------------------------------------------------------


def api_port() -> int:
    """The API server's port: AIRFLOW__API__PORT, else 8080."""
    raw = os.environ.get("AIRFLOW__API__PORT", str(DEFAULT_PORT))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"AIRFLOW__API__PORT must be a port number, got {raw!r}")
    return int(raw)


def ui_url(port: int) -> str:
    return f"http://{API_HOST}:{port}"


def dashboard_url(port: int) -> str:
    """The Releases dashboard the plugin serves, beside the UI (also its **Releases** entry in the navigation)."""
    from airflow_rollout.dashboard import URL_PREFIX

    return f"{ui_url(port)}{URL_PREFIX}/"


METADATA_DB_VARIABLE = "ROLLOUT_UP_METADATA_DB"


def airflow_settings(home: Path, port: int) -> dict[str, str]:
    """`airflow standalone` on 127.0.0.1:`port` over this checkout's dags/ and plugins/, its metadata in `home`.

    The execution API URL is derived from the port: a task's supervisor reports to it, and Airflow's
    default (http://localhost:8080/execution/) fails every task of an Airflow on any other port.
    """
    base_url = ui_url(port)
    return {
        "AIRFLOW_HOME": str(home),
        # SQLite unless ROLLOUT_UP_METADATA_DB names another database (SQLAlchemy URL). SQLite lets one writer in at a
        # time and fails the others after its 5 s busy timeout: in the tests, whose releases run ~90 mapped tasks on a
        # loaded machine, a sign-off answered through the API failed so (HTTP 500 after 5.09 s, while a task's state
        # update beside it also waited 5.07 s); they give their standalones PostgreSQL.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(METADATA_DB_VARIABLE) or f"sqlite:///{home.resolve() / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # the default 32 starts 32 workers (about 6 GB)
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",  # a new or changed DAG file is seen within 30 s
        # Release latency (README, "Release latency: the Airflow settings that matter"): a scheduler loop that found nothing
        # to do sleeps this long (default 1 s), and a task that ends during it waits that long for its downstream to be queued.
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
        # A task's calls to the execution API (its start, its state) give up after 5 s by default, then retry: on a busy 2-core
        # machine the API server's first answers took longer and preflight failed before it started (make bench, load 18).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        # The scheduler's liveness record only (its health check allows 2.1x this): it does not pace the scheduling loop.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # The worker's and the triggerer's log servers on free ports: Airflow's defaults (8793, 8794) are the same for
        # every Airflow on the machine, and a second one (make test beside make demo) could not serve its task logs.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        # Task processes import only the installed package: nothing of this checkout (devtools, tests) is on their path.
        "PYTHONPATH": "",
        # standalone runs its components as `airflow ...` from PATH: this venv's must come first.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def admin_password(home: Path) -> str:
    """The `admin` user's password, generated on first use into the file SimpleAuthManager reads (mode 0600)."""
    path = home / PASSWORDS_FILE
    if path.exists():
        return str(json.loads(path.read_text())["admin"])
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({"admin": password}))
    path.chmod(0o600)
    return password


def airflow_api_conn_json(port: int, password: str) -> str:
    """The `airflow_api` connection maintenance_daily reads failed runs through: this Airflow, as admin."""
    return json.dumps({"conn_type": "http", "host": API_HOST, "port": port, "login": "admin", "password": password, "schema": "http"})


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((API_HOST, port)) == 0


# --- processes: started in a session of their own, stopped with everything under them -----------------------


def start_background(name: str, args: list[str], env: Mapping[str, str], state_dir: Path) -> int:
    """Start `args` in a new session (its pid is the session's id), output to `<state_dir>/<name>.log`, pid kept."""
    pids = state_dir / "pids"
    pids.mkdir(parents=True, exist_ok=True)
    with (state_dir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - this package's own programs, an argument list
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(env), start_new_session=True
        )
    (pids / name).write_text(str(process.pid))
    return process.pid


def running_pid(name: str, state_dir: Path) -> int | None:
    """The pid kept for `name` while that process still leads its session and runs `name`, else None (a stale file)."""
    pid_file = state_dir / "pids" / name
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text())
    try:
        if os.getsid(pid) != pid:
            return None
        return pid if name in " ".join(psutil.Process(pid).cmdline()) else None
    except psutil.ZombieProcess:  # exited, not yet reaped: what it started may still run
        return pid
    except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def session_processes(sid: int) -> list[int]:
    """Live processes of session `sid` (zombies waiting to be reaped are not counted).

    A session holds the leader's process group and the groups made inside it (Airflow puts each task
    runner in a group of its own), so this is everything started under the leader that did not start a
    session of its own (a `local_process` app does, on purpose: it outlives the task that started it).
    """
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getsid(process.pid) == sid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def stop_session(sid: int, first: signal.Signals = signal.SIGINT, budget: float = STOP_BUDGET_SECONDS) -> list[int]:
    """Stop every process of session `sid` within `budget` seconds; returns the pids still alive (none, normally).

    `first` goes to the session's leader alone: airflow standalone, on SIGINT, sends SIGTERM to each of its
    components and waits for them (scheduler, dag-processor, api-server, triggerer: 6 to 13 s here). A SIGINT
    to the whole group, as a terminal's Ctrl-C sends, also reaches the LocalExecutor's workers, and here it
    left them and the scheduler hanging for more than 30 s. At 55 % of the budget whatever is left of the
    session gets SIGTERM, at 85 % SIGKILL.
    """
    start = time.monotonic()
    steps: list[tuple[float, Callable[[], None]]] = [
        (0.0, lambda: _signal_all([sid], first)),
        (budget * 0.55, lambda: _signal_all(session_processes(sid), signal.SIGTERM)),
        (budget * 0.85, lambda: _signal_all(session_processes(sid), signal.SIGKILL)),
    ]
    while (left := session_processes(sid)) and time.monotonic() - start < budget:
        while steps and time.monotonic() - start >= steps[0][0]:
            steps.pop(0)[1]()
        time.sleep(0.2)
    return left


def stop_background(name: str, state_dir: Path, first: signal.Signals = signal.SIGINT, budget: float = STOP_BUDGET_SECONDS) -> bool:
    """Stop what `start_background(name, ...)` started, with its whole session; False when nothing was running."""
    pid_file = state_dir / "pids" / name
    pid = running_pid(name, state_dir)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    if survivors := stop_session(pid, first, budget):
        raise SystemExit(f"{name}: processes {survivors} of session {pid} survived SIGKILL; see {state_dir / (name + '.log')}")
    pid_file.unlink(missing_ok=True)
    return True


# --- the REST API -------------------------------------------------------------------------------------------


class AirflowApi:
    """Airflow's REST API as an operator's browser uses it; `log` is named when something does not come up."""

    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url = base_url
        self.log = log
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def wait_up(self, pid: int, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid not in session_processes(pid):
                raise SystemExit(f"airflow standalone exited; see {self.log}")
            try:
                if self.client.get("/api/v2/monitor/health").is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise SystemExit(f"Airflow did not answer at {self.base_url} within {timeout:.0f} s; see {self.log}")

    def login(self, username: str, password: str) -> None:
        response = self.client.post("/auth/token", json={"username": username, "password": password})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def import_errors(self) -> list[dict[str, Any]]:
        response = self.client.get("/api/v2/importErrors", params={"limit": 100})
        response.raise_for_status()
        return list(response.json().get("import_errors", []))

    def unpause(self, dag_id: str) -> None:
        self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until `dag_id` is parsed, refuse import errors, unpause it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.get(f"/api/v2/dags/{dag_id}").is_success:
                if errors := self.import_errors():
                    raise SystemExit(f"DAG import errors: {json.dumps(errors, indent=2)}")
                self.unpause(dag_id)
                return
            time.sleep(2)
        raise SystemExit(f"Airflow has not parsed dags/{dag_id}.py within {timeout:.0f} s; see {self.log}")

    def wait_for_dag_files(self, dags_folder: Path, timeout: float = 180) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Wait until every `<dag_id>.py` of `dags_folder` is parsed (a DAG or an import error); (DAGs, errors)."""
        expected = {path.stem for path in dags_folder.glob("*.py") if not path.name.startswith("_")}
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get("/api/v2/dags", params={"limit": 100})
            response.raise_for_status()
            dags = list(response.json()["dags"])
            errors = self.import_errors()
            failed = {Path(str(error.get("filename", ""))).stem for error in errors}
            if expected <= {dag["dag_id"] for dag in dags} | failed:
                return dags, errors
            if time.monotonic() > deadline:
                missing = sorted(expected - {dag["dag_id"] for dag in dags} - failed)
                raise SystemExit(f"Airflow has not parsed {', '.join(missing)} within {timeout:.0f} s; see {self.log}")
            time.sleep(2)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        response = self.client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        if not response.is_success:
            raise SystemExit(f"triggering {dag_id} failed: HTTP {response.status_code} {response.text}")
        return str(response.json()["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"])

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        response = self.client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return response.json().get("state") if response.is_success else None

    def xcom(self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1) -> str:
        response = self.client.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value", params={"map_index": map_index}
        )
        return str(response.json().get("value")) if response.is_success else f"(no value: HTTP {response.status_code})"

    def wait(self, what: str, condition: Any, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(2)
        raise SystemExit(f"timed out waiting for {what}; see {self.base_url} and {self.log}")


# --- .env ---------------------------------------------------------------------------------------------------


class EnvFileError(ValueError):
    """A `.env` that cannot be used; the message names the line, never its value."""


@dataclass(frozen=True)
class EnvFile:
    path: Path
    connections: dict[str, str]  # AIRFLOW_CONN_<ID> -> value; the file's other variables are docker compose's

    def conn_ids(self) -> set[str]:
        return {name.removeprefix(CONN_PREFIX).lower() for name in self.connections}


def read_env_file(path: Path) -> EnvFile:
    """The connections of a `.env` file, every line checked; the value is read as docker compose reads it.

    Lines are `NAME=value` (optionally `export NAME=value`), blank or `# comments`; values may be
    'single-quoted' (taken literally: the form for JSON) or "double-quoted".
    """
    from devtools.docker_standin import ComposeError, parse_dotenv

    if not path.is_file():
        raise EnvFileError(
            f"no {path}: copy .env.example to .env and give it the connections your profiles name, one line each: "
            "AIRFLOW_CONN_<ID>=<JSON or URI>"
        )
    connections: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, has_value, _ = line.removeprefix("export ").lstrip().partition("=")
        name = name.strip()
        where = f"{path.name}, line {number}"
        if not has_value or not VARIABLE_NAME.fullmatch(name):
            problems.append(f"{where}: expected NAME=value (the line is not shown: it may hold a secret)")
            continue
        if name in first_seen:
            problems.append(f"{where}: {name} is set again (first on line {first_seen[name]})")
            continue
        first_seen[name] = number
        if not name.upper().startswith(CONN_PREFIX):
            continue
        if not CONN_VARIABLE.fullmatch(name):
            problems.append(f"{where}: {name}: write the connection id in capitals, {name.upper()} (Airflow looks it up that way)")
            continue
        lookup = {**connections, **os.environ}
        if _unset_references(line.partition("=")[2].strip(), lookup):
            problems.append(f"{where}: {name}: the value refers to a variable that is not set (a literal $ is $$, or single-quote it)")
            continue
        try:
            value = parse_dotenv(line, lookup, source=where)[name]
        except ComposeError:
            problems.append(f"{where}: {name}: the value cannot be read (write a literal $ as $$, or single-quote the value)")
            continue
        if problem := connection_value_problem(value):
            problems.append(f"{where}: {name}: {problem}")
            continue
        connections[name] = value
    if problems:
        raise EnvFileError("\n".join(problems))
    return EnvFile(path=path, connections=connections)


def _unset_references(raw_value: str, lookup: Mapping[str, str]) -> bool:
    """Would docker compose replace part of this value by an unset variable (and so change a password silently)?"""
    if raw_value.startswith("'"):
        return False
    return any((plain or braced) not in lookup for plain, braced in REFERENCE.findall(raw_value.replace("$$", "")))


def connection_value_problem(value: str) -> str | None:
    """Why `value` is not an Airflow connection (a JSON object with conn_type, or a URI); None when it is one.

    The answer never quotes the value.
    """
    if not value:
        return "the value is empty"
    if PLACEHOLDER.search(value):
        return "the value still holds a placeholder of .env.example (<...> or change-me): put the real one in"
    return _json_problem(value) if value.startswith("{") else _uri_problem(value)


def _json_problem(value: str) -> str | None:
    try:
        document = json.loads(value)
    except json.JSONDecodeError as exc:
        return f"the value is not valid JSON ({exc.msg} at character {exc.pos}); single-quote JSON values"
    if not isinstance(document, dict) or not isinstance(document.get("conn_type"), str) or not document["conn_type"]:
        return 'the JSON needs a "conn_type", e.g. {"conn_type": "postgres", "host": ...}'
    return None


def _uri_problem(value: str) -> str | None:
    if not URI_SCHEME.match(value):
        return "expected a JSON object or a URI such as postgresql://user:password@host:5432/database"
    try:
        urlsplit(value).port  # noqa: B018 - parsing it is the check
    except ValueError:
        return "the URI's port is not a number (characters such as @ : / in a password must be percent-encoded)"
    return None


# --- make up / make down ------------------------------------------------------------------------------------


def profile_warnings(env: EnvFile) -> tuple[list[str], list[str]]:
    """The systems found and what will stop their releases at preflight: an invalid profile, a missing connection."""
    systems = configured_systems()
    if not systems:
        raise SystemExit(f"no profile in {systems_dir()}: add include/systems/<name>.yaml (README: Pointing it at your own system)")
    defined = env.conn_ids() | {name.removeprefix(CONN_PREFIX).lower() for name in os.environ if name.startswith(CONN_PREFIX)}
    warnings = []
    for system in systems:
        try:
            profile = load_profile(system)
        except ProfileError as exc:
            warnings.append(f"{system}: the profile is invalid, its releases stop at preflight:\n    {exc}".replace("\n", "\n    "))
            continue
        if missing := [conn_id for conn_id in dict.fromkeys(profile.connection_ids()) if conn_id.lower() not in defined]:
            warnings.append(f"{system}: no connection {', '.join(missing)} in {env.path.name}: its releases stop at preflight")
    return systems, warnings


def up(env_file: Path, state_dir: Path) -> None:
    port = api_port()
    home = state_dir / "airflow"
    url = ui_url(port)
    try:
        env = read_env_file(env_file)
    except EnvFileError as exc:
        raise SystemExit(f"[up] refusing to start, nothing was started:\n{exc}") from None
    if (pid := running_pid("airflow", state_dir)) is not None:
        say(f"already running (pid {pid}) at {url}; `make down` first to restart it with a changed {env_file.name}")
        return
    if port_in_use(port):
        raise SystemExit(f"[up] port {port} is in use (`make stop` stops the demo); set AIRFLOW__API__PORT to use another")
    systems, warnings = profile_warnings(env)
    say(f"systems: {', '.join(systems)} (from {systems_dir()})")
    say(f"connections from {env.path}: {', '.join(sorted(env.conn_ids())) or 'none'}")
    for warning in warnings:
        say(f"warning: {warning}")

    password = admin_password(home)
    settings = {
        **os.environ,
        "AIRFLOW_CONN_AIRFLOW_API": airflow_api_conn_json(port, password),  # .env may point it elsewhere
        **env.connections,
        **airflow_settings(home, port),
        "ROLLOUT_SYSTEMS_DIR": str(systems_dir()),
    }
    say(f"starting airflow standalone on {url} (about a minute); its log: {state_dir / 'airflow.log'}")
    pid = start_background("airflow", [str(Path(sys.executable).with_name("airflow")), "standalone"], settings, state_dir)
    api = AirflowApi(url, state_dir / "airflow.log")
    try:
        api.wait_up(pid)
        api.login("admin", password)
        dags, errors = api.wait_for_dag_files(PROJECT_ROOT / "dags")
    except BaseException:  # it did not come up, or Ctrl-C: nothing half-started is left behind
        stop_background("airflow", state_dir)
        raise
    open_for_releases(api, dags, errors, port=port, home=home, stop_command="make down")


def open_for_releases(
    api: AirflowApi,
    dags: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    *,
    port: int,
    home: Path,
    stop_command: str,
    prefix: str = "up",
) -> None:
    """Unpause the DAGs triggered by hand, say where the UI and the dashboard are; fail on DAG files that did not import."""
    scheduled = []
    for dag in dags:
        if dag.get("timetable_summary") in (None, "None"):  # triggered by hand: release and the phase DAGs
            api.unpause(dag["dag_id"])
        elif dag.get("is_paused"):
            scheduled.append(dag["dag_id"])
    print()
    say(f"Airflow UI: {ui_url(port)}   login: admin   password: in {home / PASSWORDS_FILE}", prefix)
    say(f"Releases dashboard: {dashboard_url(port)}   (Releases in the UI's navigation)", prefix)
    say("trigger `release` (pick the system, type the version); the phase DAGs are unpaused too", prefix)
    if scheduled:
        say(f"paused until you unpause them in the UI: {', '.join(sorted(scheduled))} (they run on a schedule)", prefix)
    say(f"`{stop_command}` stops it", prefix)
    if errors:
        for error in errors:
            say(f"import error in {error.get('filename')}:\n{error.get('stack_trace')}", prefix)
        raise SystemExit(f"[{prefix}] Airflow is running, but DAG files failed to import (above)")


def down(state_dir: Path) -> None:
    if stop_background("airflow", state_dir):
        say("stopped airflow standalone")
    else:
        say("nothing to stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--env-file", type=Path, default=ENV_FILE, help="the connections (default: .env in the project root)")
    parser.add_argument("--state-dir", type=Path, default=UP_DIR, help="Airflow home, log and pid (default: .state/up)")
    args = parser.parse_args()
    state_dir = args.state_dir.resolve()
    if args.action == "start":
        up(args.env_file, state_dir)
    else:
        down(state_dir)


if __name__ == "__main__":
    main()
