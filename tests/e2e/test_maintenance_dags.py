"""The maintenance DAGs under dag.test() against the real PostgreSQL, the demo service and Slack."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from observe import STATE_DIR, ledger, maintenance_store, task_states
from testenv import slack_messages

from airflow_rollout.targets.postgres import PostgresDataTarget

if TYPE_CHECKING:
    from airflow_rollout.maintenance_store import FindingRow

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def demo_only(tmp_path, monkeypatch):
    """Maintenance runs for every configured system; these tests look at the demo's alone."""
    from testenv import SYSTEMS_DIR

    (tmp_path / "demo.yaml").write_text((SYSTEMS_DIR / "demo.yaml").read_text())
    monkeypatch.setenv("ROLLOUT_SYSTEMS_DIR", str(tmp_path))


def scheduled_backup(profile, postgres, name: str, days_old: int) -> Path:
    """A real backup recorded as a scheduled one, taken `days_old` days ago."""
    target = PostgresDataTarget(config=profile.data_targets[0])
    record = target.backup(STATE_DIR / "backups" / "demo" / "app_db" / f"app_db-{name}.dump")
    maintenance_store().record_scheduled_backup("demo", "app_db", record.as_dict(), run_id=f"an-earlier-run-{name}")
    postgres.psql(
        "rollout_ledger",
        f"UPDATE rollout_scheduled_backup SET taken_at = now() - interval '{days_old} days' WHERE location = '{record.location}'",
    )
    return Path(record.location)


def findings(run_id: str) -> dict[str, FindingRow]:
    return {f.check: f for f in maintenance_store().findings(run_id, ["demo"])}


def test_daily_takes_a_backup_and_keeps_exactly_the_right_ones(dags, demo, postgres, monkeypatch):
    # No Airflow API connection here (the session's api-server, if an earlier test started it, is left out of view).
    monkeypatch.delenv("AIRFLOW_CONN_AIRFLOW_API", raising=False)
    old = scheduled_backup(demo, postgres, "old", 40)
    older = scheduled_backup(demo, postgres, "older", 35)
    recent = scheduled_backup(demo, postgres, "recent", 5)
    conf = {"system": "demo", "version": "1.1.0", "release_id": "long-ago-release"}
    assert dags["backup"].test(run_conf=conf).state == "success"
    postgres.psql("rollout_ledger", "UPDATE rollout_backup SET taken_at = now() - interval '90 days'")
    release_backup = Path(ledger().backup("long-ago-release", "app_db").location)

    dag_run = dags["maintenance_daily"].test()

    assert dag_run.state == "success", task_states(dag_run)
    assert not old.exists() and not older.exists()
    assert recent.exists() and release_backup.exists()  # younger than 30 days / a release points to it
    remaining = [b.location for b in maintenance_store().backups_of("demo", "app_db")]
    assert str(recent) in remaining and str(release_backup) in remaining and str(old) not in remaining
    newest = Path(remaining[0])
    assert newest.name.startswith("app_db-scheduled-") and newest.exists()
    found = findings(dag_run.run_id)
    assert found["retention app_db"].detail.startswith("2 deleted (older than 30 days)")
    assert found["backup age app_db"].ok and found["health web health"].ok
    assert found["checklist s8.1 Daily backup not older than a day"].ok  # the checklist's daily item
    digest = slack_messages()[-1]
    assert "daily maintenance: all" in digest and "checks passed" in digest
    assert "airflow runs: not reviewed: no `airflow_api` connection" in digest


def test_daily_is_loud_and_specific_when_the_service_is_down(dags, demo):
    from devtools import demo_system

    demo_system.stop_apps(demo, STATE_DIR)

    dag_run = dags["maintenance_daily"].test()

    states = task_states(dag_run)
    assert states["check_running_version"] == "failed"
    assert states["back_up"] == "success"  # the other checks went on
    assert states["send_digest"] == "success"
    digest = slack_messages()[-1]
    assert ":rotating_light:" in digest and "daily maintenance: 2 of 7 checks FAILED" in digest
    assert "FAILED health web health: 1.0.0: GET /health: no answer" in digest
    assert "FAILED health web items_smoke" in digest


