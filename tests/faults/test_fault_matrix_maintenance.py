"""The fault matrix of scheduled maintenance: a backup or a restore drill whose first attempt failed or was
killed, run again in the same DAG run, and the end state asserted: the artefacts on disk, the ledger's rows,
the scratch databases left, the findings and Slack.

"The same DAG run again" is `dag.test()` with the first attempt's logical date and run_after: Airflow gives
it the same run id (it replaces its earlier run of that logical date, as clearing a run runs its tasks
again), so every task sees the run id and run time its first attempt saw. A killed worker is a
`run_detached` process SIGKILLed mid-task; its run's id and dates are read from its metadata database.
docs/guarantees.md has one row per test here; tests/faults/test_guarantees_doc.py keeps them in step.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from inject import pg_programs, run_detached, wait_for
from observe import STATE_DIR, maintenance_store, task_states
from testenv import SESSION_DIR, slack_messages

from airflow_rollout.targets.base import file_sha256
from airflow_rollout.targets.postgres import PostgresDataTarget

if TYPE_CHECKING:
    from airflow_rollout.maintenance_store import FindingRow

pytestmark = pytest.mark.e2e

BACKUPS = STATE_DIR / "backups" / "demo" / "app_db"


@pytest.fixture(autouse=True)
def demo_only(tmp_path, monkeypatch):
    """Maintenance runs for every configured system; these tests look at the demo's alone."""
    from testenv import SYSTEMS_DIR

    systems = tmp_path / "systems"
    systems.mkdir()
    (systems / "demo.yaml").write_text((SYSTEMS_DIR / "demo.yaml").read_text())
    monkeypatch.setenv("ROLLOUT_SYSTEMS_DIR", str(systems))


def scheduled_artefacts() -> set[Path]:
    """The scheduled backups of the demo's database on disk, finished or partial."""
    return set(BACKUPS.glob("app_db-scheduled-*"))


def scheduled_backup_rows(postgres) -> list[tuple[str, str, str]]:
    """Every row of rollout_scheduled_backup (the `demo` fixture empties the table): run id, location, sha256."""
    out = postgres.psql("rollout_ledger", "SELECT run_id, location, sha256 FROM rollout_scheduled_backup ORDER BY backup_id")
    return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]


