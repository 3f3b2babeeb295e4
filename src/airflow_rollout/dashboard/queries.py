"""Read-only queries of the release ledger, for the dashboard's pages.

Each page reads a ledger in one read-only, repeatable-read transaction (the database refuses any write, and every
statement sees the same snapshot) through the Postgres provider's hook, with a fixed number of statements whatever
the number of releases or systems: the Systems page asks about all the systems sharing a ledger at once
(`system = ANY(...)`), never one query per system or per release.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from airflow_rollout.ledger import ChecklistItemRow, SignoffRow

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

Row = dict[str, Any]


class LedgerReader:
    """One read-only transaction on a ledger; counts the statements it runs (the pages keep that number constant)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.statements = 0

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[Row]:
        from psycopg.rows import dict_row

        self.statements += 1
        with self._conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query, params)  # type: ignore[arg-type]  # the queries are literals of this module
            return cursor.fetchall()

    def has_ledger(self) -> bool:
        """Whether the ledger's tables exist: a ledger no release has used yet has none, and the pages say so."""
        return bool(self.rows("SELECT to_regclass('rollout_release') IS NOT NULL AS present")[0]["present"])

    # --- the Systems page: every system of this ledger at once ------------------------------------------

    def running(self, systems: list[str]) -> list[Row]:
        """Per system, the last promoted release: the version running now."""
        return self.rows(
            "SELECT DISTINCT ON (system) system, release_id, version, finished_at FROM rollout_release"
            " WHERE system = ANY(%s) AND status = 'promoted' ORDER BY system, finished_at DESC NULLS LAST, created_at DESC",
            (systems,),
        )

    def last_releases(self, systems: list[str]) -> list[Row]:
        """Per system, its newest release and how many it has had."""
        return self.rows(
            "SELECT DISTINCT ON (system) system, release_id, version, previous_version, status, decision, triggered_by,"
            " created_at, finished_at, count(*) OVER (PARTITION BY system) AS releases FROM rollout_release"
            " WHERE system = ANY(%s) ORDER BY system, created_at DESC",
            (systems,),
        )

    def locks(self, systems: list[str]) -> list[Row]:
        return self.rows(
            "SELECT l.system, l.release_id, l.run_id, l.acquired_at, r.version,"
            " extract(epoch FROM now() - l.acquired_at)::float AS held_seconds"
            " FROM rollout_lock l LEFT JOIN rollout_release r USING (release_id) WHERE l.system = ANY(%s)",
            (systems,),
        )

    def newest_backups(self, systems: list[str]) -> list[Row]:
        """Per system and data target, the newest backup on record (scheduled and not deleted, or a release's).

        Both kinds are recorded only after the dump was read back (`pg_restore --list`) and its sha256 taken: the
        ledger holds verified backups only.
        """
        return self.rows(
            "SELECT system, target, max(taken_at) AS taken_at, extract(epoch FROM now() - max(taken_at))::float AS age_seconds"
            " FROM (SELECT system, target, taken_at FROM rollout_scheduled_backup WHERE deleted_at IS NULL AND system = ANY(%s)"
            " UNION ALL SELECT r.system, b.target, b.taken_at FROM rollout_backup b JOIN rollout_release r USING (release_id)"
            " WHERE r.system = ANY(%s)) AS backups GROUP BY system, target",
            (systems, systems),
        )

    def last_drills(self, systems: list[str]) -> list[Row]:
        """Per system and data target, the last restore drill."""
        return self.rows(
            "SELECT DISTINCT ON (system, target) system, target, restore_seconds, rpo_seconds, fingerprint_equal, error, drilled_at"
            " FROM rollout_drill WHERE system = ANY(%s) ORDER BY system, target, drilled_at DESC, drill_id DESC",
            (systems,),
        )

    # --- one system's releases -------------------------------------------------------------------------

    def releases(self, system: str, limit: int) -> list[Row]:
        return self.rows(
            "SELECT release_id, version, previous_version, status, decision, decided_by, triggered_by, outcome_reason,"
            " created_at, finished_at FROM rollout_release WHERE system = %s ORDER BY created_at DESC LIMIT %s",
            (system, limit),
        )

    # --- one release ----------------------------------------------------------------------------------

    def release(self, release_id: str) -> Row | None:
        found = self.rows(
            "SELECT release_id, system, version, previous_version, triggered_by, status, decision, decision_reasons,"
            " decision_numbers, decided_by, outcome_reason, created_at, finished_at FROM rollout_release WHERE release_id = %s",
            (release_id,),
        )
        return found[0] if found else None

    def attempts(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT phase, step, row_number() OVER (PARTITION BY phase, step ORDER BY started_at, id) AS attempt, run_id,"
            " try_number, status, started_at, finished_at, extract(epoch FROM finished_at - started_at)::float AS seconds,"
            " detail, error, hostname FROM rollout_step_attempt WHERE release_id = %s ORDER BY started_at, id",
            (release_id,),
        )

    def backups(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT target, location, format, sha256, size_bytes, toc_entries, taken_at FROM rollout_backup"
            " WHERE release_id = %s ORDER BY target",
            (release_id,),
        )

    def fingerprints(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT target, stage, fingerprint, taken_at FROM rollout_fingerprint WHERE release_id = %s ORDER BY target, taken_at",
            (release_id,),
        )

    def migrations(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT target, migration_id, checksum, applied_at FROM rollout_migration WHERE release_id = %s"
            " ORDER BY applied_at, migration_id",
            (release_id,),
        )

    def app_states(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT app, previous_version, deployed_version, downtime_seconds, switched_at FROM rollout_app_state"
            " WHERE release_id = %s ORDER BY app",
            (release_id,),
        )

    def measurements(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT check_name, kind, critical, passed, detail, metrics, measured_at FROM rollout_measurement"
            " WHERE release_id = %s ORDER BY measured_at, check_name",
            (release_id,),
        )

    def checklist_items(self, release_id: str) -> list[ChecklistItemRow]:
        rows = self.rows(
            "SELECT item_id, phase, passed, detail, numbers, checked_at FROM rollout_checklist_item WHERE release_id = %s",
            (release_id,),
        )
        return [ChecklistItemRow(**row) for row in rows]

    def signoffs(self, release_id: str) -> list[SignoffRow]:
        rows = self.rows(
            "SELECT role, approved, responder, answered_at FROM rollout_signoff WHERE release_id = %s ORDER BY answered_at, role",
            (release_id,),
        )
        return [SignoffRow(**row) for row in rows]

    def notifications(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT event, delivered, error, sent_at, idempotency_key FROM rollout_notification WHERE release_id = %s ORDER BY id",
            (release_id,),
        )

    def unlocks(self, release_id: str) -> list[Row]:
        return self.rows(
            "SELECT unlocked_by, reason, unlocked_at FROM rollout_unlock WHERE release_id = %s ORDER BY id",
            (release_id,),
        )

    # --- trends ---------------------------------------------------------------------------------------

    def latency_per_release(self, system: str, limit: int) -> list[Row]:
        """p50, p95 and error rate of each latency check of the last `limit` finished releases, oldest first."""
        return self.rows(
            "SELECT * FROM (SELECT r.release_id, r.version, r.status, r.finished_at, m.check_name,"
            " (m.metrics->>'p50_ms')::float AS p50_ms, (m.metrics->>'p95_ms')::float AS p95_ms,"
            " (m.metrics->>'error_rate')::float AS error_rate,"
            " dense_rank() OVER (ORDER BY r.finished_at DESC, r.release_id DESC) AS recency"
            " FROM rollout_measurement m JOIN rollout_release r USING (release_id)"
            " WHERE r.system = %s AND m.kind = 'latency' AND r.finished_at IS NOT NULL) AS latest"
            " WHERE recency <= %s ORDER BY finished_at, release_id, check_name",
            (system, limit),
        )

    def drills_per_week(self, system: str, weeks: int) -> list[Row]:
        """Per week with drills: the longest restore (RTO) and the oldest backup restored (RPO) of the last `weeks` weeks."""
        return self.rows(
            "SELECT date_trunc('week', drilled_at) AS week, max(restore_seconds) AS rto_seconds, max(rpo_seconds) AS rpo_seconds,"
            " count(*) AS drills, bool_and(fingerprint_equal AND error IS NULL) AS all_good FROM rollout_drill"
            " WHERE system = %s AND drilled_at > now() - make_interval(weeks => %s) GROUP BY 1 ORDER BY 1",
            (system, weeks),
        )


@contextmanager
def read_ledger(conn_id: str) -> Iterator[LedgerReader]:
    """A read-only, repeatable-read transaction on the ledger behind `conn_id`, rolled back and closed afterwards."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from psycopg import IsolationLevel

    conn = cast("psycopg.Connection[Any]", PostgresHook(postgres_conn_id=conn_id).get_conn())
    try:
        conn.read_only = True
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        yield LedgerReader(conn)
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()
