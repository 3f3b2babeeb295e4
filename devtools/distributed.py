"""`make distributed` and `make distributed-down`: a distributed Airflow on this machine, without Docker.

What docker-compose.yml describes, as processes of their own on 127.0.0.1: the metadata database on PostgreSQL
(devtools.local_postgres, a cluster of its own), Redis as the Celery broker (Debian's `redis-server`, installed with
apt-get when missing), the Celery result backend in the metadata database, and the API server, the scheduler, the DAG
processor, the triggerer and two Celery workers, each in a session of its own. The workers stand for two machines:
each runs in a UTS namespace of its own (`unshare --uts`, as root) under its own hostname, `worker-a` and `worker-b`,
which is the host Airflow records for the tasks it runs (and the ledger for each step attempt); each consumes the
shared `default` queue and a queue named after itself. All of them share ROLLOUT_STATE_DIR, as the compose file's
services share its volume.

    python -m devtools.distributed start [--env-file PATH] [--state-dir DIR]
    python -m devtools.distributed stop [--state-dir DIR]
    python -m devtools.distributed start-worker NAME [--env-file PATH] [--state-dir DIR]   # one worker again

Connections come from `.env` as for `make up` (devtools.up, which this reuses: its settings, its checks of `.env`,
its process handling); the port is AIRFLOW__API__PORT (8080). The state (metadata database, broker, Airflow home,
logs, generated secrets) stays in `.state/distributed/`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_rollout.config import PROJECT_ROOT, systems_dir
from devtools import local_postgres, up
from devtools.debian import PackageUnavailableError
from devtools.redis_server import executable as redis_server_executable

if TYPE_CHECKING:
    from collections.abc import Mapping

DISTRIBUTED_DIR = PROJECT_ROOT / ".state" / "distributed"
DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue: every task not routed elsewhere
WORKERS = ("worker-a", "worker-b")  # hostname, Celery node `celery@<hostname>` and the worker's own queue
WORKER_CONCURRENCY = 2  # task slots per worker: the two make the parallelism of 4 a 2-core machine affords
# Each component by the name it shows in `ps` (how `up.running_pid` knows it: the API server retitles itself
# `airflow api_server -- host:...`), and the airflow command that starts it.
COMPONENTS = {"api_server": "api-server", "scheduler": "scheduler", "dag-processor": "dag-processor", "triggerer": "triggerer"}
METADATA_DATABASE = "airflow"


def say(text: str) -> None:
    up.say(text, prefix="distributed")


# --- the broker ---------------------------------------------------------------------------------------------


def redis_server() -> Path:
    """Debian's redis-server, installed with apt-get when it is missing (silent when it is there)."""
    try:
        return redis_server_executable()
    except PackageUnavailableError as exc:
        raise SystemExit(f"[distributed] {exc}") from None


@dataclass(frozen=True)
class Broker:
    port: int
    password: str

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"


def broker_settings(state_dir: Path) -> Broker:
    """The broker's port and password, chosen on first start and kept in `<state>/redis/` (the password mode 0600)."""
    directory = state_dir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    password_file, port_file = directory / "password", directory / "port"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24))
        password_file.chmod(0o600)
    if not port_file.exists():
        port_file.write_text(str(local_postgres.free_port()))
    return Broker(port=int(port_file.read_text()), password=password_file.read_text().strip())


def start_broker(state_dir: Path) -> Broker:
    """redis-server on 127.0.0.1, password required, nothing persisted (the queued messages live as long as it runs).

    The password is in its configuration file (mode 0600), never on its command line, where `ps` would show it.
    """
    broker = broker_settings(state_dir)
    directory = state_dir / "redis"
    config = directory / "redis.conf"
    config.write_text(f'bind 127.0.0.1\nport {broker.port}\nrequirepass {broker.password}\ndir {directory}\nsave ""\nappendonly no\n')
    config.chmod(0o600)
    if up.running_pid("redis", state_dir) is None:
        up.start_background("redis", [str(redis_server()), str(config)], os.environ, state_dir)
    wait_for_broker(broker, state_dir)
    return broker


def wait_for_broker(broker: Broker, state_dir: Path, timeout: float = 30) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=broker.port, password=broker.password, socket_timeout=2)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise SystemExit(f"[distributed] Redis did not answer within {timeout:.0f} s; see {state_dir / 'redis.log'}") from None
        time.sleep(0.2)


# --- Airflow's settings -------------------------------------------------------------------------------------


