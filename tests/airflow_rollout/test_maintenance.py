"""The pure parts of maintenance: which backups retention deletes, when VACUUM is due, the digest's voice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from airflow_rollout.config import VacuumSchedule
from airflow_rollout.maintenance import Candidate, Finding, MaintenanceRun, digest, retention_plan, vacuum_due

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def aged(location: str, days: float, release_id: str | None = None) -> Candidate:
    return Candidate(location, NOW - timedelta(days=days), release_id)


@pytest.mark.parametrize(
    ("candidates", "newest_verified", "deleted"),
    [
        pytest.param([aged("fresh", 1), aged("old", 31)], "fresh", ["old"], id="older-than-30-days-goes"),
        pytest.param([aged("edge", 30)], "edge", [], id="exactly-30-days-stays"),
        pytest.param([aged("a", 40), aged("b", 35)], "a", ["b"], id="the-newest-intact-one-stays-however-old"),
        pytest.param([aged("fresh", 1), aged("release", 90, "r-1")], "fresh", [], id="a-release-backup-stays"),
        pytest.param([aged("broken", 1), aged("old", 45)], "old", [], id="newest-is-broken-so-the-old-intact-one-stays"),
        pytest.param([aged("x", 50), aged("y", 60)], None, ["x", "y"], id="nothing-intact-old-ones-go"),
        pytest.param([], None, [], id="nothing-at-all"),
    ],
)
def test_retention_plan(candidates, newest_verified, deleted):
    assert retention_plan(candidates, keep_days=30, now=NOW, newest_verified=newest_verified) == deleted


@pytest.mark.parametrize(
    ("schedule", "day", "due"),
    [
        (VacuumSchedule.WEEKLY, 15, True),
        (VacuumSchedule.MONTHLY, 3, True),
        (VacuumSchedule.MONTHLY, 7, True),
        (VacuumSchedule.MONTHLY, 8, False),
        (VacuumSchedule.NEVER, 1, False),
    ],
)
def test_vacuum_due(schedule, day, due):
    assert vacuum_due(schedule, NOW.replace(day=day)) is due


def test_the_digest_is_one_line_when_all_is_well_and_specific_when_not():
    well = [Finding("demo", "backup app_db", True, "1,234 bytes"), Finding("demo", "health web health", True, "HTTP 200")]
    ok, headline, lines = digest("demo", "daily", well, [])
    assert (ok, headline, lines) == (True, "daily maintenance: all 2 checks passed", ["backup app_db: 1,234 bytes"])

    sick = [*well, Finding("demo", "backup age app_db", False, "newest intact backup is 30.0 h old (RPO 26 h)")]
    ok, headline, lines = digest("demo", "daily", sick, ["reminder (quarterly, a person): architecture review"])
    assert not ok
    assert headline == "daily maintenance: 1 of 3 checks FAILED"
    assert lines == [
        "FAILED backup age app_db: newest intact backup is 30.0 h old (RPO 26 h)",
        "reminder (quarterly, a person): architecture review",
    ]


def test_a_run_names_its_artefacts_after_itself_the_same_in_every_attempt():
    scheduled = MaintenanceRun(run_id="scheduled__2026-11-25T02:00:00+00:00", at=NOW)
    assert scheduled.tag == MaintenanceRun(run_id=scheduled.run_id, at=NOW).tag  # a retry finds its first attempt's name
    assert scheduled.tag.startswith("20261125T020000Z-")
    # Two manual runs at the same time (no logical date: run_after to the second) are still two names.
    assert MaintenanceRun(run_id="manual__a", at=NOW).tag != MaintenanceRun(run_id="manual__b", at=NOW).tag
    # The time is written in UTC whatever the zone it comes in.
    assert MaintenanceRun(run_id="r", at=NOW.astimezone(timezone(timedelta(hours=3)))).tag == MaintenanceRun(run_id="r", at=NOW).tag
