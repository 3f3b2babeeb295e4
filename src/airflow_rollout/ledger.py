"""The release ledger: the record of every release, and the way phases hand each other state.

Kept in a PostgreSQL database the profile names (`ledger_conn_id`). Everything is keyed by release id
and written with upserts, so a retried task overwrites its own row instead of adding a second one; this is
what lets any phase be retried or re-run alone. Together the tables are the seeds' "Deployment Log" and
"Performance Baselines", kept by the machine.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg.errors import UndefinedTable
from psycopg.types.json import Jsonb

from airflow_rollout.targets.postgres import autocommit_connection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
    from datetime import datetime

    import psycopg

log = logging.getLogger(__name__)
T = TypeVar("T")

# The ledger's schema, one entry per version, applied in order once per ledger database and recorded in
# rollout_ledger_schema. A change is a new entry at the end, never an edit of an applied one. Version 1 is the
# schema as it stood when versioning began; every statement in it is IF NOT EXISTS, so a ledger created by an
# earlier build of this package (with no version table) takes it and is brought up to date without losing a row.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS rollout_release (
    release_id text PRIMARY KEY,
    system text NOT NULL,
    version text NOT NULL,
    previous_version text,
    triggered_by text,
    status text NOT NULL,
    decision text,
    decision_reasons jsonb,
    decision_numbers jsonb,
    decided_by text,
    outcome_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS rollout_release_system ON rollout_release (system, created_at);
-- Every attempt of every step is its own row: a retry adds one, it never overwrites the failure before it.
-- An attempt is one try of one task in one DAG run; writing it twice (a ledger outage retried) changes nothing.
CREATE TABLE IF NOT EXISTS rollout_step_attempt (
    id bigserial PRIMARY KEY,
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    phase text NOT NULL,
    step text NOT NULL,
    run_id text NOT NULL,
    try_number integer NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    detail jsonb,
    error text,
    UNIQUE (release_id, phase, step, run_id, try_number)
);
CREATE TABLE IF NOT EXISTS rollout_backup (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    target text NOT NULL,
    location text NOT NULL,
    format text NOT NULL,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    toc_entries integer NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, target)
);
CREATE TABLE IF NOT EXISTS rollout_fingerprint (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    target text NOT NULL,
    stage text NOT NULL,
    fingerprint jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, target, stage)
);
CREATE TABLE IF NOT EXISTS rollout_migration (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    target text NOT NULL,
    migration_id text NOT NULL,
    checksum text,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, target, migration_id)
);
CREATE TABLE IF NOT EXISTS rollout_app_state (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    app text NOT NULL,
    previous_version text,
    deployed_version text,
    downtime_seconds double precision,
    switched_at timestamptz,
    PRIMARY KEY (release_id, app)
);
-- What a rollback puts back, recorded before the app was touched (a Kubernetes Deployment's pod template).
ALTER TABLE rollout_app_state ADD COLUMN IF NOT EXISTS snapshot jsonb;
-- What a quiesce stopped (the version, a Deployment's replica count) and when: how to bring it back, and
-- where the downtime of a stop_first deploy starts.
ALTER TABLE rollout_app_state ADD COLUMN IF NOT EXISTS quiesced jsonb;
CREATE TABLE IF NOT EXISTS rollout_measurement (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    check_name text NOT NULL,
    kind text NOT NULL,
    critical boolean NOT NULL,
    passed boolean NOT NULL,
    detail text NOT NULL,
    metrics jsonb NOT NULL,
    measured_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, check_name)
);
CREATE TABLE IF NOT EXISTS rollout_notification (
    id bigserial PRIMARY KEY,
    notification_id uuid NOT NULL UNIQUE,
    release_id text,
    event text NOT NULL,
    delivered boolean NOT NULL,
    error text,
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rollout_scheduled_backup (
    backup_id bigserial PRIMARY KEY,
    system text NOT NULL,
    target text NOT NULL,
    location text NOT NULL UNIQUE,
    format text NOT NULL,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    fingerprint jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE TABLE IF NOT EXISTS rollout_drill (
    drill_id bigserial PRIMARY KEY,
    system text NOT NULL,
    target text NOT NULL,
    location text NOT NULL,
    backup_taken_at timestamptz,
    restore_seconds double precision,
    rpo_seconds double precision,
    fingerprint_equal boolean NOT NULL,
    error text,
    drilled_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rollout_maintenance_finding (
    run_id text NOT NULL,
    system text NOT NULL,
    check_name text NOT NULL,
    ok boolean NOT NULL,
    detail text NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, system, check_name)
);
-- The maintenance run that took a scheduled backup or ran a drill: its retry finds and overwrites that row instead
-- of adding a second one. Rows of ledgers older than this have no run (NULL), and NULLs never collide.
ALTER TABLE rollout_scheduled_backup ADD COLUMN IF NOT EXISTS run_id text;
CREATE UNIQUE INDEX IF NOT EXISTS rollout_scheduled_backup_run ON rollout_scheduled_backup (run_id, system, target);
ALTER TABLE rollout_drill ADD COLUMN IF NOT EXISTS run_id text;
CREATE UNIQUE INDEX IF NOT EXISTS rollout_drill_run ON rollout_drill (run_id, system, target);
-- The task that found it: a retry replaces what its earlier attempts found, so no stale failure outlives it.
ALTER TABLE rollout_maintenance_finding ADD COLUMN IF NOT EXISTS task_id text;
CREATE TABLE IF NOT EXISTS rollout_checklist_item (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    item_id text NOT NULL,
    phase text NOT NULL,
    passed boolean NOT NULL,
    detail text NOT NULL,
    numbers jsonb NOT NULL DEFAULT '{}',
    checked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, item_id)
);
CREATE TABLE IF NOT EXISTS rollout_signoff (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    role text NOT NULL,
    approved boolean NOT NULL,
    responder text,
    answered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, role)
);
CREATE TABLE IF NOT EXISTS rollout_lock (
    system text PRIMARY KEY,
    release_id text NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
-- The DAG run working under the lock; NULL while the release holds the system with no run active (a failed
-- rollback, or a release driven phase by phase between two phases).
ALTER TABLE rollout_lock ADD COLUMN IF NOT EXISTS run_id text;
CREATE TABLE IF NOT EXISTS rollout_unlock (
    id bigserial PRIMARY KEY,
    system text NOT NULL,
    release_id text NOT NULL,
    unlocked_by text NOT NULL,
    reason text NOT NULL,
    unlocked_at timestamptz NOT NULL DEFAULT now()
);
-- A message is sent once per (release, event, step): a retried task finds it delivered and sends nothing.
ALTER TABLE rollout_notification ADD COLUMN IF NOT EXISTS idempotency_key text;
CREATE UNIQUE INDEX IF NOT EXISTS rollout_notification_key ON rollout_notification (idempotency_key);
"""
# A data target's fast snapshot of the data before a release (a PostgreSQL database copy on the same server): which
# release it belongs to, what it is called there, and what became of it. Kept copies of promoted releases are found
# here, never by their name alone.
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS rollout_snapshot (
    release_id text NOT NULL REFERENCES rollout_release ON DELETE CASCADE,
    target text NOT NULL,
    name text NOT NULL,
    state text NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (release_id, target)
);
"""
# On a distributed Airflow (CeleryExecutor) the attempts of one release run on several workers, and a retry may run
# on another worker than the attempt it follows: each attempt keeps the host that ran it.
SCHEMA_V3 = """
ALTER TABLE rollout_step_attempt ADD COLUMN IF NOT EXISTS hostname text;
"""
# A deploy's wait for its rollout is handed to the triggerer and the step runs again when it ends: the time the switch
# began is recorded before the wait, so the run after it measures the downtime from there (epoch seconds, as a
# quiesce's `stopped_at`).
SCHEMA_V4 = """
ALTER TABLE rollout_app_state ADD COLUMN IF NOT EXISTS switch_began double precision;
"""
SCHEMA_VERSIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4)


class ReleaseStatus(StrEnum):
    RUNNING = "running"
    AWAITING_DECISION = "awaiting_decision"
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"  # stopped before anything changed
    FAILED = "failed"  # a rollback that could not finish: a human must act


class FingerprintStage(StrEnum):
    BEFORE = "before"  # taken with the backup
    AFTER_MIGRATE = "after_migrate"
    AFTER_VERIFY = "after_verify"
    AFTER_RESTORE = "after_restore"


class SnapshotState(StrEnum):
    TAKEN = "taken"  # before the migration; the release not yet promoted nor rolled back
    KEPT = "kept"  # the release promoted, its copy among the newest `snapshot_keep`
    SWITCHED_IN = "switched_in"  # a rollback put it in place of the live data: it is the live data now
    DROPPED = "dropped"  # promoted and not kept, or pushed out by newer kept copies


class ReleaseNotFoundError(LookupError):
    """No release with that id: a phase or rollback run alone was given an id the ledger does not know."""


class LedgerConflictError(RuntimeError):
    pass


def this_host() -> str:
    """The host this process runs on, as Airflow names it: its `[core] hostname_callable`, the task instance's Host."""
    from airflow.sdk.api.client import get_hostname

    return str(get_hostname())  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Attempt:
    """One try of one task in one DAG run, on the host running it: a step's attempt in the ledger."""

    run_id: str
    try_number: int
    hostname: str = field(default_factory=this_host)


