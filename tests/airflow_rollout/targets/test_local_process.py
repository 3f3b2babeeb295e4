"""The local_process app target with real processes: start, readiness, stop, and what is not ours."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from airflow_rollout.config import COMMAND_PLACEHOLDERS, INCLUDE_DIR, resolve_path
from airflow_rollout.targets.base import AppNotReadyError
from airflow_rollout.targets.local_process import LocalProcessApp, LocalProcessTarget
from devtools.local_postgres import free_port

SERVICE = textwrap.dedent(
    """
    import http.server, sys
    version, port = sys.argv[1], int(sys.argv[2])
    if version == "0.0.1":
        sys.exit("this build does not start")
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503 if version == "0.0.2" else 200)
            self.end_headers()
            self.wfile.write(version.encode())
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


@pytest.fixture
def app(tmp_path):
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    config = LocalProcessTarget.model_validate(
        {
            "kind": "local_process",
            "name": "svc",
            "command": [sys.executable, str(script), "{version}", "{port}"],
            "port": free_port(),
            "readiness": {"path": "/", "timeout_seconds": 3},
        }
    )
    target = LocalProcessApp(config=config, system="unit", state_dir=tmp_path)
    yield target
    target.stop()


def test_switch_runs_one_version_at_a_time(app):
    app.switch_to("1.0.0")
    first = app.current()
    assert first is not None and first.version == "1.0.0"
    app.switch_to("1.1.0")
    second = app.current()
    assert second is not None and second.version == "1.1.0" and second.pid != first.pid
    app.stop()
    assert app.current() is None
    assert app.recorded_version() == "1.1.0"


def test_a_build_that_exits_fails_fast_with_its_log(app):
    with pytest.raises(AppNotReadyError, match=r"exited before it became ready.*this build does not start"):
        app.switch_to("0.0.1")


def test_a_build_that_never_gets_ready_times_out(app):
    with pytest.raises(AppNotReadyError, match=r"not ready .* within 3 s \(HTTP 503\)"):
        app.switch_to("0.0.2")


def test_a_recycled_pid_is_not_taken_for_ours(app):
    app.state_file.parent.mkdir(parents=True, exist_ok=True)
    app.state_file.write_text(json.dumps({"version": "1.0.0", "pid": 1, "started": 0.0}))
    assert app.current() is None
    app.stop()  # must not signal pid 1


def test_state_dir_is_the_state_directory_and_app_dir_the_apps_own(tmp_path, monkeypatch):
    # {state_dir} means ROLLOUT_STATE_DIR in an app command as in every profile path; {app_dir} is where this app's
    # pid file and logs live, which differs from it (a DR drill's stand-in keeps its own under <state>/dr-drill).
    monkeypatch.setenv("ROLLOUT_STATE_DIR", str(tmp_path / "state"))
    placeholders = sorted(COMMAND_PLACEHOLDERS)
    config = LocalProcessTarget.model_validate(
        {"kind": "local_process", "name": "svc", "command": ["serve", *(f"--{p}={{{p}}}" for p in placeholders)], "port": 8123}
    )
    target = LocalProcessApp(config=config, system="unit", state_dir=tmp_path / "state" / "dr-drill")
    expanded = dict(arg.removeprefix("--").split("=", 1) for arg in target.command("1.2.0")[1:])
    assert expanded == {
        "app_dir": str(tmp_path / "state" / "dr-drill" / "apps" / "unit" / "svc"),
        "include": str(INCLUDE_DIR),
        "port": "8123",
        "python": sys.executable,
        "state_dir": str(tmp_path / "state"),
        "version": "1.2.0",
    }
    assert resolve_path("{state_dir}/models") == tmp_path / "state" / "models"


def test_a_stranger_on_the_port_is_refused_rather_than_taken_for_the_new_version(app):
    import socket

    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", app.config.port))
        stranger.listen()
        with pytest.raises(AppNotReadyError, match=rf"port {app.config.port} is already served by pid \d+"):
            app.start("1.0.0")
    assert app.current() is None


def test_stop_reaches_workers_that_outlive_their_leader(tmp_path):
    import time

    import psutil

    # A leader that forks two workers ignoring SIGTERM, then exits on SIGTERM itself: gunicorn's shape at its worst.
    script = tmp_path / "prefork.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys, time
            for _ in range(2):
                if os.fork() == 0:
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                    while True:
                        time.sleep(1)
            print("ready", flush=True)
            while True:
                time.sleep(1)
            """
        )
    )
    config = LocalProcessTarget.model_validate(
        {
            "kind": "local_process",
            "name": "prefork",
            "command": [sys.executable, str(script)],
            "port": free_port(),
            "stop_timeout_seconds": 1,
        }
    )
    target = LocalProcessApp(config=config, system="unit", state_dir=tmp_path)
    leader = target.start("1.0.0")
    deadline = time.monotonic() + 10
    while len([p for p in psutil.process_iter() if _in_group(p, leader.pid)]) < 3:
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.05)

    target.stop()

    assert [p.pid for p in psutil.process_iter() if _in_group(p, leader.pid)] == []  # zombies aside: they run nothing


def _in_group(process, group: int) -> bool:
    import os

    import psutil

    try:
        return os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.Error):
        return False
