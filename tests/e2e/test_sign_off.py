"""End to end: a checklist with required manual items makes the release wait for each role's sign-off in
Required Actions before anything changes; an approval lets it go on, a rejection stops it cleanly."""

from __future__ import annotations

import pytest
from observe import airflow_pages, completed_checklist, fingerprint, run_release, served_version, slack_links
from testenv import slack_messages, slack_payloads

pytestmark = pytest.mark.e2e


@pytest.fixture
def required_sign_off(tmp_path, monkeypatch):
    """The demo checklist with its 'Release notes reviewed' item required of the Tech Lead."""
    from airflow_rollout.checklists import checklists_dir

    text = (checklists_dir() / "demo.yaml").read_text()
    assert "        manual: Tech Lead\n" in text
    (tmp_path / "demo.yaml").write_text(
        text.replace("        manual: Tech Lead\n", "        manual: {role: Tech Lead, required: true}\n", 1)
    )
    monkeypatch.setenv("ROLLOUT_CHECKLISTS_DIR", str(tmp_path))


def _sign(answer: str, seen_while_waiting: dict):
    from hitl import answer as answer_required_action
    from hitl import wait_for_awaiting_input
    from observe import ledger

    def human() -> None:
        run_id = wait_for_awaiting_input("release", "sign_off.sign_off", map_index=0)
        seen_while_waiting.update(version=served_version(), backup=ledger().backup(run_id, "app_db"))
        answer_required_action("release", run_id, "sign_off.sign_off", answer, "tara", "Tech Lead Tara", map_index=0)

    return human


def test_release_waits_for_the_sign_off_and_proceeds_when_approved(release_dag, demo, required_sign_off, monkeypatch):
    from hitl import run_with_responder

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")

    seen: dict = {}
    dag_run, ledger = run_with_responder(lambda: run_release(release_dag, "1.1.0"), _sign("Approve", seen))

    assert seen == {"version": "1.0.0", "backup": None}  # nothing was touched while the release waited
    assert dag_run.state == "success"
    assert ledger.release(dag_run.run_id).status == "promoted"
    [signoff] = ledger.signoffs(dag_run.run_id).items()
    assert signoff[0] == "Tech Lead"
    assert (signoff[1].approved, signoff[1].responder) == (True, "Tech Lead Tara")
    document = completed_checklist(dag_run)
    assert "- [x] Release notes reviewed — signed off by **Tech Lead Tara** (Tech Lead)" in document
    assert "| Tech Lead | Tech Lead Tara | approved |" in document
    assert any("Tech Lead must sign off" in m for m in slack_messages())
    # The request links to the sign-off's own Required Action page: the mapped task instance of the role.
    _, run_page = airflow_pages("https://airflow.example.com", dag_run.run_id)
    [request] = [p for p in slack_payloads() if "Tech Lead must sign off" in p["text"]]
    assert slack_links(request)["Answer in Airflow (Required Actions)"] == f"{run_page}/tasks/sign_off.sign_off/mapped/0/required_actions"


def test_a_rejected_sign_off_stops_the_release_before_any_change(release_dag, demo, required_sign_off):
    from hitl import run_with_responder

    before = fingerprint(demo)
    seen: dict = {}
    dag_run, ledger = run_with_responder(lambda: run_release(release_dag, "1.1.0"), _sign("Reject", seen))

    assert dag_run.state == "failed"
    release = ledger.release(dag_run.run_id)
    assert (release.status, release.outcome_reason) == ("aborted", "Tech Lead sign-off rejected by Tech Lead Tara")
    assert ledger.backup(dag_run.run_id, "app_db") is None
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before
    assert ledger.lock_holder("demo") is None
    assert any("stopped before any change" in m for m in slack_messages())
    assert ledger.signoffs(dag_run.run_id)["Tech Lead"].approved is False
