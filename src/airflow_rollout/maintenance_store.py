"""What the scheduled maintenance keeps: scheduled backups, restore drills and each run's findings.

Kept in the ledger database beside the release record (`backups_of` reads both: a release's backup counts
as a backup of its target), but apart from it in the code: the release phases never touch this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from airflow_rollout.ledger import OnLedgerDatabase

if TYPE_CHECKING:
    from datetime import datetime

# The rows the read methods of `MaintenanceStore` return, one type per shape; fields are the SELECT's columns, in order.


@dataclass(frozen=True, slots=True)
class ScheduledBackupRow:
    """The backup of a target one maintenance run took (`MaintenanceStore.scheduled_backup`)."""

    location: str
    sha256: str
    size_bytes: int
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class BackupOnRecord:
    """A backup of a target, scheduled or taken by a release (`MaintenanceStore.backups_of`)."""

    location: str
    sha256: str
    fingerprint: dict[str, Any]  # the target's fingerprint when the backup was taken
    taken_at: datetime
    release_id: str | None  # the release that took it; None for a scheduled backup


@dataclass(frozen=True, slots=True)
class DrillRow:
    """One restore drill of a target (`MaintenanceStore.drills`)."""

    target: str
    location: str
    restore_seconds: float | None
    rpo_seconds: float | None
    fingerprint_equal: bool
    error: str | None
    drilled_at: datetime
    run_id: str | None  # None for drills recorded before drills had a run

    @property
    def succeeded(self) -> bool:
        """The drill restored its backup and the data read back equal to the fingerprint taken with the backup."""
        return self.fingerprint_equal and self.error is None


@dataclass(frozen=True, slots=True)
class FindingRow:
    """What one check of a maintenance run found for one system (`MaintenanceStore.findings`)."""

    system: str
    check: str  # the check's name (column check_name)
    ok: bool
    detail: str


class MaintenanceStore(OnLedgerDatabase):
    def record_scheduled_backup(self, system: str, target: str, record: dict[str, Any], *, run_id: str) -> None:
        """The backup `run_id` took of a target; a retry of the run that took it again overwrites the row."""
        self._execute(
            "INSERT INTO rollout_scheduled_backup (run_id, system, target, location, format, sha256, size_bytes, fingerprint)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, system, target) DO UPDATE SET"
            " location = EXCLUDED.location, format = EXCLUDED.format, sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes,"
            " fingerprint = EXCLUDED.fingerprint, taken_at = now(), deleted_at = NULL",
            (
                run_id,
                system,
                target,
                record["location"],
                record["format"],
                record["sha256"],
                record["size_bytes"],
                Jsonb(record["fingerprint"]),
            ),
        )

    def scheduled_backup(self, run_id: str, system: str, target: str) -> ScheduledBackupRow | None:
        """The backup of a target that `run_id` took and recorded (an earlier attempt of a retried task), if any."""
        rows = self._execute(
            "SELECT location, sha256, size_bytes, taken_at FROM rollout_scheduled_backup"
            " WHERE run_id = %s AND system = %s AND target = %s AND deleted_at IS NULL",
            (run_id, system, target),
        )
        if not rows:
            return None
        [(location, sha256, size_bytes, taken_at)] = rows
        return ScheduledBackupRow(location=location, sha256=sha256, size_bytes=size_bytes, taken_at=taken_at)

    def backups_of(self, system: str, target: str) -> list[BackupOnRecord]:
        """Every backup on record for a target, scheduled or taken by a release, newest first."""
        rows = self._execute(
            "SELECT location, sha256, fingerprint, taken_at, NULL::text FROM rollout_scheduled_backup"
            " WHERE system = %s AND target = %s AND deleted_at IS NULL"
            " UNION ALL"
            " SELECT b.location, b.sha256, f.fingerprint, b.taken_at, b.release_id FROM rollout_backup b"
            " JOIN rollout_release r USING (release_id)"
            " JOIN rollout_fingerprint f ON f.release_id = b.release_id AND f.target = b.target AND f.stage = 'before'"
            " WHERE r.system = %s AND b.target = %s"
            " ORDER BY taken_at DESC",
            (system, target, system, target),
        )
        return [
            BackupOnRecord(location=location, sha256=sha256, fingerprint=fingerprint, taken_at=taken_at, release_id=release_id)
            for location, sha256, fingerprint, taken_at, release_id in rows
        ]

    def mark_deleted(self, location: str) -> None:
        self._execute("UPDATE rollout_scheduled_backup SET deleted_at = now() WHERE location = %s", (location,))

    def record_drill(self, system: str, target: str, result: dict[str, Any], *, run_id: str) -> None:
        """The restore drill `run_id` ran on a target; a retried drill overwrites its run's row."""
        self._execute(
            "INSERT INTO rollout_drill (run_id, system, target, location, backup_taken_at, restore_seconds, rpo_seconds,"
            " fingerprint_equal, error) VALUES (%(run_id)s, %(system)s, %(target)s, %(location)s, %(backup_taken_at)s,"
            " %(restore_seconds)s, %(rpo_seconds)s, %(fingerprint_equal)s, %(error)s) ON CONFLICT (run_id, system, target)"
            " DO UPDATE SET location = EXCLUDED.location, backup_taken_at = EXCLUDED.backup_taken_at,"
            " restore_seconds = EXCLUDED.restore_seconds, rpo_seconds = EXCLUDED.rpo_seconds,"
            " fingerprint_equal = EXCLUDED.fingerprint_equal, error = EXCLUDED.error, drilled_at = now()",
            {"run_id": run_id, "system": system, "target": target, **result},
        )

    def drills(self, system: str) -> list[DrillRow]:
        rows = self._execute(
            "SELECT target, location, restore_seconds, rpo_seconds, fingerprint_equal, error, drilled_at, run_id FROM rollout_drill"
            " WHERE system = %s ORDER BY drill_id",
            (system,),
        )
        return [
            DrillRow(
                target=target,
                location=location,
                restore_seconds=restore_seconds,
                rpo_seconds=rpo_seconds,
                fingerprint_equal=fingerprint_equal,
                error=error,
                drilled_at=drilled_at,
                run_id=run_id,
            )
            for target, location, restore_seconds, rpo_seconds, fingerprint_equal, error, drilled_at, run_id in rows
        ]

    def record_findings(self, run_id: str, system: str, task_id: str, findings: list[dict[str, Any]]) -> None:
        """What one task found for one system in a run, in place of what its earlier attempts found (one transaction)."""

        def replace() -> None:
            with self._connect() as conn, conn.transaction():
                conn.execute(
                    "DELETE FROM rollout_maintenance_finding WHERE run_id = %s AND system = %s AND task_id = %s", (run_id, system, task_id)
                )
                for finding in findings:
                    conn.execute(
                        "INSERT INTO rollout_maintenance_finding (run_id, system, check_name, ok, detail, task_id)"
                        " VALUES (%(run_id)s, %(system)s, %(check)s, %(ok)s, %(detail)s, %(task_id)s)"
                        " ON CONFLICT (run_id, system, check_name)"
                        " DO UPDATE SET ok = EXCLUDED.ok, detail = EXCLUDED.detail, task_id = EXCLUDED.task_id, found_at = now()",
                        {"run_id": run_id, "task_id": task_id, **finding},
                    )

        self._through_outages(replace)

    def findings(self, run_id: str, systems: list[str]) -> list[FindingRow]:
        rows = self._execute(
            "SELECT system, check_name, ok, detail FROM rollout_maintenance_finding WHERE run_id = %s AND system = ANY(%s)"
            " ORDER BY found_at",
            (run_id, systems),
        )
        return [FindingRow(system=system, check=check_name, ok=ok, detail=detail) for system, check_name, ok, detail in rows]
