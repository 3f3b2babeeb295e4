"""Evidence functions that read the maintenance record, against the real ledger: restore_within_rto passes on a drill
that restored intact within the profile's RTO, and fails on a slow, broken or missing one."""

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