def cluster_secrets(state_dir: Path) -> dict[str, str]:
    """What every process must share (compose takes them from .env): generated once, kept in `<state>/secrets.json` (0600).

    The scheduler signs the tokens the workers' task processes present to the API server, and the Fernet key
    encrypts what one process stores in the metadata database for another to read.
    """
    from cryptography.fernet import Fernet

    path = state_dir / "secrets.json"
    if not path.exists():
        generated = {
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        }
        path.write_text(json.dumps(generated))
        path.chmod(0o600)
    return dict(json.loads(path.read_text()))


def ports(state_dir: Path) -> dict[str, int]:
    """The log servers' ports, one per worker and one for the triggerer: free ports chosen on first start, then kept.

    On one machine the workers cannot share Airflow's fixed default (8793), as they would on two.
    """
    path = state_dir / "ports.json"
    if not path.exists():
        path.write_text(json.dumps({name: local_postgres.free_port() for name in (*WORKERS, "triggerer")}))
    return dict(json.loads(path.read_text()))


def airflow_settings(state_dir: Path, port: int, metadata: local_postgres.LocalPostgres, broker: Broker) -> dict[str, str]:
    """`up.airflow_settings` (the same dags, plugins, API address, parallelism) with compose's executor, broker and database."""
    home = state_dir / "airflow"
    database = metadata.uri(METADATA_DATABASE).removeprefix("postgresql://")
    return {
        **up.airflow_settings(home, port),
        **cluster_secrets(state_dir),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
        "AIRFLOW__CELERY__BROKER_URL": broker.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{database}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports(state_dir)["triggerer"]),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "false",  # its fixed port 8974 would clash with another Airflow here
    }


def environment(env_file: Path, state_dir: Path, port: int) -> dict[str, str]:
    """Every process's environment: this one's, the connections of `.env`, Airflow's settings, the shared state.

    Starts the metadata database and the broker first (idempotent): their addresses are part of the settings.
    """
    try:
        env = up.read_env_file(env_file)
    except up.EnvFileError as exc:
        raise SystemExit(f"[distributed] refusing to start, nothing was started:\n{exc}") from None
    metadata = local_postgres.start(state_dir / "postgres")
    metadata.create_database(METADATA_DATABASE)
    broker = start_broker(state_dir)
    password = up.admin_password(state_dir / "airflow")
    return {
        **os.environ,
        "AIRFLOW_CONN_AIRFLOW_API": up.airflow_api_conn_json(port, password),  # .env may point it elsewhere
        **env.connections,
        **airflow_settings(state_dir, port, metadata, broker),
        "ROLLOUT_SYSTEMS_DIR": str(systems_dir()),
        # The shared volume of the compose file: backups taken on one worker are restored on another.
        "ROLLOUT_STATE_DIR": os.environ.get("ROLLOUT_STATE_DIR", str(state_dir / "rollout")),
    }


# --- the processes ------------------------------------------------------------------------------------------


def airflow_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("airflow")), *args]


def start_worker(name: str, env: Mapping[str, str], state_dir: Path) -> int:
    """Celery worker `name` in a UTS namespace of its own, its hostname `name`: its own and the default queue."""
    if os.geteuid() != 0:
        raise SystemExit("[distributed] each worker gets a hostname of its own in a UTS namespace (unshare --uts): run as root")
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    worker = airflow_command("celery", "worker", "--queues", f"{DEFAULT_QUEUE},{name}", "--concurrency", str(WORKER_CONCURRENCY))
    # sh sets the namespace's hostname, then becomes the worker (same pid: the session's leader stays the worker).
    args = [unshare, "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', name, *worker]
    settings = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports(state_dir)[name])}
    return up.start_background(name, args, settings, state_dir)


def wait_for_workers(broker_url: str, names: tuple[str, ...], state_dir: Path, timeout: float = 120) -> dict[str, list[str]]:
    """Wait until each worker answers on the broker; the queues each consumes, by hostname."""
    from celery import Celery

    app = Celery(broker=broker_url)
    nodes = {f"celery@{name}": name for name in names}
    deadline = time.monotonic() + timeout
    try:
        while True:
            answered = app.control.inspect(destination=list(nodes), timeout=2).active_queues() or {}
            if set(answered) >= set(nodes):
                return {nodes[node]: sorted(queue["name"] for queue in queues) for node, queues in answered.items() if node in nodes}
            for name in names:
                if up.running_pid(name, state_dir) is None:
                    raise SystemExit(f"[distributed] {name} exited; see {state_dir / (name + '.log')}")
            if time.monotonic() > deadline:
                missing = sorted(nodes[node] for node in set(nodes) - set(answered))
                raise SystemExit(f"[distributed] {', '.join(missing)} did not answer within {timeout:.0f} s; see {state_dir}")
    finally:
        app.close()


