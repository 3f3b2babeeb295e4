"""The docker stand-in, run as `docker` from PATH the way a release tool runs it: real processes, real HTTP health."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from devtools import docker_standin
from devtools.docker_standin import ComposeError, Interpolator, http_probe, parse_dotenv
from devtools.local_postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "devtools" / "bin"
FIXTURES = Path(__file__).parent / "docker_fixtures"
APP = FIXTURES / "app.py"
BACKEND = "registry.example.com/routing-ml/backend"
WORKER = "registry.example.com/routing-ml/worker"


@dataclass
class Docker:
    """`docker` on PATH in a project directory holding the fixture compose file, a .env and an image map."""

    directory: Path
    state: Path
    log: Path
    images: Path
    env: dict[str, str]
    backend_port: int
    worker_port: int

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], cwd=self.directory, env={**self.env, **env}, capture_output=True, text=True, timeout=60, check=False
        )

    def compose(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self("compose", "-f", str(self.directory / "docker-compose.yml"), "-p", "routing-ml", *args, **env)

    def ps(self, *args: str, **env: str) -> list[dict]:
        result = self.compose("ps", "--format", "json", *args, **env)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    def wait_for(self, service: str, condition, *ps_args: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.ps(*ps_args, service)
            if rows and condition(rows[0]):
                return rows[0]
            assert time.monotonic() < deadline, f"{service} never got there: {rows}"
            time.sleep(0.1)

    def health(self, port: int) -> dict:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()

    def app_env(self, name: str) -> str | None:
        return httpx.get(f"http://127.0.0.1:{self.backend_port}/env/{name}", timeout=5).json()["value"]


def our_processes(*ports: int) -> list[psutil.Process]:
    """The containers' own processes: the app, not the logging driver above it (container_log.py, docker's part)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if str(APP) in cmdline and any(str(port) in cmdline for port in ports) and not any("container_log.py" in a for a in cmdline):
            found.append(process)
    return found


@pytest.fixture
def docker(tmp_path):
    directory = tmp_path / "project"
    directory.mkdir()
    shutil.copy(FIXTURES / "compose.yaml", directory / "docker-compose.yml")
    shutil.copy(FIXTURES / "backend.env", directory / "backend.env")
    (directory / ".env").write_text("# beside the compose file, as docker compose reads it\nDB_PASSWORD=from-dotenv\nQUEUE=from-dotenv\n")
    command = ["{python}", str(APP), "--version", "{version}", "--port", "{port}"]
    images = tmp_path / "images.json"
    images.write_text(json.dumps({BACKEND: {"command": command, "bin_dir": str(FIXTURES / "tools")}, WORKER: {"command": command}}))
    docker = Docker(
        directory=directory,
        state=tmp_path / "state",
        log=tmp_path / "docker.jsonl",
        images=images,
        env={},
        backend_port=free_port(),
        worker_port=free_port(),
    )
    referenced = {"DB_PASSWORD", "GREETING", "START_PERIOD", "QUEUE", "LABEL", "PASSED_THROUGH", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"}
    prefixes = ("ROLLOUT_DOCKER_STANDIN_", "BACKEND_", "WORKER_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes) and key not in referenced}
    docker.env = env | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "ROLLOUT_DOCKER_STANDIN_STATE": str(docker.state),
        "ROLLOUT_DOCKER_STANDIN_IMAGES": str(images),
        "ROLLOUT_DOCKER_STANDIN_LOG": str(docker.log),
        "BACKEND_PORT": str(docker.backend_port),
        "WORKER_PORT": str(docker.worker_port),
    }
    yield docker
    down = docker.compose("down", DB_PASSWORD="set for the teardown")
    left = our_processes(docker.backend_port, docker.worker_port)
    for process in left:
        process.kill()
    assert down.returncode == 0, down.stderr
    assert not left, f"processes left behind: {left}"


def test_up_plays_the_tag_goes_healthy_and_switches(docker):
    result = docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="1.0.0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert " Container routing-ml-backend-1  Started" in result.stderr

    row = docker.wait_for("backend", lambda row: row["Health"] == "healthy")
    assert row["Image"] == f"{BACKEND}:1.0.0"
    assert (row["Name"], row["Service"], row["Project"], row["State"]) == ("routing-ml-backend-1", "backend", "routing-ml", "running")
    assert row["Status"].startswith("Up ") and row["Status"].endswith("(healthy)")
    assert row["Publishers"] == [{"URL": "127.0.0.1", "TargetPort": 8000, "PublishedPort": docker.backend_port, "Protocol": "tcp"}]
    assert len(row["ID"]) == 12
    assert docker.health(docker.backend_port) == {"status": "ok", "version": "1.0.0"}
    assert docker.ps("worker") == []  # --no-deps, and nothing asked for the worker
    first_pid = our_processes(docker.backend_port)[0].pid

    same = docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="1.0.0")
    assert "routing-ml-backend-1  Running" in same.stderr
    assert our_processes(docker.backend_port)[0].pid == first_pid

    switched = docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="1.1.0")
    assert switched.returncode == 0, switched.stderr
    assert "routing-ml-backend-1  Recreate" in switched.stderr
    row = docker.wait_for("backend", lambda row: row["Health"] == "healthy")
    assert row["Image"] == f"{BACKEND}:1.1.0"
    assert docker.health(docker.backend_port)["version"] == "1.1.0"
    assert [process.pid for process in our_processes(docker.backend_port)] != [first_pid]
    assert len(our_processes(docker.backend_port)) == 1

    images = docker.compose("images", "--format", "json")
    assert [(image["Repository"], image["Tag"]) for image in json.loads(images.stdout)] == [(BACKEND, "1.1.0")]

    stopped = docker.compose("stop", "backend")
    assert stopped.returncode == 0 and "routing-ml-backend-1  Stopped" in stopped.stderr
    assert docker.ps("backend") == []
    assert docker.ps("-a", "backend")[0]["Status"].startswith("Exited (0)")


