"""What the scheduled maintenance keeps: scheduled backups, restore drills and each run's findings.

Kept in the ledger database beside the release record (`backups_of` reads both: a release's backup counts
as a backup of its target), but apart from it in the code: the release phases never touch this.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from airflow_rollout.ledger import OnLedgerDatabase


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

    def scheduled_backup(self, run_id: str, system: str, target: str) -> dict[str, Any] | None:
        """The backup of a target that `run_id` took and recorded (an earlier attempt of a retried task), if any."""
        rows = self._execute(
            "SELECT location, sha256, size_bytes, taken_at FROM rollout_scheduled_backup"
            " WHERE run_id = %s AND system = %s AND target = %s AND deleted_at IS NULL",
            (run_id, system, target),
        )
        return dict(zip(("location", "sha256", "size_bytes", "taken_at"), rows[0], strict=True)) if rows else None

    def backups_of(self, system: str, target: str) -> list[dict[str, Any]]:
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
        keys = ("location", "sha256", "fingerprint", "taken_at", "release_id")
        return [dict(zip(keys, row, strict=True)) for row in rows]

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

    def drills(self, system: str) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT target, location, restore_seconds, rpo_seconds, fingerprint_equal, error, drilled_at, run_id FROM rollout_drill"
            " WHERE system = %s ORDER BY drill_id",
            (system,),
        )
        keys = ("target", "location", "restore_seconds", "rpo_seconds", "fingerprint_equal", "error", "drilled_at", "run_id")
        return [dict(zip(keys, row, strict=True)) for row in rows]

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

    def findings(self, run_id: str, systems: list[str]) -> list[dict[str, Any]]:
        rows = self._execute(
            "SELECT system, check_name, ok, detail FROM rollout_maintenance_finding WHERE run_id = %s AND system = ANY(%s)"
            " ORDER BY found_at",
            (run_id, systems),
        )
        return [{"system": s, "check": c, "ok": ok, "detail": d} for s, c, ok, d in rows]