@dataclass(frozen=True)
class LockHolder:
    release_id: str
    run_id: str | None  # None: the release holds the system with no DAG run working under the lock
    acquired_at: datetime


@dataclass(frozen=True)
class Release:
    release_id: str
    system: str
    version: str
    previous_version: str | None
    triggered_by: str | None
    status: str
    decision: str | None
    decision_reasons: list[str] | None
    decided_by: str | None
    outcome_reason: str | None
    created_at: datetime
    finished_at: datetime | None


# The rows the read methods of `Ledger` return, one type per shape: a renamed column breaks at type-check time.
# Their fields are the SELECT's columns, in its order (dataclasses.asdict gives the record's JSON its keys).


@dataclass(frozen=True, slots=True)
class StepAttemptRow:
    """One attempt of one step (`Ledger.step_attempts`)."""

    phase: str
    step: str
    attempt: int  # which attempt of this step it is, counting from 1 across every run of the release
    run_id: str
    try_number: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    detail: Any
    error: str | None
    hostname: str | None  # None: recorded before the ledger kept hosts (schema version 2)


@dataclass(frozen=True, slots=True)
class StepRow:
    """The latest attempt of one step, with how many there were (`Ledger.steps`)."""

    phase: str
    step: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    detail: Any
    error: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class BackupRow:
    """The backup a release took of one data target (`Ledger.backup`)."""

    location: str
    format: str
    sha256: str
    size_bytes: int
    toc_entries: int
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """A release's snapshot of one data target (`Ledger.snapshot`, `Ledger.kept_snapshots`)."""

    release_id: str
    target: str
    name: str  # what the target calls it (a database's name on its server)
    state: str  # a SnapshotState
    taken_at: datetime
    changed_at: datetime

    def as_entry(self) -> dict[str, Any]:
        """The row as the release record shows it under the target's name: every field but `release_id` and `target`."""
        return {key: value for key, value in asdict(self).items() if key not in ("release_id", "target")}