def test_a_tag_whose_process_exits_shows_exited(docker):
    result = docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="crash-2.0.0")
    assert result.returncode == 0, result.stderr  # like docker: up -d does not wait for the container
    row = docker.wait_for("backend", lambda row: row["State"] == "exited", "-a")
    assert row["Image"] == f"{BACKEND}:crash-2.0.0"
    assert row["Health"] == ""
    assert row["Status"].startswith("Exited (")
    assert docker.ps("backend") == []  # without -a, as docker compose ps: running containers only


def test_health_turns_unhealthy_after_retries_and_up_wait_reports_it(docker):
    result = docker.compose("up", "-d", "--no-deps", "--wait", "backend", BACKEND_TAG="sick-1", START_PERIOD="0s")
    assert result.returncode == 1
    assert "container routing-ml-backend-1 is unhealthy" in result.stderr
    row = docker.ps("backend", START_PERIOD="0s")[0]
    assert (row["State"], row["Health"]) == ("running", "unhealthy")
    assert row["Status"].endswith("(unhealthy)")

    healthy = docker.compose("up", "-d", "--no-deps", "--wait", "worker", WORKER_TAG="2.0.0")
    assert healthy.returncode == 0, healthy.stderr
    row = docker.ps("worker")[0]
    assert (row["Image"], row["Health"]) == (f"{WORKER}:2.0.0", "healthy")
    assert docker.health(docker.worker_port)["version"] == "2.0.0"


def test_an_image_not_in_the_map_fails_as_docker_does(docker):
    docker.images.write_text(json.dumps({BACKEND: json.loads(docker.images.read_text())[BACKEND]}))
    result = docker.compose("up", "-d", "--no-deps", "worker")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error response from daemon: pull access denied for {WORKER}, repository does not exist")
    assert docker.ps("-a") == []
    pull = docker.compose("pull", "worker")
    assert pull.returncode == 1 and "pull access denied" in pull.stderr


def test_exec_runs_in_the_image_with_the_service_environment(docker):
    assert docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="3.0.0", PASSED_THROUGH="from the caller").returncode == 0
    docker.wait_for("backend", lambda row: row["Health"] == "healthy")

    upgrade = docker.compose("exec", "-T", "backend", "alembic", "upgrade", "head")
    assert (upgrade.returncode, upgrade.stdout) == (0, "alembic upgrade head against postgresql://app:from-dotenv@db/routing\n")
    downgrade = docker.compose("exec", "-T", "backend", "alembic", "downgrade", "base")
    assert (downgrade.returncode, downgrade.stderr) == (4, "downgrade is not allowed here\n")
    shell = docker.compose("exec", "-T", "-e", "EXTRA=given", "backend", "sh", "-c", 'echo "$EXTRA $LOG_LEVEL"; exit 7')
    assert (shell.returncode, shell.stdout) == (7, "given debug\n")
    missing = docker.compose("exec", "-T", "backend", "no-such-tool")
    assert missing.returncode == 127 and 'exec: "no-such-tool": executable file not found in $PATH' in missing.stderr
    not_running = docker.compose("exec", "-T", "worker", "true")
    assert (not_running.returncode, not_running.stderr) == (1, 'service "worker" is not running\n')

    # the container's environment: env_file, then `environment` over it, interpolated
    assert docker.app_env("LOG_LEVEL") == "debug"
    assert docker.app_env("MODEL_DIR") == "/models/3.0.0"
    assert docker.app_env("LITERAL") == "$NOT_INTERPOLATED"
    assert docker.app_env("GREETING") == "unset greeting"
    assert docker.app_env("PRICE") == "$5"
    assert docker.app_env("PASSED_THROUGH") == "from the caller"


