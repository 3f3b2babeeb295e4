"""The local_process app target with real processes: start, readiness, stop, and what is not ours."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from rollout.config import COMMAND_PLACEHOLDERS, INCLUDE_DIR, LocalProcessTarget, resolve_path
from rollout.devtools.local_postgres import free_port
from rollout.targets.local_process import AppNotReadyError, LocalProcessApp

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