def scratch_databases(postgres) -> int:
    return int(postgres.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'rollout_drill_%'").strip())


def findings(run_id: str) -> dict[str, FindingRow]:
    return {f.check: f for f in maintenance_store().findings(run_id, ["demo"])}


def same_run_again(dag, logical_date: datetime, run_after: datetime):
    """The DAG run with this logical date and run_after once more: the same run id, every task run again."""
    return dag.test(logical_date=logical_date, run_after=run_after)


def detached_run(name: str, dag_id: str) -> tuple[str, datetime, datetime]:
    """The run id, logical date and run_after of the run a (killed) `run_detached` process had started."""

    def utc(value: str) -> datetime:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    with closing(sqlite3.connect(SESSION_DIR / f"detached-{name}" / "airflow.db")) as db:
        run_id, logical_date, run_after = db.execute(
            "SELECT run_id, logical_date, run_after FROM dag_run WHERE dag_id = ?", (dag_id,)
        ).fetchone()
    return run_id, utc(logical_date), utc(run_after)


def kill(worker) -> str:
    """SIGKILL the detached run's process group, as a worker dies (its pg_dump, pg_restore or psql with it)."""
    os.killpg(worker.pid, signal.SIGKILL)
    output, _ = worker.communicate()
    return output


def recorded_backup(name: str) -> Path:
    """A real backup of the demo's database, recorded as an earlier run's scheduled backup: what a drill restores."""
    from airflow_rollout.config import load_profile

    record = PostgresDataTarget(config=load_profile("demo").data_targets[0]).backup(BACKUPS / f"app_db-{name}.dump")
    maintenance_store().record_scheduled_backup("demo", "app_db", record.as_dict(), run_id=f"an-earlier-run-{name}")
    return Path(record.location)


# --- the daily backup -----------------------------------------------------------------------------------------


def test_maintenance_backup_failed_midway_leaves_no_partial_dump_and_the_retry_dumps_again(dags, demo, postgres, monkeypatch, tmp_path):
    before = scheduled_artefacts()
    disk_fills_up = "\n".join(
        [
            # pg_dump streams the archive to its stdout: half of it gets through, then the disk is full.
            "whole=$(mktemp)",
            '$REAL "$@" > "$whole" || exit',
            'head --bytes=$(( $(stat -c %s "$whole") / 2 )) "$whole"',
            'rm "$whole"',
            'echo "pg_dump: error: could not write to output file: No space left on device" >&2',
            "exit 1",
        ]
    )
    with monkeypatch.context() as patched:
        patched.setenv("ROLLOUT_PG_BIN", str(pg_programs(tmp_path / "bin", {"pg_dump": disk_fills_up})))
        first = dags["maintenance_daily"].test()
    run_id, logical_date, run_after = first.run_id, first.logical_date, first.run_after
    assert task_states(first)["back_up"] == "failed"
    # The failed attempt's half dump is removed at once (the disk may be what is full), and nothing recorded it.
    assert scheduled_artefacts() == before and scheduled_backup_rows(postgres) == []
    assert "No space left on device" in findings(run_id)["backup"].detail

    retry = same_run_again(dags["maintenance_daily"], logical_date, run_after)

    assert retry.run_id == run_id
    assert retry.state == "success", task_states(retry)
    [backup] = scheduled_artefacts() - before  # one dump of the run
    assert backup.name.endswith(f"-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}.dump")  # named after the run
    assert scheduled_backup_rows(postgres) == [(run_id, str(backup), file_sha256(backup))]
    PostgresDataTarget.verify_integrity(str(backup), file_sha256(backup))  # complete: pg_restore reads it back
    found = findings(run_id)
    assert "backup" not in found and found["backup app_db"].ok  # the first attempt's failure does not outlive the retry
    assert "daily maintenance: all" in slack_messages()[-1]


def test_maintenance_backup_killed_before_it_was_recorded_the_retry_replaces_the_dump(dags, demo, postgres, tmp_path):
    before = scheduled_artefacts()
    name = f"maintenance-{tmp_path.name}"
    slow_read_back = 'sleep 120; exec $REAL "$@"'  # pg_restore --list: the read-back, after the dump is in place
    worker = run_detached(
        name, "maintenance_daily", {}, {"ROLLOUT_PG_BIN": str(pg_programs(tmp_path / "bin", {"pg_restore": slow_read_back}))}
    )
    try:
        wait_for(
            lambda: any(not p.name.endswith(".partial") for p in scheduled_artefacts() - before),
            "the dump to be in place",
            timeout=300,
            give_up=lambda: worker.poll() is not None,
        )
    finally:
        output = kill(worker)
    [dumped] = scheduled_artefacts() - before
    assert scheduled_backup_rows(postgres) == [], output[-3000:]  # written, never recorded: what the killed worker left
    first_inode = dumped.stat().st_ino
    run_id, logical_date, run_after = detached_run(name, "maintenance_daily")

    retry = same_run_again(dags["maintenance_daily"], logical_date, run_after)

    assert retry.run_id == run_id
    assert retry.state == "success", task_states(retry)
    [backup] = scheduled_artefacts() - before
    assert backup == dumped and backup.stat().st_ino != first_inode  # the same name, dumped again: nothing recorded it
    assert scheduled_backup_rows(postgres) == [(run_id, str(backup), file_sha256(backup))]
    PostgresDataTarget.verify_integrity(str(backup), file_sha256(backup))
    assert findings(run_id)["backup app_db"].ok


def test_maintenance_backup_retried_after_it_finished_reuses_the_verified_dump(dags, demo, postgres):
    before = scheduled_artefacts()
    first = dags["maintenance_daily"].test()
    assert first.state == "success", task_states(first)
    run_id, logical_date, run_after = first.run_id, first.logical_date, first.run_after
    [backup] = scheduled_artefacts() - before
    taken = backup.stat()

    retry = same_run_again(dags["maintenance_daily"], logical_date, run_after)

    assert retry.run_id == run_id
    assert retry.state == "success", task_states(retry)
    assert scheduled_artefacts() - before == {backup}
    assert (backup.stat().st_ino, backup.stat().st_mtime_ns) == (taken.st_ino, taken.st_mtime_ns)  # not dumped again
    assert scheduled_backup_rows(postgres) == [(run_id, str(backup), file_sha256(backup))]
    assert findings(run_id)["backup app_db"].detail.endswith("(taken by an earlier attempt of this run)")


# --- the weekly restore drill ---------------------------------------------------------------------------------


def test_restore_drill_failed_then_retried_is_recorded_once(dags, demo, postgres, monkeypatch, tmp_path):
    backup = recorded_backup("for-the-drill")
    server_gone = 'echo "psql: error: server closed the connection unexpectedly" >&2; exit 2'
    with monkeypatch.context() as patched:
        patched.setenv("ROLLOUT_PG_BIN", str(pg_programs(tmp_path / "bin", {"psql": server_gone})))
        first = dags["maintenance_weekly"].test()
    run_id, logical_date, run_after = first.run_id, first.logical_date, first.run_after
    assert task_states(first)["drill_restore"] == "failed"
    [failed] = maintenance_store().drills("demo")
    assert failed.run_id == run_id and not failed.fingerprint_equal and "psql restore exited with 2" in failed.error

    retry = same_run_again(dags["maintenance_weekly"], logical_date, run_after)

    assert retry.run_id == run_id
    assert task_states(retry)["drill_restore"] == "success"
    [drill] = maintenance_store().drills("demo")  # the run's drill, overwritten by the retry: not a second record
    assert (drill.run_id, drill.location) == (run_id, str(backup))
    assert drill.fingerprint_equal is True and drill.error is None and drill.drilled_at > failed.drilled_at
    assert scratch_databases(postgres) == 0
    assert findings(run_id)["restore drill app_db"].ok


def test_restore_drill_killed_during_the_restore_the_retry_drops_the_leftover_scratch_database(dags, demo, postgres, tmp_path):
    backup = recorded_backup("for-the-killed-drill")
    name = f"drill-{tmp_path.name}"
    slow_restore = 'sleep 120; exec $REAL "$@"'  # psql: the restore into the scratch database
    worker = run_detached(name, "maintenance_weekly", {}, {"ROLLOUT_PG_BIN": str(pg_programs(tmp_path / "bin", {"psql": slow_restore}))})
    try:
        wait_for(
            lambda: scratch_databases(postgres) == 1, "the drill's scratch database", timeout=300, give_up=lambda: worker.poll() is not None
        )
    finally:
        output = kill(worker)
    assert maintenance_store().drills("demo") == [], output[-3000:]  # what the killed worker left: a scratch database, no record
    assert scratch_databases(postgres) == 1
    run_id, logical_date, run_after = detached_run(name, "maintenance_weekly")

    retry = same_run_again(dags["maintenance_weekly"], logical_date, run_after)

    assert retry.run_id == run_id
    assert task_states(retry)["drill_restore"] == "success"
    [drill] = maintenance_store().drills("demo")
    assert (drill.run_id, drill.location, drill.fingerprint_equal, drill.error) == (run_id, str(backup), True, None)
    assert scratch_databases(postgres) == 0  # the killed attempt's scratch database (the same name) dropped too
    assert findings(run_id)["restore drill app_db"].ok
