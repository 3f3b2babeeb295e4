"""Evidence functions that read the maintenance and release records, against the real ledger: restore_within_rto passes
on a drill that restored intact within the profile's RTO, and fails on a slow, broken or missing one; rollback_tested
passes on a rollback that restored app and data, and fails on none, an unfinished one or one that restored other data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from observe import ledger, maintenance_store
from seed_platforms import context

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.checklists import PythonItemCheck

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_rollout.maintenance_store import MaintenanceStore

SYSTEM = "ai-etl-assistant"  # its profile's rto_hours: 4
WITHIN_RTO = PythonItemCheck(kind="python", function="restore_within_rto")


@pytest.fixture
def store(postgres: Any) -> Iterator[MaintenanceStore]:
    ledger().ensure_schema()
    postgres.psql("rollout_ledger", f"DELETE FROM rollout_drill WHERE system = '{SYSTEM}'")
    yield maintenance_store()
    postgres.psql("rollout_ledger", f"DELETE FROM rollout_drill WHERE system = '{SYSTEM}'")


def drill(store: MaintenanceStore, run_id: str, restore_seconds: float | None, error: str | None = None) -> None:
    result = {
        "location": f"/backups/{run_id}",
        "backup_taken_at": None,
        "restore_seconds": restore_seconds,
        "rpo_seconds": 1800.0,
        "fingerprint_equal": error is None,
        "error": error,
    }
    store.record_drill(SYSTEM, "app_db", result, run_id=run_id)


def test_a_drill_restored_within_the_rto_passes_with_its_time(store: MaintenanceStore) -> None:
    drill(store, "scheduled__drill-1", 12.5)
    found = evaluate(context(SYSTEM), WITHIN_RTO)
    assert found.passed, found.detail
    assert found.detail == "newest restore drills: app_db restored in 12.5 s (RTO 4 h)"
    assert found.numbers == {"app_db": 12.5}


def test_no_drill_fails(store: MaintenanceStore) -> None:
    found = evaluate(context(SYSTEM), WITHIN_RTO)
    assert not found.passed and "no restore drill on record" in found.detail


def test_the_newest_drill_counts_a_slow_or_broken_restore_fails(store: MaintenanceStore) -> None:
    drill(store, "scheduled__drill-1", 12.5)
    drill(store, "scheduled__drill-2", 5 * 3600.0)  # five hours: an older fast drill does not make up for it
    found = evaluate(context(SYSTEM), WITHIN_RTO)
    assert not found.passed
    assert found.detail.endswith("app_db: restored in 18000.0 s, not under 14400 s"), found.detail
    drill(store, "scheduled__drill-3", None, error="pg_restore: error: could not read input file")
    found = evaluate(context(SYSTEM), WITHIN_RTO)
    assert not found.passed and "app_db: pg_restore: error: could not read input file" in found.detail, found.detail


# --- rollback_tested: the newest rollback of seed 004's system in the release record ----------------------------------

ROLLBACK_SYSTEM = "mlops-system"  # data targets app_db and server_files
ROLLBACK_TESTED = PythonItemCheck(kind="python", function="rollback_tested")
BEFORE = {"public.predictions": {"rows": 3, "sha256": "a1"}}


@pytest.fixture
def releases(postgres: Any) -> Iterator[Any]:
    ledger().ensure_schema()
    postgres.psql("rollout_ledger", f"DELETE FROM rollout_release WHERE system = '{ROLLBACK_SYSTEM}'")
    yield ledger()
    postgres.psql("rollout_ledger", f"DELETE FROM rollout_release WHERE system = '{ROLLBACK_SYSTEM}'")


def ended_release(record: Any, version: str, status: str, *, previous: str | None = "1.0.0", after_restore: Any = BEFORE) -> None:
    """A release of the system that ended with `status`; a rolled-back one with each data target's fingerprints before
    it and after its restore (`None`: no restore recorded)."""
    from airflow_rollout.ledger import FingerprintStage, ReleaseStatus

    release_id = f"manual__{version}"
    record.open_release(release_id=release_id, system=ROLLBACK_SYSTEM, version=version, triggered_by="tester")
    record.set_previous_version(release_id, previous)
    for target in ("app_db", "server_files"):
        record.record_fingerprint(release_id, target, FingerprintStage.BEFORE, BEFORE)
        if after_restore is not None:
            record.record_fingerprint(release_id, target, FingerprintStage.AFTER_RESTORE, after_restore)
    record.set_status(release_id, ReleaseStatus(status), reason=f"{status} in a test", final=True)


def test_a_rollback_that_restored_the_data_and_the_previous_version_passes(releases: Any) -> None:
    ended_release(releases, "1.1.0", "rolled_back")
    ended_release(releases, "1.1.1", "promoted")  # a later promotion leaves the rollback the newest one
    found = evaluate(context(ROLLBACK_SYSTEM), ROLLBACK_TESTED)
    assert found.passed, found.detail
    assert found.detail == (
        "the newest rollback, of 1.1.0 (release manual__1.1.0): 1.0.0 serving again, app_db, server_files restored equal to before"
    )


def test_a_system_never_rolled_back_fails(releases: Any) -> None:
    ended_release(releases, "1.1.0", "promoted")
    found = evaluate(context(ROLLBACK_SYSTEM), ROLLBACK_TESTED)
    assert not found.passed and found.detail == "no release of mlops-system was ever rolled back: the rollback has not been run"


@pytest.mark.parametrize(
    ("newest", "why"),
    [
        # the restore left other data: the rollback did not undo the release
        ({"after_restore": {"public.predictions": {"rows": 4, "sha256": "b2"}}}, "app_db, server_files differ from before the release"),
        # nothing restored at all
        ({"after_restore": None}, "app_db, server_files differ from before the release"),
        # the release undone was the first: nothing was started again
        ({"previous": None}, "undid a first release: no previous version was started again"),
        # the rollback could not finish: a human had to act
        ({"status": "failed"}, "did not finish: failed in a test"),
    ],
)
def test_the_newest_rollback_counts_one_that_did_not_restore_both_halves_fails(releases: Any, newest: dict[str, Any], why: str) -> None:
    ended_release(releases, "1.1.0", "rolled_back")  # an older rollback that worked does not make up for it
    ended_release(releases, "1.2.0", newest.pop("status", "rolled_back"), **newest)
    found = evaluate(context(ROLLBACK_SYSTEM), ROLLBACK_TESTED)
    assert not found.passed
    assert found.detail.startswith("the newest rollback, of 1.2.0 (release manual__1.2.0)"), found.detail
    assert why in found.detail, found.detail