@dataclass(frozen=True, slots=True)
class AppStateRow:
    """What a release recorded of one app it touched (`Ledger.app_states`)."""

    app: str
    previous_version: str | None
    deployed_version: str | None
    downtime_seconds: float | None
    snapshot: dict[str, Any] | None  # what a rollback puts back, recorded before the app was touched
    quiesced: dict[str, Any] | None  # what a quiesce stopped, and when
    switch_began: float | None  # when this release began switching the app to its version (epoch seconds)

    def as_entry(self) -> dict[str, Any]:
        """The row as the release record shows it under the app's name: every field but `app`."""
        return {key: value for key, value in asdict(self).items() if key != "app"}


@dataclass(frozen=True, slots=True)
class MeasurementRow:
    """One check's result in a release (`Ledger.measurements`)."""

    name: str  # the check's name (column check_name)
    kind: str
    critical: bool
    passed: bool
    detail: str
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BaselineRow:
    """The latency and error rate one finished release measured (`Ledger.release_baselines`)."""

    version: str
    status: str
    finished_at: datetime
    p50_ms: float
    p95_ms: float
    error_rate: float


@dataclass(frozen=True, slots=True)
class NotificationRow:
    """One message about a release, and whether it reached Slack (`Ledger.notifications`)."""

    event: str
    delivered: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class UnlockRow:
    """An operator freeing a system's lock (`Ledger.unlocks`)."""

    release_id: str
    unlocked_by: str
    reason: str
    unlocked_at: datetime


@dataclass(frozen=True, slots=True)
class ChecklistItemRow:
    """The evidence for one checklist item in a release (`Ledger.checklist_items`)."""

    item_id: str
    phase: str
    passed: bool
    detail: str
    numbers: dict[str, Any]
    checked_at: datetime

    def as_entry(self) -> dict[str, Any]:
        """The row as the release record shows it under the item's id: every field but `item_id`."""
        return {key: value for key, value in asdict(self).items() if key != "item_id"}


@dataclass(frozen=True, slots=True)
class SignoffRow:
    """One role's answer to a release's sign-off (`Ledger.signoffs`)."""

    role: str
    approved: bool
    responder: str | None  # None: nobody answered in time
    answered_at: datetime

    def as_entry(self) -> dict[str, Any]:
        """The row as the release record shows it under the role: every field but `role`."""
        return {key: value for key, value in asdict(self).items() if key != "role"}


class LedgerDatabase:
    """The ledger's PostgreSQL database, as one task uses it: one connection, opened on first use and kept for
    every statement after it (a task's dozen statements no longer pay a dozen connection set-ups), reopened
    after an outage, closed by `close()` when the task ends."""

    def __init__(self, *, conn_id: str, outage_tolerance_seconds: float = 60.0) -> None:
        self.conn_id = conn_id
        self.outage_tolerance_seconds = outage_tolerance_seconds
        self._conn: psycopg.Connection[Any] | None = None

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[Any]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            self._conn = autocommit_connection(PostgresHook(postgres_conn_id=self.conn_id))
        yield self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def execute(self, query: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            with self.connect() as conn:
                cursor = conn.execute(query, params)  # type: ignore[arg-type]
                return cursor.fetchall() if cursor.description else []

        return self.through_outages(run)

    def through_outages(self, action: Callable[[], T]) -> T:
        """Run `action`, retrying while the ledger database is unreachable (a restart, a failover).

        Every write is an upsert or carries its own id, so running one again records nothing twice.
        """
        from psycopg import OperationalError

        deadline = time.monotonic() + self.outage_tolerance_seconds
        pause = 0.5
        while True:
            try:
                return action()
            except OperationalError as exc:
                self.close()  # the next try connects again
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("ledger database unreachable (%s); retrying in %.1f s", str(exc).splitlines()[0], pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def schema_version(self) -> int:
        """The newest schema version applied to this ledger; 0 before versioning (or before anything).

        One statement, not a look for the table first: every task asks, and the table is missing only before the first
        release (autocommit: the failed statement leaves no transaction behind)."""
        try:
            return int(self.execute("SELECT coalesce(max(version), 0) FROM rollout_ledger_schema")[0][0])
        except UndefinedTable:
            return 0

    def ensure_schema(self) -> None:
        """Bring the ledger's schema to this build's version: one query when it is there already (every task
        asks), the pending versions under an advisory lock when not (two first releases at once must not race)."""
        if self.schema_version() >= len(SCHEMA_VERSIONS):
            return

        def migrate() -> None:
            with self.connect() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('rollout_ledger_schema'))")
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS rollout_ledger_schema (version integer PRIMARY KEY, applied_at timestamptz DEFAULT now())"
                )
                row = conn.execute("SELECT coalesce(max(version), 0) FROM rollout_ledger_schema").fetchone()
                applied = int(row[0]) if row else 0
                for version, statements in enumerate(SCHEMA_VERSIONS[applied:], start=applied + 1):
                    log.info("ledger %s: applying schema version %d", self.conn_id, version)
                    conn.execute(statements)  # type: ignore[call-overload]
                    conn.execute("INSERT INTO rollout_ledger_schema (version) VALUES (%s)", (version,))

        self.through_outages(migrate)


