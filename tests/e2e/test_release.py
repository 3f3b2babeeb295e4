"""End to end: the `release` DAG under dag.test() against a real PostgreSQL, a real app process and a
Slack receiver reached through the real Slack provider hook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from observe import app_pid, fingerprint, run_release, served_version, task_states
from testenv import MIGRATIONS_DIR, slack_messages

pytestmark = pytest.mark.e2e


def test_good_release_migrates_and_is_promoted(release_dag, demo):
    before = fingerprint(demo)

    dag_run, ledger = run_release(release_dag, "1.1.0")

    assert dag_run.state == "success"
    release = ledger.release(dag_run.run_id)
    assert (release.status, release.previous_version, release.decision) == ("promoted", "1.0.0", "proceed")
    assert ledger.migrations(dag_run.run_id) == ["app_db: 1.1.0/0001_add_priority.sql"]
    assert served_version() == "1.1.0"
    after = fingerprint(demo)
    assert "priority integer" in after["public.items"]["columns"]
    assert after["public.orders"] == before["public.orders"]
    backup = ledger.backup(dag_run.run_id, "app_db")
    assert backup and len(backup["sha256"]) == 64 and Path(backup["location"]).exists()
    assert {m["name"] for m in ledger.measurements(dag_run.run_id)} == {"health", "items_smoke", "items_latency"}
    assert [s["status"] for s in ledger.steps(dag_run.run_id) if s["phase"] in {"backup", "migrate", "deploy"}] == ["succeeded"] * 3
    messages = slack_messages()
    assert any("release of 1.1.0 started" in m for m in messages)
    assert any("decision *proceed*" in m for m in messages)
    assert any("1.1.0 promoted (was 1.0.0)" in m for m in messages)
    assert ledger.acquire_lock("demo", "probe") == "probe"  # the lock was freed
    ledger.release_lock("demo", "probe")


def test_bad_release_is_rolled_back_app_and_data(release_dag, demo):
    before = fingerprint(demo)

    dag_run, ledger = run_release(release_dag, "1.2.0")

    release = ledger.release(dag_run.run_id)
    assert release.status == "rolled_back"
    assert release.decision == "rollback"
    assert any(reason.startswith("error rate 33") and reason.endswith("> 10%") for reason in release.decision_reasons)
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before  # archived column, its log table and the migration row are all gone
    states = task_states(dag_run)
    assert states["rollback.restore_data"] == "success"
    assert states["post_deploy.promote"] == "skipped"
    assert states["report_outcome"] == "failed"  # the run is red: the release did not ship
    assert dag_run.state == "failed"
    messages = slack_messages()
    assert any("decision *rollback*" in m and "error rate 33" in m for m in messages)
    assert any("1.2.0 rolled back: 1.0.0 is serving again" in m and "fingerprint equal" in m for m in messages)


@pytest.fixture
def broken_migration():
    """Version 1.4.0 ships two migrations: the first succeeds, the second breaks a CHECK constraint."""
    directory = MIGRATIONS_DIR / "1.4.0"
    directory.mkdir()
    (directory / "0001_add_colour.sql").write_text("ALTER TABLE items ADD COLUMN colour text; UPDATE items SET colour = 'red';")
    (directory / "0002_zero_quantities.sql").write_text("UPDATE orders SET quantity = quantity - 1;")
    yield
    for file in directory.iterdir():
        file.unlink()
    directory.rmdir()


def test_failing_migration_restores_data_and_leaves_app_untouched(release_dag, demo, broken_migration):
    before = fingerprint(demo)
    pid = app_pid(demo)

    dag_run, ledger = run_release(release_dag, "1.4.0")

    release = ledger.release(dag_run.run_id)
    assert release.status == "rolled_back"
    assert any("migrate.migrate_data" in r and "0002_zero_quantities.sql" in r for r in release.decision_reasons)
    assert fingerprint(demo) == before  # 0001 had committed: the restore took it back
    assert app_pid(demo) == pid and served_version() == "1.0.0"  # never stopped
    states = task_states(dag_run)
    assert states["migrate.migrate_data"] == "failed"
    assert states["deploy.deploy_apps"] == "upstream_failed"
    assert states["rollback.rollback_apps"] == "success"
    assert any(":x:" in m and "migrate.migrate_data failed" in m for m in slack_messages())


@pytest.mark.parametrize(
    ("conf", "complaint"),
    [
        ({"system": "no-such-system", "version": "1.1.0"}, "no-such-system"),
        ({"system": "demo", "version": "1.1.0; rm -rf /"}, "does not match"),
        ({"system": "demo", "version": "../../etc"}, "does not match"),
        ({"system": "demo"}, "version"),
    ],
)
def test_bad_input_is_refused_before_any_task_runs(release_dag, demo, conf, complaint):
    from airflow.sdk.exceptions import ParamValidationError

    before = fingerprint(demo)
    with pytest.raises(ParamValidationError, match=complaint.replace("(", r"\(")):
        release_dag.test(run_conf=conf)
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before
    assert slack_messages() == []


@pytest.mark.parametrize(
    ("answer", "status", "served"),
    [("Proceed", "promoted", "1.3.0"), ("Roll back", "rolled_back", "1.0.0")],
)
def test_investigate_is_answered_by_a_human(release_dag, demo, answer, status, served):
    from hitl import answer as answer_required_action
    from hitl import run_with_responder, wait_for_awaiting_input

    before = fingerprint(demo)

    def operator() -> None:
        run_id = wait_for_awaiting_input("release", "ask_operator")
        answer_required_action("release", run_id, "ask_operator", answer, "oncall", "On-call Olga")

    dag_run, ledger = run_with_responder(lambda: run_release(release_dag, "1.3.0"), operator)

    release = ledger.release(dag_run.run_id)
    assert release.status == status
    assert release.decided_by == "On-call Olga"
    assert release.decision_reasons[0].startswith("error rate 3% within 1%-10%")
    assert release.decision_reasons[-1] == f"investigated: On-call Olga chose {answer!r}"
    assert served_version() == served
    if status == "rolled_back":
        assert fingerprint(demo) == before
    messages = slack_messages()
    assert any("decision *investigate*" in m for m in messages)
    assert any("a human must decide within 30 min" in m for m in messages)


@pytest.fixture
def short_investigate_timeout():
    """The demo profile with a 3-second window for the human; restored afterwards."""
    from testenv import SYSTEMS_DIR

    path = SYSTEMS_DIR / "demo.yaml"
    original = path.read_text()
    path.write_text(original.replace("investigate_timeout_minutes: 30", "investigate_timeout_minutes: 0.05"))
    yield
    path.write_text(original)


def test_investigate_nobody_answers_rolls_back_at_the_timeout(release_dag, demo, short_investigate_timeout):
    from hitl import expire_waiting_tasks, run_with_responder, wait_for_awaiting_input

    before = fingerprint(demo)

    def clock() -> None:
        wait_for_awaiting_input("release", "ask_operator")
        time.sleep(3.5)
        expire_waiting_tasks()  # what the scheduler's sweep does once the deadline has passed

    dag_run, ledger = run_with_responder(lambda: run_release(release_dag, "1.3.0"), clock)

    release = ledger.release(dag_run.run_id)
    assert release.status == "rolled_back"
    assert release.decided_by == "timeout"
    assert release.decision_reasons[-1] == "investigated: nobody answered in time chose 'Roll back'"
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before
