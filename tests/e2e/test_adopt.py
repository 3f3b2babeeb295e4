"""End to end: a service started outside the package is adopted, then released and rolled back to the adopted version."""

from __future__ import annotations

import os
import subprocess
import time

import psutil
import pytest
from observe import STATE_DIR, fingerprint, ledger, run_release, served_version, task_states
from testenv import slack_messages

pytestmark = pytest.mark.e2e


@pytest.fixture
def started_outside(demo):
    """1.0.0 serving, started by hand (no pid file of the package's), as a new user's service runs today."""
    from airflow_rollout.targets.local_process import LocalProcessApp
    from devtools import demo_system

    demo_system.stop_apps(demo, STATE_DIR)
    app = LocalProcessApp(config=demo.app_targets[0], system="demo", state_dir=STATE_DIR)
    app.state_file.unlink()
    process = subprocess.Popen(app.command("1.0.0"), env=app.environment(), start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not _answers():
        assert process.poll() is None and time.monotonic() < deadline, "the hand-started service did not answer"
        time.sleep(0.1)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def _answers() -> bool:
    try:
        return served_version() == "1.0.0"
    except Exception:  # not listening yet
        return False


def test_a_running_service_is_adopted_then_released_and_rolled_back_to_it(dags, release_dag, demo, started_outside):
    adopted = dags["adopt"].test(run_conf={"system": "demo", "version": "1.0.0"})

    assert adopted.state == "success"
    record = ledger().release(adopted.run_id)
    assert (record.status, record.version, record.outcome_reason) == ("promoted", "1.0.0", "adopted: it ran before this package managed it")
    assert started_outside.poll() is None  # nothing was restarted
    take_over = next(s for s in ledger().steps(adopted.run_id) if s.step == "take_over")
    assert f"took over pid {started_outside.pid}" in take_over.detail["web"]
    assert {m.name for m in ledger().measurements(adopted.run_id)} == {"health", "items_smoke", "items_latency"}
    backup = ledger().backup(adopted.run_id, "app_db")
    assert backup and len(backup.sha256) == 64
    assert ledger().lock_holder("demo") is None
    assert any("demo 1.0.0 adopted" in m for m in slack_messages())

    before = fingerprint(demo)
    dag_run, led = run_release(release_dag, "1.2.0")

    release = led.release(dag_run.run_id)
    assert (release.status, release.previous_version) == ("rolled_back", "1.0.0")
    # The adopted process was stopped by the deploy like one the package started; the rollback started 1.0.0 itself.
    assert started_outside.wait(timeout=30) is not None
    assert served_version() == "1.0.0" and fingerprint(demo) == before
    assert any("1.2.0 rolled back: 1.0.0 is serving again" in m for m in slack_messages())


def test_adopting_a_version_that_is_not_what_runs_changes_nothing(dags, demo, started_outside):
    before = fingerprint(demo)

    run = dags["adopt"].test(run_conf={"system": "demo", "version": "1.1.0"})

    assert task_states(run)["check_running"] == "failed"
    record = ledger().release(run.run_id)
    assert record.status == "aborted" and "version is '1.0.0', expected '1.1.0'" in record.outcome_reason
    assert ledger().last_promoted("demo") is None
    assert ledger().lock_holder("demo") is None
    assert started_outside.poll() is None and served_version() == "1.0.0" and fingerprint(demo) == before
    assert psutil.pid_exists(started_outside.pid) and os.getpgid(started_outside.pid) == started_outside.pid
    assert any("adoption of demo 1.1.0 failed; nothing was changed" in m for m in slack_messages())
