"""Schema migrations: ordered SQL files recorded in a migrations table, or the system's own tool.

SQL files live in `include/migrations/<system>/`. Files at the top apply to every version; a
sub-directory named after a version (`1.2.0/0001_add_archived.sql`) holds what that version needs and
applies to releases of that version or a later one ("later" in the profile's `version_scheme`). Each
file runs in its own transaction together with its row in `rollout_schema_migrations`, so a file is
either applied and recorded or neither, and a retry picks up exactly where a failure stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from airflow_rollout.config import INCLUDE_DIR
from airflow_rollout.tool_output import error_line, shown_command
from airflow_rollout.versions import InvalidVersionError, Version, VersionScheme

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_rollout.config import CommandMigrations, SqlFileMigrations
    from airflow_rollout.targets.postgres import PostgresDataTarget

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "rollout_schema_migrations"


class MigrationError(RuntimeError):
    """A migration failed; the message names the file and carries the database's own words."""


@dataclass(frozen=True)
class Migration:
    migration_id: str  # path relative to the migrations directory, e.g. "1.2.0/0001_add_archived.sql"
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migrations_for(directory: Path, version: str, scheme: VersionScheme = VersionScheme.SEMVER) -> list[Migration]:
    """Every migration a release of `version` needs, in the order they must run.

    The top-level files first, by name; then each version directory up to `version`, oldest first in `scheme`:
    `v1.0-p2/` comes before `v1.0/` under semver (a pre-release), after it under patch_suffix (a patch).
    """
    try:
        target = Version(version, scheme)
    except InvalidVersionError as exc:
        raise MigrationError(f"cannot choose the migrations for release {version!r}: {exc}") from None
    top = [Migration(path.name, path) for path in sorted(directory.glob("*.sql"))]
    versioned: list[tuple[Version, Migration]] = []
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []:
        try:
            sub_version = Version(sub.name, scheme)
        except InvalidVersionError as exc:
            raise MigrationError(f"{sub}: a migrations sub-directory must be named after a version ({exc})") from None
        if sub_version <= target:
            versioned += [(sub_version, Migration(f"{sub.name}/{p.name}", p)) for p in sorted(sub.glob("*.sql"))]
    versioned.sort(key=lambda item: (item[0], item[1].migration_id))
    return top + [migration for _, migration in versioned]


class SqlFileMigrator:
    def __init__(self, *, target: PostgresDataTarget, config: SqlFileMigrations, scheme: VersionScheme = VersionScheme.SEMVER) -> None:
        self.target = target
        self.config = config
        self.scheme = scheme  # the profile's version_scheme: which version directories a release needs

    @property
    def _table(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.target.config.schemas[0]), sql.Identifier(MIGRATIONS_TABLE))

    def applied(self) -> dict[str, str]:
        with self.target.connect() as conn:
            # A system whose first migration creates its schema (seed 004's loan_data) has none yet to keep the record in.
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.target.config.schemas[0])))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (migration_id text PRIMARY KEY, checksum text NOT NULL,"
                    " release_id text, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(self._table)
            )
            rows = conn.execute(sql.SQL("SELECT migration_id, checksum FROM {}").format(self._table)).fetchall()
        return dict(rows)

    def pending(self, version: str) -> list[Migration]:
        wanted = migrations_for(self.config.resolved_path(), version, self.scheme)
        applied = self.applied()
        for migration in wanted:
            recorded = applied.get(migration.migration_id)
            if recorded and recorded != migration.checksum:
                raise MigrationError(
                    f"{migration.path} was changed after it was applied (recorded sha256 {recorded[:12]}…, "
                    f"file now {migration.checksum[:12]}…): add a new migration instead of editing an applied one"
                )
        return [m for m in wanted if m.migration_id not in applied]

    def apply(self, migration: Migration, release_id: str) -> None:
        log.info("applying migration %s", migration.migration_id)
        with self.target.connect() as conn:
            try:
                with conn.transaction():
                    conn.execute(migration.path.read_text())  # type: ignore[call-overload]
                    conn.execute(
                        sql.SQL("INSERT INTO {} (migration_id, checksum, release_id) VALUES (%s, %s, %s)").format(self._table),
                        (migration.migration_id, migration.checksum, release_id),
                    )
            except Exception as exc:
                from psycopg import OperationalError

                if isinstance(exc, OperationalError):
                    raise  # the connection, not the SQL: worth a retry
                raise MigrationError(f"migration {migration.migration_id} failed and was rolled back: {exc}".strip()) from exc


class CommandMigrator:
    """Runs e.g. `alembic upgrade head` with the connections' URIs in its environment."""

    def __init__(self, *, config: CommandMigrations, version: str) -> None:
        self.config = config
        self.version = version

    def environment(self) -> dict[str, str]:
        from airflow.sdk import BaseHook

        env = dict(os.environ) | {variable: self.expand(value) for variable, value in self.config.env.items()}
        for variable, conn_id in self.config.env_from_connections.items():
            env[variable] = connection_uri(BaseHook.get_connection(conn_id))
        return env

    def placeholders(self) -> dict[str, str]:
        """What `{name}` in the command and the `env` values stands for: exactly config.MIGRATION_PLACEHOLDERS."""
        return {"version": self.version, "python": sys.executable, "include": str(INCLUDE_DIR)}

    def expand(self, text: str) -> str:
        for name, value in self.placeholders().items():
            text = text.replace("{" + name + "}", value)
        return text

    def args(self) -> list[str]:
        """The command as it runs: placeholders expanded (no secret is among them: those are in the environment)."""
        return [self.expand(arg) for arg in self.config.command]

    def run(self) -> str:
        args = self.args()
        log.info("running migration command %s", args)
        result = subprocess.run(  # noqa: S603 - the profile's command as an argument list, no shell
            args, env=self.environment(), capture_output=True, text=True, timeout=self.config.timeout_seconds, check=False
        )
        output = (result.stdout + result.stderr).strip()
        if result.returncode:
            # As configured (placeholders unexpanded): the message goes to Slack and the ledger; the whole output to the task log.
            shown = shown_command(self.config.command)
            log.error("migration command %s exited with %s; its output:\n%s", shown, result.returncode, output)
            raise MigrationError(f"migration command `{shown}` exited with {result.returncode}: {error_line(output)}")
        return output


def connection_uri(conn: object) -> str:
    """A libpq-style URI for an Airflow connection (its get_uri() may carry a SQLAlchemy driver suffix)."""
    uri: str = conn.get_uri()  # type: ignore[attr-defined]
    scheme, sep, rest = uri.partition("://")
    if scheme in {"postgres", "postgresql+psycopg", "postgresql+psycopg2"}:
        scheme = "postgresql"
    return f"{scheme}{sep}{rest}"
