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
    if version == "0.0.3":
        import time
        time.sleep(1.5)  # warms up before it listens, as a service loading a model does
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
    with pytest.raises(AppNotReadyError, match=r"svc 0.0.2 to get ready: not done within 3 s \(HTTP 503 at http://127.0.0.1:\d+/\)"):
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


def test_a_slow_start_in_a_task_is_handed_to_the_triggerer_and_the_step_run_after_it_starts_nothing_twice(app, monkeypatch):
    from airflow_rollout import waits
    from airflow_rollout.triggers import AppReadyTrigger
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place

    monkeypatch.setattr(waits, "SHORT_WAIT_SECONDS", 0.2)  # past it, the wait is the triggerer's
    with deferring(), pytest.raises(WaitDeferred) as deferred:
        app.switch_to("0.0.3")
    started = app.current()
    assert started is not None and started.version == "0.0.3"
    trigger = deferred.value.trigger
    assert isinstance(trigger, AppReadyTrigger) and deferred.value.what == "svc 0.0.3 to get ready"

    classpath, arguments = trigger.serialize()  # as the triggerer builds it: from what the task serialized
    assert classpath == "airflow_rollout.triggers.AppReadyTrigger"
    assert wait_in_place(AppReadyTrigger(**arguments), "ready", timeout=30) == {"status": "success"}

    with deferring():  # the step's run after the trigger fired: the same process, ready, nothing started again
        app.switch_to("0.0.3")
    assert app.current() == started


def test_a_process_that_exits_while_the_triggerer_waits_fails_the_step_without_a_second_start(app, monkeypatch):
    from airflow_rollout import waits
    from airflow_rollout.triggers import AppReadyTrigger
    from airflow_rollout.waits import WAIT_FAILED, WaitDeferred, deferring, wait_in_place

    monkeypatch.setattr(waits, "SHORT_WAIT_SECONDS", 0.2)
    with deferring(), pytest.raises(WaitDeferred) as deferred:
        app.switch_to("0.0.3")
    app.stop()  # it dies before it gets ready
    event = wait_in_place(AppReadyTrigger(**deferred.value.trigger.serialize()[1]), "ready", timeout=30)
    assert event["status"] == WAIT_FAILED and "svc 0.0.3 exited before it became ready" in event["message"], event

    with deferring(failure=event["message"]), pytest.raises(AppNotReadyError, match=r"svc 0\.0\.3 to get ready: svc 0\.0\.3 exited"):
        app.switch_to("0.0.3")
    assert app.current() is None  # not started a second time


def test_a_long_grace_period_after_sigterm_is_waited_out_in_the_triggerer_then_the_next_run_kills(tmp_path, monkeypatch):
    import time

    from airflow_rollout import waits
    from airflow_rollout.triggers import ProcessesGoneTrigger
    from airflow_rollout.waits import WaitDeferred, deferring, wait_in_place

    script = tmp_path / "stubborn.py"  # finishes "its jobs" on SIGTERM: only SIGKILL stops it
    script.write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('deaf', flush=True)\nwhile True:\n    time.sleep(1)\n"
    )
    config = LocalProcessTarget.model_validate(
        {"kind": "local_process", "name": "stubborn", "command": [sys.executable, str(script)], "port": free_port()}
        | {"stop_timeout_seconds": 2}
    )
    target = LocalProcessApp(config=config, system="unit", state_dir=tmp_path)
    running = target.start("1.0.0")
    deadline = time.monotonic() + 10
    while "deaf" not in (target.directory / "1.0.0.log").read_text():  # a SIGTERM before that would end it
        assert time.monotonic() < deadline, "the process never set its SIGTERM handler"
        time.sleep(0.05)
    monkeypatch.setattr(waits, "SHORT_WAIT_SECONDS", 0.2)

    with deferring():  # the step's first run: SIGTERM, then the wait goes to the triggerer
        assert target.quiesce() == {"version": "1.0.0"}
        with pytest.raises(WaitDeferred) as deferred:
            target.wait_quiesced()
    terminated_at = json.loads(target.state_file.read_text())["terminated_at"]
    trigger = ProcessesGoneTrigger(**deferred.value.trigger.serialize()[1])
    assert wait_in_place(trigger, "grace period", timeout=30) == {"status": "success"}  # its deadline: not a failure
    assert time.time() >= terminated_at + 2 and target.current() == running  # it ignored SIGTERM

    with deferring():  # the run after the trigger: no second SIGTERM, no new grace period; SIGKILL
        target.quiesce()
        target.wait_quiesced()
    assert json.loads(target.state_file.read_text())["terminated_at"] == terminated_at
    assert target.current() is None


def test_a_switch_called_under_a_running_event_loop_still_waits_for_readiness(app):
    """A tool or test calling a target from async code (Playwright's sync API runs a loop in its thread)."""
    import asyncio

    async def caller() -> float:
        return app.switch_to("0.0.3")  # warms up first: the trigger's wait, not the first look

    asyncio.run(caller())

    running = app.current()
    assert running is not None and running.version == "0.0.3"