def start(env_file: Path, state_dir: Path) -> None:
    port = up.api_port()
    url = up.ui_url(port)
    if running := [name for name in (*COMPONENTS, *WORKERS) if up.running_pid(name, state_dir) is not None]:
        say(f"already running ({', '.join(running)}) at {url}; `make distributed-down` first")
        return
    if up.port_in_use(port):
        raise SystemExit(f"[distributed] port {port} is in use (`make stop`, `make down`); set AIRFLOW__API__PORT to use another")
    say(f"starting PostgreSQL (metadata) and Redis (broker); state in {state_dir}")
    env = environment(env_file, state_dir, port)
    try:
        say("migrating the metadata database ...")
        with (state_dir / "db-migrate.log").open("ab") as log:
            migrated = subprocess.run(airflow_command("db", "migrate"), env=env, stdout=log, stderr=subprocess.STDOUT, check=False)  # noqa: S603
        if migrated.returncode != 0:
            raise SystemExit(f"[distributed] airflow db migrate failed; see {state_dir / 'db-migrate.log'}")
        pids = {name: up.start_background(name, airflow_command(command), env, state_dir) for name, command in COMPONENTS.items()}
        for name in WORKERS:
            start_worker(name, env, state_dir)
        api = up.AirflowApi(url, state_dir / "api_server.log")
        api.wait_up(pids["api_server"])
        api.login("admin", up.admin_password(state_dir / "airflow"))
        queues = wait_for_workers(env["AIRFLOW__CELERY__BROKER_URL"], WORKERS, state_dir)
        dags, errors = api.wait_for_dag_files(PROJECT_ROOT / "dags")
    except BaseException:  # it did not come up, or Ctrl-C: nothing half-started is left behind
        stop(state_dir)
        raise
    print()
    for name, consumed in queues.items():
        say(f"{name}: Celery worker celery@{name}, queues {', '.join(consumed)}, log {state_dir / (name + '.log')}")
    say(f"shared ROLLOUT_STATE_DIR: {env['ROLLOUT_STATE_DIR']}; every process's log is in {state_dir}")
    up.open_for_releases(
        api, dags, errors, port=port, home=state_dir / "airflow", stop_command="make distributed-down", prefix="distributed"
    )


def start_one_worker(name: str, env_file: Path, state_dir: Path) -> None:
    """One worker again (after it died), with the settings the others run with."""
    if up.running_pid(name, state_dir) is not None:
        say(f"{name} is running")
        return
    env = environment(env_file, state_dir, up.api_port())
    start_worker(name, env, state_dir)
    wait_for_workers(env["AIRFLOW__CELERY__BROKER_URL"], (name,), state_dir)
    say(f"{name} started")


def stop(state_dir: Path) -> None:
    """The scheduler first (nothing new is queued), then the workers (a warm shutdown, whatever is left killed) and the
    other components side by side, each with its whole session; the broker and the metadata database last."""
    from concurrent.futures import ThreadPoolExecutor

    def stop_one(name: str) -> None:
        if up.stop_background(name, state_dir, first=signal.SIGTERM):
            say(f"stopped {name}")

    stop_one("scheduler")
    with ThreadPoolExecutor() as pool:
        list(pool.map(stop_one, (*WORKERS, "triggerer", "dag-processor", "api_server")))
    stop_one("redis")
    local_postgres.stop(state_dir / "postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "start-worker"])
    parser.add_argument("worker", nargs="?", choices=WORKERS, help="start-worker: which one")
    parser.add_argument("--env-file", type=Path, default=up.ENV_FILE, help="the connections (default: .env in the project root)")
    parser.add_argument(
        "--state-dir", type=Path, default=DISTRIBUTED_DIR, help="databases, Airflow home, logs (default: .state/distributed)"
    )
    args = parser.parse_intermixed_args()  # the worker's name may come after the options
    state_dir = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if args.action == "start":
        start(args.env_file, state_dir)
    elif args.action == "start-worker":
        if args.worker is None:
            parser.error("start-worker needs the worker's name")
        start_one_worker(args.worker, args.env_file, state_dir)
    else:
        stop(state_dir)


if __name__ == "__main__":
    main()
