"""Each phase DAG alone, chained by hand through one release id, and a broken profile refused."""

from __future__ import annotations

import pytest
from observe import STATE_DIR, app_pid, fingerprint, ledger, served_version, task_states
from testenv import SYSTEMS_DIR, slack_messages

pytestmark = pytest.mark.e2e


def run_phase(dags, phase: str, release_id: str, version: str = "1.2.0"):
    conf = {"system": "demo", "version": version, "release_id": release_id}
    if phase == "rollback":
        conf["reason"] = "the phases test rolls it back"
    return dags[phase].test(run_conf=conf)


def test_migrate_alone_refuses_a_release_without_a_backup(dags, demo):
    before = fingerprint(demo)

    dag_run = run_phase(dags, "migrate", "hand-made-1")

    assert task_states(dag_run) == {"take_lock": "success", "migrate.migrate_data": "failed", "hand_back_lock": "success"}
    assert ledger().lock_holder("demo") is None  # it changed nothing: the lock is free again
    step = next(s for s in ledger().steps("hand-made-1") if s.step == "migrate_data")
    assert "has no verified backup of app_db" in step.error
    assert fingerprint(demo) == before


def test_phases_triggered_one_by_one_release_and_roll_back(dags, demo):
    before = fingerprint(demo)
    release_id = "hand-made-2"

    for phase in ("backup", "migrate", "deploy"):
        assert run_phase(dags, phase, release_id).state == "success", phase
    assert served_version() == "1.2.0"
    assert fingerprint(demo) != before
    location = ledger().backup(release_id, "app_db").location
    assert run_phase(dags, "backup", release_id).state == "success"  # again: the intact backup is kept
    assert ledger().backup(release_id, "app_db").location == location
    assert next(s for s in ledger().steps(release_id) if s.step == "backup_data").detail["app_db"]["reused"] is True

    dag_run = run_phase(dags, "rollback", release_id)

    assert dag_run.state == "success"
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before
    release = ledger().release(release_id)
    assert release.status == "rolled_back"
    assert release.outcome_reason == "rolled back by dag_test because the phases test rolls it back"  # dag.test's user
    assert ledger().lock_holder("demo") is None
    checklist = (STATE_DIR / "checklists" / "demo" / f"{release_id}.md").read_text()  # rewritten by the rollback run
    assert "status **rolled_back**: rolled back by dag_test because the phases test rolls it back" in checklist
    pid = app_pid(demo)
    assert run_phase(dags, "rollback", release_id).state == "success"  # twice: nothing stopped or restored twice
    assert app_pid(demo) == pid
    assert fingerprint(demo) == before


def test_a_broken_profile_is_reported_with_its_file_and_nothing_changes(release_dag, demo):
    path = SYSTEMS_DIR / "demo.yaml"
    original = path.read_text()
    before = fingerprint(demo)
    path.write_text(original.replace("critical: true", "critical: [true", 1))
    try:
        dag_run = release_dag.test(run_conf={"system": "demo", "version": "1.1.0"})
    finally:
        path.write_text(original)

    assert task_states(dag_run)["preflight"] == "failed"
    assert served_version() == "1.0.0" and fingerprint(demo) == before
    assert slack_messages() == []  # no profile, so no Slack connection to speak through