def test_weekly_drill_proves_the_backup_and_reports_trends(dags, release_dag, demo, postgres):
    assert release_dag.test(run_conf={"system": "demo", "version": "1.1.0"}).state == "success"
    scheduled_backup(demo, postgres, "for-the-drill", 0)

    dag_run = dags["maintenance_weekly"].test()

    assert dag_run.state == "success", task_states(dag_run)
    [drill] = maintenance_store().drills("demo")
    assert drill.fingerprint_equal is True and drill.error is None
    assert drill.restore_seconds > 0 and 0 <= drill.rpo_seconds < 60
    scratch = postgres.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'rollout_drill_%'")
    assert scratch.strip() == "0"  # dropped
    report = findings(dag_run.run_id)["trend report"].detail
    png = Path(report.splitlines()[0].removeprefix("plot: "))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as image:
        image.verify()
    assert "| 1.1.0 | promoted |" in report
    assert "VACUUM (ANALYZE) of 4 tables" in findings(dag_run.run_id)["vacuum app_db"].detail  # with schema_revision
    assert findings(dag_run.run_id)["checklist s8.2 Restore drill passed within the last week"].ok  # after the drill
    digest = slack_messages()[-1]
    assert "weekly maintenance: all" in digest and "fingerprint equal" in digest


def test_weekly_drill_of_a_damaged_backup_fails_loudly_and_names_the_file(dags, demo, postgres):
    damaged = scheduled_backup(demo, postgres, "damaged", 0)
    with damaged.open("r+b") as handle:
        handle.truncate(500)

    dag_run = dags["maintenance_weekly"].test()

    states = task_states(dag_run)
    assert states["drill_restore"] == "failed"
    assert states["vacuum_analyze"] == "success"  # a failed drill stops no other maintenance
    [drill] = maintenance_store().drills("demo")
    assert drill.fingerprint_equal is False and "altered or truncated" in drill.error
    digest = slack_messages()[-1]
    assert ":rotating_light:" in digest and f"FAILED restore drill app_db: {damaged}" in digest


def test_disaster_recovery_drill_starts_the_running_version_on_the_restored_data(dags, demo, postgres):
    from observe import app_pid, served_version

    scheduled_backup(demo, postgres, "for-dr", 0)
    live_pid = app_pid(demo)

    dag_run = dags["maintenance_weekly"].test(run_conf={"force_dr_drill": True})

    assert dag_run.state == "success", task_states(dag_run)
    detail = findings(dag_run.run_id)["disaster recovery drill web"].detail
    assert detail.startswith("1.0.0 started on the restored data in") and detail.endswith("2 critical checks passed")
    assert app_pid(demo) == live_pid and served_version() == "1.0.0"  # the live service was not touched
    assert postgres.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'rollout_dr_%'").strip() == "0"


def test_weekly_trend_plot_is_uploaded_through_the_slack_web_api(dags, release_dag, demo):
    from testenv import SLACK_OUT

    from devtools.slack_receiver import files_dir, read_uploads

    assert release_dag.test(run_conf={"system": "demo", "version": "1.1.0"}).state == "success"
    uploads_before = len(read_uploads(SLACK_OUT))

    dag_run = dags["maintenance_weekly"].test()

    assert findings(dag_run.run_id)["trend upload"].ok
    upload = read_uploads(SLACK_OUT)[uploads_before]
    assert upload["channel_id"] == "C0TESTS1"
    assert "| 1.1.0 | promoted |" in upload["initial_comment"]
    [file_id] = [f["id"] for f in json.loads(upload["files"])]
    [stored] = files_dir(SLACK_OUT).glob(f"{file_id}-*.png")
    assert stored.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_daily_reads_failed_runs_through_the_airflow_rest_api(dags, release_dag, demo, airflow_api):
    rolled_back = release_dag.test(run_conf={"system": "demo", "version": "1.2.0"})
    assert rolled_back.state == "failed"  # a rolled-back release ends red on purpose

    dag_run = dags["maintenance_daily"].test()

    detail = findings(dag_run.run_id)  # the airflow-wide finding is not per system: read the digest
    assert "airflow runs" not in detail
    digest = slack_messages()[-1]
    assert "airflow runs: " in digest and "failed DAG runs and" in digest
    assert "release.report_outcome" in digest