def test_interpolation_sources_and_errors_through_config(docker):
    config = docker.compose("config", "--format", "json", DB_PASSWORD="from-env", GREETING="")
    assert config.returncode == 0, config.stderr
    model = json.loads(config.stdout)
    backend, worker = model["services"]["backend"], model["services"]["worker"]
    assert backend["image"] == f"{BACKEND}:latest"
    assert backend["environment"]["DATABASE_URL"] == "postgresql://app:from-env@db/routing"  # the environment wins over .env
    assert backend["environment"]["GREETING"] == ""  # ${VAR-default}: set but empty stays empty
    assert backend["ports"] == [f"127.0.0.1:{docker.backend_port}:8000"]
    assert worker["environment"] == ["QUEUE=from-dotenv", "LABEL="]

    other_env = docker.directory / "other.env"
    other_env.write_text("DB_PASSWORD=from-other\nLABEL=blue\n")
    replaced = json.loads(docker.compose("--env-file", str(other_env), "config", "--format", "json").stdout)
    assert replaced["services"]["backend"]["environment"]["DATABASE_URL"] == "postgresql://app:from-other@db/routing"
    assert replaced["services"]["worker"]["environment"] == ["QUEUE=default", "LABEL=labelled blue"]  # .env is not read then

    (docker.directory / ".env").write_text("")
    missing = docker.compose("config")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error while interpolating services.backend.environment.DATABASE_URL:"
        " required variable DB_PASSWORD is missing a value: set DB_PASSWORD in .env"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${SET}", "value"),
        ("$SET-x", "value-x"),
        ("${SET:-d}", "value"),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${SET:?must}", "value"),
        ("${EMPTY?must}", ""),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:-${SET}/${UNSET2:-deep}}", "value/deep"),
        ("$$SET $${SET} $$", "$SET ${SET} $"),
        ("${UNSET}", ""),
    ],
)
def test_interpolation_rules(template, expected):
    assert Interpolator({"SET": "value", "EMPTY": ""})(template, "x") == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${UNSET:?set it}", "required variable UNSET is missing a value: set it"),
        ("${EMPTY:?}", "required variable EMPTY is missing a value"),
        ("${UNSET?}", "required variable UNSET is missing a value"),
        ("cost $5", "invalid interpolation format"),
        ("${SET", "invalid interpolation format"),
    ],
)
def test_interpolation_errors(template, message):
    with pytest.raises(ComposeError, match=message.replace("$", r"\$")):
        Interpolator({"SET": "value", "EMPTY": ""})(template, "services.x.image")


def test_dotenv_files():
    text = "# comment\nexport A=1\nB = two words # comment\nC='$A literal'\nD=\"${A}\\nnext\"\nE=$A$B\n"
    assert parse_dotenv(text, {}, source=".env") == {"A": "1", "B": "two words", "C": "$A literal", "D": "1\nnext", "E": "1two words"}


@pytest.mark.parametrize(
    ("test", "probe"),
    [
        (["CMD", "curl", "-f", "http://localhost:8000/health"], ("http://localhost:8000/health", True)),
        (["CMD", "curl", "-sS", "http://localhost:8000/health"], ("http://localhost:8000/health", False)),
        (["CMD-SHELL", "curl -fsS http://localhost:8000/health || exit 1"], ("http://localhost:8000/health", True)),
        (["CMD-SHELL", "wget -qO- http://localhost:9000/ready || exit 1"], ("http://localhost:9000/ready", True)),
        (["CMD", "wget", "--spider", "-q", "http://127.0.0.1:9000/"], ("http://127.0.0.1:9000/", True)),
        (["CMD", "pg_isready", "-U", "app"], None),
    ],
)
def test_health_checks_played_as_http(test, probe):
    assert http_probe(test) == probe


def test_container_urls_map_to_published_ports():
    record = {"ports": [{"target": 8000, "published": 18000}], "port": 18000}
    assert docker_standin.Compose.host_url("http://localhost:8000/health", record) == "http://127.0.0.1:18000/health"


def test_every_invocation_is_logged_with_the_variables_the_file_uses(docker):
    docker.compose("config", "-q", BACKEND_TAG="9.9.9", UNRELATED="x")
    docker("version", "--format", "json")
    docker("frobnicate")
    entries = [json.loads(line) for line in docker.log.read_text().splitlines()]
    compose_file = str(docker.directory / "docker-compose.yml")
    assert [entry["argv"] for entry in entries] == [
        ["docker", "compose", "-f", compose_file, "-p", "routing-ml", "config", "-q"],
        ["docker", "version", "--format", "json"],
        ["docker", "frobnicate"],
    ]
    assert entries[0]["cwd"] == str(docker.directory)
    assert entries[0]["env_subset"] == {
        "BACKEND_PORT": str(docker.backend_port),
        "BACKEND_TAG": "9.9.9",
        "WORKER_PORT": str(docker.worker_port),
    }
    assert entries[1]["env_subset"] == {}