class OnLedgerDatabase:
    """A view of the ledger database (the release record, the maintenance store): sharing a task's connection."""

    def __init__(self, *, conn_id: str, outage_tolerance_seconds: float = 60.0, database: LedgerDatabase | None = None) -> None:
        self.database = database or LedgerDatabase(conn_id=conn_id, outage_tolerance_seconds=outage_tolerance_seconds)
        self.conn_id = conn_id

    def _execute(self, query: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        return self.database.execute(query, params)

    def _connect(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self.database.connect()

    def _through_outages(self, action: Callable[[], T]) -> T:
        return self.database.through_outages(action)

    def ensure_schema(self) -> None:
        self.database.ensure_schema()

    def close(self) -> None:
        self.database.close()


class Ledger(OnLedgerDatabase):
    """The record of every release, and the way phases hand each other state."""

    # --- releases -------------------------------------------------------------------------------

    def open_release(self, *, release_id: str, system: str, version: str, triggered_by: str | None) -> Release:
        """Create the release row, or return the existing one when a task is retried."""
        self._execute(
            "INSERT INTO rollout_release (release_id, system, version, triggered_by, status)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (release_id) DO NOTHING",
            (release_id, system, version, triggered_by, ReleaseStatus.RUNNING.value),
        )
        release = self.release(release_id)
        if (release.system, release.version) != (system, version):
            raise LedgerConflictError(f"release {release_id} is a release of {release.system} {release.version}, not {system} {version}")
        return release

    def release(self, release_id: str) -> Release:
        rows = self._execute(
            "SELECT release_id, system, version, previous_version, triggered_by, status, decision, decision_reasons,"
            " decided_by, outcome_reason, created_at, finished_at FROM rollout_release WHERE release_id = %s",
            (release_id,),
        )
        if not rows:
            raise ReleaseNotFoundError(f"no release {release_id!r} in the ledger")
        return Release(*rows[0])

    def set_previous_version(self, release_id: str, previous_version: str | None) -> None:
        self._execute("UPDATE rollout_release SET previous_version = %s WHERE release_id = %s", (previous_version, release_id))

    def set_status(self, release_id: str, status: ReleaseStatus, *, reason: str | None = None, final: bool = False) -> None:
        self._execute(
            "UPDATE rollout_release SET status = %s, outcome_reason = coalesce(%s, outcome_reason),"
            " finished_at = CASE WHEN %s THEN now() ELSE finished_at END WHERE release_id = %s",
            (status.value, reason, final, release_id),
        )

    def record_decision(self, release_id: str, outcome: str, reasons: list[str], numbers: dict[str, Any] | None, decided_by: str) -> None:
        """The decision and why; `numbers` None keeps the ones measured before (a human deciding measured nothing new)."""
        self._execute(
            "UPDATE rollout_release SET decision = %s, decision_reasons = %s, decision_numbers = coalesce(%s, decision_numbers),"
            " decided_by = %s WHERE release_id = %s",
            (outcome, Jsonb(reasons), None if numbers is None else Jsonb(numbers), decided_by, release_id),
        )

    def newest_release_id(self, system: str) -> str | None:
        rows = self._execute("SELECT release_id FROM rollout_release WHERE system = %s ORDER BY created_at DESC LIMIT 1", (system,))
        return rows[0][0] if rows else None

    def last_promoted(self, system: str) -> Release | None:
        rows = self._execute(
            "SELECT release_id FROM rollout_release WHERE system = %s AND status = %s ORDER BY finished_at DESC LIMIT 1",
            (system, ReleaseStatus.PROMOTED.value),
        )
        return self.release(rows[0][0]) if rows else None

    def last_rollback(self, system: str) -> Release | None:
        """The release of the system whose rollback ended last: rolled back, or failed (a rollback that could not finish)."""
        rows = self._execute(
            "SELECT release_id FROM rollout_release WHERE system = %s AND status IN (%s, %s) ORDER BY finished_at DESC LIMIT 1",
            (system, ReleaseStatus.ROLLED_BACK.value, ReleaseStatus.FAILED.value),
        )
        return self.release(rows[0][0]) if rows else None

    def recent_releases(self, system: str, limit: int = 10) -> list[Release]:
        rows = self._execute("SELECT release_id FROM rollout_release WHERE system = %s ORDER BY created_at DESC LIMIT %s", (system, limit))
        return [self.release(row[0]) for row in rows]

    # --- steps: phase timings and failures -------------------------------------------------------

    def step_started(self, release_id: str, phase: str, step: str, attempt: Attempt) -> None:
        """A new attempt of a step, running; the same attempt written again (after an outage) stays one row."""
        self._execute(
            "INSERT INTO rollout_step_attempt (release_id, phase, step, run_id, try_number, hostname, status)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'running') ON CONFLICT (release_id, phase, step, run_id, try_number) DO NOTHING",
            (release_id, phase, step, attempt.run_id, attempt.try_number, attempt.hostname),
        )

    def step_finished(
        self,
        release_id: str,
        phase: str,
        step: str,
        attempt: Attempt,
        *,
        status: str,
        detail: Any = None,
        error: str | None = None,
    ) -> None:
        self._execute(
            "UPDATE rollout_step_attempt SET status = %s, finished_at = now(), detail = %s, error = %s"
            " WHERE release_id = %s AND phase = %s AND step = %s AND run_id = %s AND try_number = %s",
            (status, Jsonb(detail), error, release_id, phase, step, attempt.run_id, attempt.try_number),
        )

    def step_attempts(self, release_id: str) -> list[StepAttemptRow]:
        """Every attempt of every step, in the order they started: the audit trail."""
        rows = self._execute(
            "SELECT phase, step, row_number() OVER (PARTITION BY phase, step ORDER BY started_at, id), run_id, try_number, status,"
            " started_at, finished_at, detail, error, hostname FROM rollout_step_attempt WHERE release_id = %s ORDER BY started_at, id",
            (release_id,),
        )
        return [
            StepAttemptRow(
                phase=phase,
                step=step,
                attempt=attempt,
                run_id=run_id,
                try_number=try_number,
                status=status,
                started_at=started_at,
                finished_at=finished_at,
                detail=detail,
                error=error,
                hostname=hostname,
            )
            for phase, step, attempt, run_id, try_number, status, started_at, finished_at, detail, error, hostname in rows
        ]

    def steps(self, release_id: str) -> list[StepRow]:
        """The latest attempt of each step, with how many there were, in the order the steps last started."""
        latest: dict[tuple[str, str], StepAttemptRow] = {}
        for attempt in self.step_attempts(release_id):
            latest[(attempt.phase, attempt.step)] = attempt
        rows = [
            StepRow(
                phase=a.phase,
                step=a.step,
                status=a.status,
                started_at=a.started_at,
                finished_at=a.finished_at,
                detail=a.detail,
                error=a.error,
                attempts=a.attempt,
            )
            for a in latest.values()
        ]
        return sorted(rows, key=lambda row: row.started_at)

    def step_status(self, release_id: str, phase: str, step: str) -> str | None:
        rows = self._execute(
            "SELECT status FROM rollout_step_attempt WHERE release_id = %s AND phase = %s AND step = %s ORDER BY started_at DESC, id DESC"
            " LIMIT 1",
            (release_id, phase, step),
        )
        return str(rows[0][0]) if rows else None

    # --- backups and fingerprints -----------------------------------------------------------------

    def record_backup(self, release_id: str, target: str, record: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO rollout_backup (release_id, target, location, format, sha256, size_bytes, toc_entries)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (release_id, target) DO UPDATE SET"
            " location = EXCLUDED.location, format = EXCLUDED.format, sha256 = EXCLUDED.sha256,"
            " size_bytes = EXCLUDED.size_bytes, toc_entries = EXCLUDED.toc_entries, taken_at = now()",
            (release_id, target, record["location"], record["format"], record["sha256"], record["size_bytes"], record["toc_entries"]),
        )
        self.record_fingerprint(release_id, target, FingerprintStage.BEFORE, record["fingerprint"])

    def backup(self, release_id: str, target: str) -> BackupRow | None:
        rows = self._execute(
            "SELECT location, format, sha256, size_bytes, toc_entries, taken_at FROM rollout_backup WHERE release_id = %s AND target = %s",
            (release_id, target),
        )
        if not rows:
            return None
        [(location, backup_format, sha256, size_bytes, toc_entries, taken_at)] = rows
        return BackupRow(
            location=location, format=backup_format, sha256=sha256, size_bytes=size_bytes, toc_entries=toc_entries, taken_at=taken_at
        )

    def record_fingerprint(self, release_id: str, target: str, stage: FingerprintStage, fingerprint: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO rollout_fingerprint (release_id, target, stage, fingerprint) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (release_id, target, stage) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, taken_at = now()",
            (release_id, target, stage.value, Jsonb(fingerprint)),
        )

    def fingerprint(self, release_id: str, target: str, stage: FingerprintStage) -> dict[str, Any] | None:
        rows = self._execute(
            "SELECT fingerprint FROM rollout_fingerprint WHERE release_id = %s AND target = %s AND stage = %s",
            (release_id, target, stage.value),
        )
        return rows[0][0] if rows else None

    def record_migration(self, release_id: str, target: str, migration_id: str, checksum: str | None) -> None:
        self._execute(
            "INSERT INTO rollout_migration (release_id, target, migration_id, checksum) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (release_id, target, migration_id, checksum),
        )

    def migrations(self, release_id: str) -> list[str]:
        rows = self._execute(
            "SELECT target || ': ' || migration_id FROM rollout_migration WHERE release_id = %s ORDER BY applied_at", (release_id,)
        )
        return [row[0] for row in rows]

    # --- snapshots ---------------------------------------------------------------------------------

    def record_snapshot(self, release_id: str, target: str, name: str) -> None:
        """The snapshot `name` was taken for the release; recorded again by a retry, it stays as it was."""
        self._execute(
            "INSERT INTO rollout_snapshot (release_id, target, name, state) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (release_id, target, name, SnapshotState.TAKEN.value),
        )

    def set_snapshot_state(self, release_id: str, target: str, state: SnapshotState) -> None:
        self._execute(
            "UPDATE rollout_snapshot SET state = %s, changed_at = now() WHERE release_id = %s AND target = %s AND state <> %s",
            (state.value, release_id, target, state.value),
        )

    _SNAPSHOT_COLUMNS = "s.release_id, s.target, s.name, s.state, s.taken_at, s.changed_at"

    def snapshot(self, release_id: str, target: str) -> SnapshotRow | None:
        rows = self._execute(
            f"SELECT {self._SNAPSHOT_COLUMNS} FROM rollout_snapshot s WHERE s.release_id = %s AND s.target = %s",  # noqa: S608 - a constant
            (release_id, target),
        )
        return SnapshotRow(*rows[0]) if rows else None

    def snapshots(self, release_id: str) -> dict[str, SnapshotRow]:
        """The release's snapshots, by data target."""
        rows = self._execute(f"SELECT {self._SNAPSHOT_COLUMNS} FROM rollout_snapshot s WHERE s.release_id = %s", (release_id,))  # noqa: S608 - a constant
        return {row.target: row for row in (SnapshotRow(*r) for r in rows)}

    def kept_snapshots(self, system: str, target: str) -> list[SnapshotRow]:
        """The snapshots of `target` kept for promoted releases of `system`, the latest promoted first."""
        rows = self._execute(
            f"SELECT {self._SNAPSHOT_COLUMNS} FROM rollout_snapshot s JOIN rollout_release r USING (release_id)"  # noqa: S608 - a constant
            " WHERE r.system = %s AND s.target = %s AND s.state = %s ORDER BY r.finished_at DESC, s.taken_at DESC",
            (system, target, SnapshotState.KEPT.value),
        )
        return [SnapshotRow(*row) for row in rows]

    # --- apps and measurements -------------------------------------------------------------------

    def record_app_state(
        self,
        release_id: str,
        app: str,
        *,
        previous_version: str | None,
        deployed_version: str | None = None,
        downtime_seconds: float | None = None,
        snapshot: dict[str, Any] | None = None,
    ) -> None:
        self._execute(
            "INSERT INTO rollout_app_state (release_id, app, previous_version, deployed_version, downtime_seconds, switched_at, snapshot)"
            " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s::text IS NULL THEN NULL ELSE now() END, %s)"
            " ON CONFLICT (release_id, app) DO UPDATE SET"
            " deployed_version = coalesce(EXCLUDED.deployed_version, rollout_app_state.deployed_version),"
            " downtime_seconds = coalesce(EXCLUDED.downtime_seconds, rollout_app_state.downtime_seconds),"
            " switched_at = coalesce(EXCLUDED.switched_at, rollout_app_state.switched_at),"
            " snapshot = coalesce(rollout_app_state.snapshot, EXCLUDED.snapshot)",
            (
                release_id,
                app,
                previous_version,
                deployed_version,
                downtime_seconds,
                deployed_version,
                Jsonb(snapshot) if snapshot else None,
            ),
        )

    def record_quiesced(self, release_id: str, app: str, quiesced: dict[str, Any]) -> None:
        """What a quiesce stopped; the first record stands, so a retried stop (of an app already stopped) keeps it."""
        self._execute(
            "UPDATE rollout_app_state SET quiesced = coalesce(quiesced, %s) WHERE release_id = %s AND app = %s",
            (Jsonb(quiesced), release_id, app),
        )

    def record_switch_began(self, release_id: str, app: str, began: float) -> None:
        """When the switch to the release's version began; the first record stands, as a retried switch's wait is the same wait."""
        self._execute(
            "UPDATE rollout_app_state SET switch_began = coalesce(switch_began, %s) WHERE release_id = %s AND app = %s",
            (began, release_id, app),
        )

    def app_states(self, release_id: str) -> dict[str, AppStateRow]:
        """What the release recorded of each app it touched, by app name."""
        rows = self._execute(
            "SELECT app, previous_version, deployed_version, downtime_seconds, snapshot, quiesced, switch_began"
            " FROM rollout_app_state WHERE release_id = %s",
            (release_id,),
        )
        return {row[0]: AppStateRow(*row) for row in rows}

    def record_measurement(self, release_id: str, result: dict[str, Any]) -> None:
        self._execute(
            "INSERT INTO rollout_measurement (release_id, check_name, kind, critical, passed, detail, metrics)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (release_id, check_name) DO UPDATE SET"
            " kind = EXCLUDED.kind, critical = EXCLUDED.critical, passed = EXCLUDED.passed, detail = EXCLUDED.detail,"
            " metrics = EXCLUDED.metrics, measured_at = now()",
            (release_id, result["name"], result["kind"], result["critical"], result["passed"], result["detail"], Jsonb(result["metrics"])),
        )

    def measurements(self, release_id: str) -> list[MeasurementRow]:
        rows = self._execute(
            "SELECT check_name, kind, critical, passed, detail, metrics FROM rollout_measurement"
            " WHERE release_id = %s ORDER BY measured_at",
            (release_id,),
        )
        return [
            MeasurementRow(name=check_name, kind=kind, critical=critical, passed=passed, detail=detail, metrics=metrics)
            for check_name, kind, critical, passed, detail, metrics in rows
        ]

    def baseline_p95(self, system: str, check_name: str) -> float | None:
        """p95 of `check_name` in the last promoted release of `system`: the performance baseline."""
        rows = self._execute(
            "SELECT (m.metrics->>'p95_ms')::float FROM rollout_measurement m JOIN rollout_release r USING (release_id)"
            " WHERE r.system = %s AND r.status = %s AND m.check_name = %s AND m.kind = 'latency'"
            " ORDER BY r.finished_at DESC LIMIT 1",
            (system, ReleaseStatus.PROMOTED.value, check_name),
        )
        return rows[0][0] if rows else None

    def release_baselines(self, system: str) -> list[BaselineRow]:
        """Latency and error rate measured by each finished release, oldest first: the trend."""
        rows = self._execute(
            "SELECT r.version, r.status, r.finished_at, (m.metrics->>'p50_ms')::float, (m.metrics->>'p95_ms')::float,"
            " (m.metrics->>'error_rate')::float FROM rollout_measurement m JOIN rollout_release r USING (release_id)"
            " WHERE r.system = %s AND m.kind = 'latency' AND r.finished_at IS NOT NULL ORDER BY r.finished_at",
            (system,),
        )
        return [
            BaselineRow(version=version, status=status, finished_at=finished_at, p50_ms=p50_ms, p95_ms=p95_ms, error_rate=error_rate)
            for version, status, finished_at, p50_ms, p95_ms, error_rate in rows
        ]

    # --- notifications and the per-system lock ------------------------------------------------------

    def record_notification(
        self, release_id: str | None, event: str, *, delivered: bool, error: str | None = None, key: str | None = None
    ) -> None:
        notification_id = uuid.uuid4()  # fixed before the first try, so a retried insert is recognised
        self._execute(
            "INSERT INTO rollout_notification (notification_id, release_id, event, delivered, error, idempotency_key)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO UPDATE"
            " SET delivered = EXCLUDED.delivered, error = EXCLUDED.error, sent_at = now()",
            (notification_id, release_id, event, delivered, error, key or f"once:{notification_id}"),
        )

    def delivered(self, key: str) -> bool:
        """Whether the message with this idempotency key has reached Slack already."""
        return bool(self._execute("SELECT 1 FROM rollout_notification WHERE idempotency_key = %s AND delivered", (key,)))

    def notifications(self, release_id: str) -> list[NotificationRow]:
        rows = self._execute("SELECT event, delivered, error FROM rollout_notification WHERE release_id = %s ORDER BY id", (release_id,))
        return [NotificationRow(event=event, delivered=delivered, error=error) for event, delivered, error in rows]

    def claim_lock(self, system: str, release_id: str, run_id: str) -> LockHolder | None:
        """Take the system's lock for `release_id`, worked under by DAG run `run_id`; None when taken, else who holds it.

        Taken when the lock is free, or held by the same release with no run working under it (or this very run).
        One statement, so two runs racing for it cannot both win.
        """
        for _ in range(3):  # the holder may give it back between the two statements: then try again
            taken = self._execute(
                "INSERT INTO rollout_lock (system, release_id, run_id) VALUES (%s, %s, %s) ON CONFLICT (system) DO UPDATE"
                " SET run_id = EXCLUDED.run_id WHERE rollout_lock.release_id = EXCLUDED.release_id"
                " AND (rollout_lock.run_id IS NULL OR rollout_lock.run_id = EXCLUDED.run_id) RETURNING release_id",
                (system, release_id, run_id),
            )
            if taken:
                return None
            if holder := self.lock(system):
                return holder
        raise LedgerConflictError(f"the lock of {system} changed hands three times while it was being taken")

    def lock(self, system: str) -> LockHolder | None:
        rows = self._execute("SELECT release_id, run_id, acquired_at FROM rollout_lock WHERE system = %s", (system,))
        return LockHolder(*rows[0]) if rows else None

    def lock_holder(self, system: str) -> str | None:
        holder = self.lock(system)
        return holder.release_id if holder else None

    def release_lock(self, system: str, release_id: str) -> None:
        self._execute("DELETE FROM rollout_lock WHERE system = %s AND release_id = %s", (system, release_id))

    def hand_back_lock(self, system: str, release_id: str, run_id: str, *, keep_for_release: bool) -> None:
        """At the end of run `run_id`: free the lock, or leave the release holding it with no run working under it."""
        if keep_for_release:
            self._execute(
                "UPDATE rollout_lock SET run_id = NULL WHERE system = %s AND release_id = %s AND run_id = %s", (system, release_id, run_id)
            )
        else:
            self._execute("DELETE FROM rollout_lock WHERE system = %s AND release_id = %s AND run_id = %s", (system, release_id, run_id))

    def unlock(self, system: str, *, unlocked_by: str, reason: str) -> str | None:
        """An operator frees a stuck lock; who and why are kept. Returns the release that held it, if any."""
        rows = self._execute(
            "WITH freed AS (DELETE FROM rollout_lock WHERE system = %s RETURNING system, release_id)"
            " INSERT INTO rollout_unlock (system, release_id, unlocked_by, reason) SELECT system, release_id, %s, %s FROM freed"
            " RETURNING release_id",
            (system, unlocked_by, reason),
        )
        return str(rows[0][0]) if rows else None

    def unlocks(self, system: str) -> list[UnlockRow]:
        rows = self._execute(
            "SELECT release_id, unlocked_by, reason, unlocked_at FROM rollout_unlock WHERE system = %s ORDER BY id", (system,)
        )
        return [
            UnlockRow(release_id=release_id, unlocked_by=unlocked_by, reason=reason, unlocked_at=unlocked_at)
            for release_id, unlocked_by, reason, unlocked_at in rows
        ]

    # --- checklist evidence and sign-offs ------------------------------------------------------------

    def record_checklist_item(
        self, release_id: str, item_id: str, phase: str, *, passed: bool, detail: str, numbers: dict[str, Any]
    ) -> None:
        self._execute(
            "INSERT INTO rollout_checklist_item (release_id, item_id, phase, passed, detail, numbers) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (release_id, item_id) DO UPDATE SET passed = EXCLUDED.passed, detail = EXCLUDED.detail,"
            " numbers = EXCLUDED.numbers, checked_at = now()",
            (release_id, item_id, phase, passed, detail, Jsonb(numbers)),
        )

    def checklist_items(self, release_id: str) -> dict[str, ChecklistItemRow]:
        """The evidence recorded for each checklist item the release checked, by item id."""
        rows = self._execute(
            "SELECT item_id, phase, passed, detail, numbers, checked_at FROM rollout_checklist_item WHERE release_id = %s", (release_id,)
        )
        return {
            item_id: ChecklistItemRow(item_id=item_id, phase=phase, passed=passed, detail=detail, numbers=numbers, checked_at=checked_at)
            for item_id, phase, passed, detail, numbers, checked_at in rows
        }

    def record_signoff(self, release_id: str, role: str, *, approved: bool, responder: str | None) -> None:
        self._execute(
            "INSERT INTO rollout_signoff (release_id, role, approved, responder) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (release_id, role) DO UPDATE SET"
            " approved = EXCLUDED.approved, responder = EXCLUDED.responder, answered_at = now()",
            (release_id, role, approved, responder),
        )

    def signoffs(self, release_id: str) -> dict[str, SignoffRow]:
        """Each role's answer to the sign-off, by role."""
        rows = self._execute("SELECT role, approved, responder, answered_at FROM rollout_signoff WHERE release_id = %s", (release_id,))
        return {
            role: SignoffRow(role=role, approved=approved, responder=responder, answered_at=answered_at)
            for role, approved, responder, answered_at in rows
        }

    def record_as_json(self, release_id: str) -> str:
        """The whole record of one release, as an operator would want to read or attach it."""
        release = self.release(release_id)
        return json.dumps(
            {
                "release": release.__dict__,
                "steps": [asdict(step) for step in self.steps(release_id)],
                "attempts": [asdict(attempt) for attempt in self.step_attempts(release_id)],
                "migrations": self.migrations(release_id),
                "apps": {app: state.as_entry() for app, state in self.app_states(release_id).items()},
                "snapshots": {target: row.as_entry() for target, row in self.snapshots(release_id).items()},
                "measurements": [asdict(measurement) for measurement in self.measurements(release_id)],
                "notifications": [asdict(notification) for notification in self.notifications(release_id)],
                "checklist": {item_id: item.as_entry() for item_id, item in self.checklist_items(release_id).items()},
                "signoffs": {role: signoff.as_entry() for role, signoff in self.signoffs(release_id).items()},
            },
            default=str,
            indent=2,
        )
