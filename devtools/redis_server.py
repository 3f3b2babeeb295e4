"""A real Redis for the tests: Debian's redis-server (apt-get installs it when missing), one per test, on a free port.

Started with the settings a test gives (`requirepass`, `maxmemory-policy`, `appendonly`...), its files in a temporary
directory, and stopped by its pid.

    with RedisServer(tmp_path, {"requirepass": "pw", "maxmemory-policy": "allkeys-lru"}) as server:
        server.port
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from airflow_rollout.targets.base import free_port
from devtools.debian import apt_install

READY_SECONDS = 30
PACKAGE = "redis-server"
DEBIAN_PATH = Path("/usr/bin/redis-server")  # where Debian puts it, should PATH not have /usr/bin


def executable() -> Path:
    """redis-server's path (the tests' Redis and the distributed Airflow's broker), apt-get installing it when missing.

    Raises devtools.debian.PackageUnavailableError when it is missing and cannot be installed here.
    """
    if found := shutil.which("redis-server"):
        return Path(found)
    if not DEBIAN_PATH.is_file():
        apt_install((PACKAGE,), what=PACKAGE, otherwise="install Redis (6 or later) and put redis-server on PATH")
    return DEBIAN_PATH


class RedisServer:
    def __init__(self, directory: Path, settings: dict[str, str] | None = None) -> None:
        self.directory, self.settings = directory, settings or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        options = {"port": str(self.port), "bind": "127.0.0.1", "dir": str(self.directory), "save": "", **self.settings}
        argv = [str(executable()), *(arg for name, value in options.items() for arg in (f"--{name}", value))]
        log = (self.directory / "redis.log").open("wb")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own argument list
        deadline = time.monotonic() + READY_SECONDS
        # ready when it answers: a RESP PING gets +PONG, or -NOAUTH when it asks for a password
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64):
                        return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(self.directory / 'redis.log').read_text()[-2000:]}") from None
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
