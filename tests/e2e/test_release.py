"""End to end: the `release` DAG under dag.test() against a real PostgreSQL, a real app process and a
Slack receiver reached through the real Slack provider hook."""

from __future__ import annotations

from pathlib import Path

import pytest
from observe import airflow_pages, completed_checklist, databases, fingerprint, run_release, served_version, slack_links, snapshot_name
from testenv import slack_messages, slack_payloads

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
    assert backup and len(backup.sha256) == 64 and Path(backup.location).exists()
    assert {m.name for m in ledger.measurements(dag_run.run_id)} == {"health", "items_smoke", "items_latency"}
    phase_steps = [s for s in ledger.steps(dag_run.run_id) if s.phase in {"backup", "migrate", "deploy"} and "checklist" not in s.step]
    assert [s.status for s in phase_steps] == ["succeeded"] * 3
    messages = slack_messages()
    assert any("release of 1.1.0 started" in m for m in messages)
    assert any("decision *proceed*" in m for m in messages)
    assert any("1.1.0 promoted (was 1.0.0)" in m for m in messages)
    assert ledger.lock_holder("demo") is None  # the lock was freed
    assert_checklist_completed(dag_run, ledger)


def assert_checklist_completed(dag_run, ledger) -> None:
    """Every automated release item of the demo checklist ran and passed; the completed checklist shows it."""
    from airflow_rollout.checklists import RELEASE_PHASES, load_checklist

    checklist = load_checklist("demo")
    expected = {e.item_id for e in checklist.entries() if e.item.check and e.phase in RELEASE_PHASES}
    results = ledger.checklist_items(dag_run.run_id)
    assert set(results) == expected
    assert [i for i, r in results.items() if not r.passed] == []
    document = completed_checklist(dag_run)
    assert "- [x] Database backup taken, checksummed and read back — app_db: " in document
    assert "- [ ] Release notes reviewed — *manual: Tech Lead confirms*" in document
    assert "## Deployment Log" in document and "| 1.1.0 |" in document
    assert "## Performance Baselines" in document and "| items_latency |" in document


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
def test_investigate_is_answered_by_a_human(release_dag, demo, answer, status, served, monkeypatch):
    from hitl import answer as answer_required_action
    from hitl import run_with_responder, wait_for_awaiting_input

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")  # the UI's address, as configured
    before = fingerprint(demo)

    def operator() -> None:
        run_id = wait_for_awaiting_input("release", "decide.ask_operator")
        answer_required_action("release", run_id, "decide.ask_operator", answer, "oncall", "On-call Olga")

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
    # Every message links back to the release's page and its run; the question to its Required Action's page.
    release_page, run_page = airflow_pages("https://airflow.example.com", dag_run.run_id)
    payloads = slack_payloads()
    assert len(payloads) >= 4  # started, decision, question, outcome
    for payload in payloads:
        links = slack_links(payload)
        assert (links["Release page"], links["Airflow run"]) == (release_page, run_page)
        assert f"Release page: {release_page}" in payload["text"] and f"Airflow run: {run_page}" in payload["text"]
    [question] = [p for p in payloads if "a human must decide" in p["text"]]
    assert slack_links(question)["Answer in Airflow (Required Actions)"] == f"{run_page}/tasks/decide.ask_operator/required_actions"


@pytest.fixture
def stop_first():
    """The demo profile asking for stop_first deploys; restored afterwards."""
    from testenv import SYSTEMS_DIR

    path = SYSTEMS_DIR / "demo.yaml"
    original = path.read_text()
    path.write_text(original + "deploy_order: stop_first\n")
    yield
    path.write_text(original)


def test_stop_first_deploy_stops_the_old_version_before_the_migration(release_dag, demo, stop_first):
    from datetime import UTC, datetime

    from observe import app_pid

    old_pid = app_pid(demo)

    dag_run, ledger = run_release(release_dag, "1.1.0")

    release = ledger.release(dag_run.run_id)
    assert release.status == "promoted" and served_version() == "1.1.0"
    state = ledger.app_states(dag_run.run_id)["web"]
    stopped_at = datetime.fromtimestamp(state.quiesced["stopped_at"], tz=UTC)
    assert state.quiesced["version"] == "1.0.0" and state.previous_version == "1.0.0"
    migrate = next(a for a in ledger.step_attempts(dag_run.run_id) if a.step == "migrate_data")
    deploy = next(a for a in ledger.step_attempts(dag_run.run_id) if a.step == "deploy_apps")
    # 1.0.0 was gone before the first migration ran, so its code never met the new schema.
    assert migrate.started_at <= stopped_at <= migrate.finished_at
    assert not psutil_alive(old_pid)
    # The downtime runs from that stop until 1.1.0 answered, and the decision judged it.
    assert state.downtime_seconds >= (deploy.finished_at - migrate.finished_at).total_seconds() * 0.9
    assert release.decision == "proceed"
    assert any("decision *proceed*" in m and "downtime_seconds: " in m for m in slack_messages())


def test_bad_release_is_rolled_back_through_the_database_copy(release_dag, demo, database_copy, postgres):
    from airflow_rollout.ledger import FingerprintStage

    before = fingerprint(demo)

    dag_run, ledger = run_release(release_dag, "1.2.0")

    release = ledger.release(dag_run.run_id)
    assert release.status == "rolled_back", release.outcome_reason
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before
    recorded = {
        stage: ledger.fingerprint(dag_run.run_id, "app_db", stage) for stage in (FingerprintStage.BEFORE, FingerprintStage.AFTER_RESTORE)
    }
    assert recorded == {FingerprintStage.BEFORE: before, FingerprintStage.AFTER_RESTORE: before}
    copy = snapshot_name(demo, dag_run.run_id, "1.2.0")
    steps = {s.step: s for s in ledger.steps(dag_run.run_id)}
    assert steps["migrate_data"].detail["snapshots"]["app_db"].startswith("copied demo (")
    assert steps["restore_data"].detail["app_db"].startswith(f"switched in {copy}, the copy taken before the migration")
    assert steps["restore_data"].detail["app_db"].endswith("fingerprint equal")
    assert copy not in databases(postgres) and "demo" in databases(postgres)  # the copy became the database
    assert any("1.2.0 rolled back: 1.0.0 is serving again" in m and "fingerprint equal" in m for m in slack_messages())


def test_a_promoted_release_drops_its_database_copy(release_dag, demo, database_copy, postgres):
    dag_run, ledger = run_release(release_dag, "1.1.0")

    assert ledger.release(dag_run.run_id).status == "promoted" and served_version() == "1.1.0"
    copy = snapshot_name(demo, dag_run.run_id, "1.1.0")
    promote = next(s for s in ledger.steps(dag_run.run_id) if s.step == "promote")
    assert promote.detail["snapshots"] == {"app_db": f"dropped {copy}"}
    assert copy not in databases(postgres)


def psutil_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