# The maintenance tables as ledgers before run ids had them, with rows: two drills of one target, no run.
LEDGER_BEFORE_RUN_IDS = """
CREATE TABLE rollout_scheduled_backup (
    backup_id bigserial PRIMARY KEY, system text NOT NULL, target text NOT NULL, location text NOT NULL UNIQUE,
    format text NOT NULL, sha256 text NOT NULL, size_bytes bigint NOT NULL, fingerprint jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz
);
CREATE TABLE rollout_drill (
    drill_id bigserial PRIMARY KEY, system text NOT NULL, target text NOT NULL, location text NOT NULL,
    backup_taken_at timestamptz, restore_seconds double precision, rpo_seconds double precision,
    fingerprint_equal boolean NOT NULL, error text, drilled_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE rollout_maintenance_finding (
    run_id text NOT NULL, system text NOT NULL, check_name text NOT NULL, ok boolean NOT NULL, detail text NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, system, check_name)
);
INSERT INTO rollout_scheduled_backup (system, target, location, format, sha256, size_bytes, fingerprint)
    VALUES ('demo', 'app_db', '/old/a.dump', 'custom', 'aa', 1, '{}'), ('demo', 'app_db', '/old/b.dump', 'custom', 'bb', 1, '{}');
INSERT INTO rollout_drill (system, target, location, fingerprint_equal)
    VALUES ('demo', 'app_db', '/old/a.dump', true), ('demo', 'app_db', '/old/b.dump', true);
INSERT INTO rollout_maintenance_finding (run_id, system, check_name, ok, detail) VALUES ('old-run', 'demo', 'backup app_db', true, 'old');
"""


def test_an_older_ledger_gains_the_run_keys_keeps_its_rows_and_upserts_by_run(postgres, monkeypatch):
    from airflow_rollout.maintenance_store import MaintenanceStore

    postgres.psql("postgres", "DROP DATABASE IF EXISTS ledger_before_run_ids")
    postgres.create_database("ledger_before_run_ids")
    postgres.psql("ledger_before_run_ids", LEDGER_BEFORE_RUN_IDS)
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_BEFORE_RUN_IDS", postgres.airflow_conn_json("ledger_before_run_ids"))
    old = MaintenanceStore(conn_id="ledger_before_run_ids")

    old.ensure_schema()
    old.ensure_schema()  # applied at every start: a second time changes nothing

    backup = {"location": "/new/run-1.dump", "format": "custom", "sha256": "cc", "size_bytes": 2, "fingerprint": {}}
    old.record_scheduled_backup("demo", "app_db", backup, run_id="run-1")
    old.record_scheduled_backup("demo", "app_db", {**backup, "sha256": "dd"}, run_id="run-1")  # its retry
    drill = {"location": "/new/run-1.dump", "backup_taken_at": None, "restore_seconds": 1.0, "rpo_seconds": 2.0, "error": None}
    old.record_drill("demo", "app_db", {**drill, "fingerprint_equal": False}, run_id="run-1")
    old.record_drill("demo", "app_db", {**drill, "fingerprint_equal": True}, run_id="run-1")  # its retry
    old.record_findings("old-run", "demo", "back_up", [{"system": "demo", "check": "backup app_db", "ok": False, "detail": "new"}])

    newest, *older = [b.location for b in old.backups_of("demo", "app_db")]
    assert (newest, sorted(older)) == ("/new/run-1.dump", ["/old/a.dump", "/old/b.dump"])
    assert old.scheduled_backup("run-1", "demo", "app_db").sha256 == "dd"
    assert [(d.run_id, d.location, d.fingerprint_equal) for d in old.drills("demo")] == [
        (None, "/old/a.dump", True),
        (None, "/old/b.dump", True),
        ("run-1", "/new/run-1.dump", True),
    ]
    assert [asdict(f) for f in old.findings("old-run", ["demo"])] == [
        {"system": "demo", "check": "backup app_db", "ok": False, "detail": "new"}
    ]