def test_unknown_commands_and_flags_exit_125_and_versions_answer(docker):
    unknown = docker("run", "alpine")
    assert (unknown.returncode, unknown.stderr) == (125, "docker: 'run' is not a docker command.\nSee 'docker --help'\n")
    flag = docker.compose("up", "-d", "--turbo")
    assert (flag.returncode, flag.stderr) == (125, "unknown flag: --turbo\nSee 'docker compose up --help'.\n")
    subcommand = docker.compose("attach", "backend")
    assert subcommand.returncode == 125 and 'unknown docker command: "compose attach"' in subcommand.stderr
    assert docker("compose", "version", "--short").stdout.strip() == docker_standin.COMPOSE_VERSION.lstrip("v")
    assert docker("version", "--format", "{{.Server.Version}}").stdout.strip() == docker_standin.DOCKER_VERSION
    assert docker("--version").stdout.startswith("Docker version ")


def test_the_state_directory_is_required(docker):
    env = {key: value for key, value in docker.env.items() if key != "ROLLOUT_DOCKER_STANDIN_STATE"}
    result = subprocess.run(
        ["docker", "compose", "ps"], cwd=docker.directory, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "ROLLOUT_DOCKER_STANDIN_STATE" in result.stderr


def test_compose_ls_lists_the_projects_with_running_containers(docker):
    """Compose lists the Engine's projects: running ones, or with --all stopped ones too, with their containers' states."""
    assert docker("compose", "ls", "--format", "json").stdout.strip() == "[]"
    assert docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="1.0.0").returncode == 0
    listed = json.loads(docker("compose", "ls", "--format", "json").stdout)
    assert [(row["Name"], row["Status"]) for row in listed] == [("routing-ml", "running(1)")]
    assert docker.compose("stop", "backend").returncode == 0
    assert docker("compose", "ls", "-q").stdout == ""
    assert docker("compose", "ls", "-a", "-q").stdout == "routing-ml\n"
    assert json.loads(docker("compose", "ls", "-a", "--format", "json").stdout)[0]["Status"] == "exited(1)"


def test_logs_are_the_current_containers_lines_each_stored_with_its_time(docker):
    """As the json-file driver keeps them: `--since` a time leaves out what came before it, `-t` shows each line's time,
    a recreated container starts a new log."""
    from datetime import UTC, datetime

    def logs(*args: str) -> list[str]:
        result = docker.compose("logs", "--no-log-prefix", *args, "backend")
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    def logged(request_count: int, *args: str) -> list[str]:
        """The lines once the relay stored the last request's line: what the app printed reaches the log a moment later."""
        deadline = time.monotonic() + 10
        while len(lines := [line for line in logs(*args) if '"GET /env/LOG_PROBE HTTP/1.1" 200' in line]) < request_count:
            assert time.monotonic() < deadline, lines
        return logs(*args)

    assert docker.compose("up", "-d", "--no-deps", "backend", BACKEND_TAG="1.0.0").returncode == 0
    docker.wait_for("backend", lambda row: row["Health"] == "healthy")
    docker.app_env("LOG_PROBE")
    before = logged(1)
    assert before[0] == f"INFO:     Uvicorn running on http://127.0.0.1:{docker.backend_port} (Press CTRL+C to quit)"
    between = datetime.now(UTC)
    docker.app_env("LOG_PROBE")
    since = logged(1, "--since", between.isoformat().replace("+00:00", "Z"))
    assert len(since) < len(logged(2))
    assert all("Uvicorn running" not in line for line in since)  # printed before `between`
    stamped = logs("--timestamps", "--tail", "1")
    assert len(stamped) == 1
    moment, line = stamped[0].split(" ", 1)
    assert datetime.fromisoformat(moment) >= between and line == logs()[-1]
    assert logs("--since", "1h") == logs()  # a duration back from now

    assert docker.compose("up", "-d", "--no-deps", "--force-recreate", "backend", BACKEND_TAG="1.0.0").returncode == 0
    docker.wait_for("backend", lambda row: row["Health"] == "healthy")
    assert all("LOG_PROBE" not in line for line in logs())  # the old container's requests went with it
    bad = docker.compose("logs", "--since", "yesterday-ish", "backend")
    assert (bad.returncode, bad.stderr.strip()) == (1, 'invalid value "yesterday-ish" for flag --since: not a timestamp or a duration')
