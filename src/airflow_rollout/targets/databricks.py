"""Databricks targets (seeds 000 and 001), through the databricks provider's DatabricksHook.

- `UnityCatalogDataTarget`: Delta tables of one schema, on a SQL warehouse (the SQL Statement Execution
  API). The backup records each table's current Delta version and copies it into the backup catalog
  (seed 000's `CREATE TABLE ontos_ml_backups.<t>_backup_<date> AS SELECT *`, named per backup rather than per
  day so that a retry names the same copy); the manifest of both is a
  local file whose sha256 the ledger keeps. The restore is `RESTORE TABLE ... TO VERSION AS OF` the recorded
  version, or the copy when Delta may no longer keep that version (older than `delta_retention_days`, or
  RESTORE refused). Every identifier is validated by the profile and quoted with backticks.
- `UnityCatalogMigrator`: ordered SQL files run on the warehouse, recorded in `rollout_schema_migrations`
  inside the schema, then the profile's GRANTs, then every table checked with SHOW TABLES.
- `DatabricksApp`: deploy a version's workspace source path, wait for the deployment, the app and its
  compute, then the readiness path at the app's URL; roll back by redeploying the recorded path.
- `MlflowAlias`: move a registered model's alias to its newest version; roll back by moving it back.
- Checks: a serving endpoint's readiness, a job run as a check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import ConfigDict, Field, field_validator

from airflow_rollout.checks import CheckResult
from airflow_rollout.config import (
    AppTargetConfig,
    ConnId,
    DataTargetConfig,
    ProfileError,
    ServingAppConfig,
    SqlFileMigrations,
    SqlIdentifier,
    StrictModel,
)
from airflow_rollout.targets.base import (
    AppCapability,
    AppNotReadyError,
    AppStopError,
    AppTarget,
    BackupIntegrityError,
    BackupRecord,
    DataTarget,
    MigrationRun,
    file_sha256,
    http_problem,
    owner_only,
    private_directory,
    safe_file_name,
    verify_sha256,
)
from airflow_rollout.targets.migrations import MigrationError, migrations_for
from airflow_rollout.targets.registry import register_app_kind, register_data_kind
from airflow_rollout.triggers import DatabricksAppComputeTrigger, DatabricksAppServingTrigger
from airflow_rollout.versions import VersionScheme
from airflow_rollout.waits import WaitFailedError, raise_failed_wait, sent_before, wait_for, wait_until_done

if TYPE_CHECKING:
    from airflow.providers.databricks.hooks.databricks import DatabricksHook
    from airflow.triggers.base import BaseTrigger

    from airflow_rollout.config import DatabricksJobCheck, ServingEndpointCheck

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
TRIGGER_POLL_SECONDS = 1  # the providers' triggers take whole seconds
MIGRATIONS_TABLE = "rollout_schema_migrations"

_AppTrigger = TypeVar("_AppTrigger", DatabricksAppComputeTrigger, DatabricksAppServingTrigger)


class DatabricksSqlError(RuntimeError):
    """The warehouse refused or failed a statement."""


def quote(*parts: str) -> str:
    """`catalog`.`schema`.`table`: each part backtick-quoted (the profile has already pattern-checked them)."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in parts)


def _hook(conn_id: str) -> DatabricksHook:
    from airflow.providers.databricks.hooks.databricks import DatabricksHook

    return DatabricksHook(databricks_conn_id=conn_id)


def api(hook: DatabricksHook, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A REST call for which DatabricksHook (provider 7.23) has no public method: a statement's result rows
    (`post_sql_statement` answers only the id, `get_sql_statement_state` only the state), Apps, the MLflow
    registry, serving endpoints. The hook's `_do_api_call` is its one way there (auth, retries, the API's errors);
    this is the only place that calls it, so a provider that grows public methods changes one function."""
    result: dict[str, Any] = hook._do_api_call((method, path), body)
    return result


async def a_api(hook: DatabricksHook, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """`api` for a trigger (inside `async with hook`): the hook's `_a_do_api_call`, called from here alone."""
    result: dict[str, Any] = await hook._a_do_api_call((method, path), body)
    return result


def serving_problem(app: dict[str, Any], path: str) -> str | None:
    """None when the App (as `GET /api/2.0/apps/{name}` serves it) runs `path` and is up; else what it waits for.
    Raises when it cannot get there any more: its deployment of `path` ended without making it active, or it crashed."""
    name, active = app.get("name"), (app.get("active_deployment") or {}).get("source_code_path")
    app_status, compute = app.get("app_status") or {}, (app.get("compute_status") or {}).get("state")
    if (app.get("pending_deployment") or {}).get("source_code_path") == path:
        return f"deployment of {path} in progress"
    if active != path:
        raise AppNotReadyError(f"app {name} runs {active}, not {path}: {app_status.get('state')}: {app_status.get('message', '')}")
    if app_status.get("state") in {"CRASHED", "UNAVAILABLE"}:
        raise AppNotReadyError(f"app {name} is {app_status.get('state')}: {app_status.get('message', '')}")
    if app_status.get("state") != "RUNNING" or compute != "ACTIVE":
        return f"app {app_status.get('state')}, compute {compute}"
    return None


class Warehouse:
    """Statements on one SQL warehouse through the hook's SQL Statement Execution API calls."""

    def __init__(self, *, conn_id: str, warehouse_id: str) -> None:
        self.conn_id = conn_id
        self.warehouse_id = warehouse_id

    @cached_property
    def hook(self) -> DatabricksHook:
        return _hook(self.conn_id)

    def execute(self, statement: str, parameters: dict[str, str] | None = None, timeout: float = 600) -> list[list[Any]]:
        """Run one statement, wait for it, return its rows (values as the API gives them: strings or null).

        Values travel as named parameters (`:name`); identifiers are pattern-checked by the profile and quoted.
        """
        from airflow.providers.databricks.hooks.databricks import SQL_STATEMENTS_ENDPOINT
        from airflow.providers.databricks.triggers.databricks import DatabricksSQLStatementExecutionTrigger

        log.info("SQL on warehouse %s: %s", self.warehouse_id, statement)
        body: dict[str, Any] = {
            "warehouse_id": self.warehouse_id,
            "statement": statement,
            "wait_timeout": "30s",
            "on_wait_timeout": "CONTINUE",
        }
        if parameters:
            body["parameters"] = [{"name": name, "value": value, "type": "STRING"} for name, value in parameters.items()]
        # A step sends several statements; when one outlasts wait_timeout the step defers, and its next run follows
        # each statement sent before by its id (the journal of `sent_before`) instead of sending it again.
        earlier, record = sent_before(json.dumps(body, sort_keys=True))
        if earlier is None:
            response = api(self.hook, "POST", SQL_STATEMENTS_ENDPOINT, body)
            record(response["statement_id"])
        else:
            log.info("statement %s was sent by this step's run before its deferral: followed, not sent again", earlier)
            response = api(self.hook, "GET", f"{SQL_STATEMENTS_ENDPOINT}/{earlier}")
        if response["status"]["state"] in {"PENDING", "RUNNING"}:  # longer than wait_timeout: the provider's trigger
            statement_id = response["statement_id"]
            trigger = DatabricksSQLStatementExecutionTrigger(
                statement_id=statement_id,
                databricks_conn_id=self.conn_id,
                end_time=time.time() + timeout,
                polling_period_seconds=TRIGGER_POLL_SECONDS,
            )
            # In the triggerer inside a task. The trigger cancels the statement at end_time; the GET below reports it.
            wait_for(trigger, f"statement {statement_id}", timeout=timeout + 30)
            response = api(self.hook, "GET", f"{SQL_STATEMENTS_ENDPOINT}/{statement_id}")
        if response["status"]["state"] != "SUCCEEDED":
            error = response["status"].get("error") or {}
            raise DatabricksSqlError(
                f"{error.get('error_code', response['status']['state'])}: {error.get('message', '')} [{statement[:200]}]"
            )
        return list((response.get("result") or {}).get("data_array") or [])


PRINCIPAL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 @._-]{0,127}$"


class Grant(StrictModel):
    """A Unity Catalog GRANT applied after the migrations (seed 000: permissions of the app's service principal)."""

    privileges: list[
        Literal["USE_CATALOG", "USE_SCHEMA", "SELECT", "MODIFY", "CREATE_TABLE", "READ_VOLUME", "WRITE_VOLUME", "ALL_PRIVILEGES"]
    ] = Field(min_length=1)
    securable: Literal["CATALOG", "SCHEMA"] = Field(description="what the grant is on (not `on`: YAML reads that as true)")
    to: Annotated[str, Field(pattern=PRINCIPAL_PATTERN)]


class UnityCatalogTarget(DataTargetConfig):
    """Delta tables of one Unity Catalog schema, changed through a SQL warehouse (seeds 000 and 001).

    Backup: each table's Delta version (DESCRIBE HISTORY) plus a copy, `CREATE TABLE <backup_catalog>.<schema>.
    <table>_backup_<backup> AS SELECT *` (seed 000). Restore: RESTORE TABLE ... TO VERSION AS OF the
    recorded version, or the copy when Delta no longer keeps that version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Literal["unity_catalog"]
    conn_id: ConnId
    warehouse_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]
    catalog: SqlIdentifier
    schema_name: SqlIdentifier = Field(alias="schema")
    tables: list[SqlIdentifier] = Field(min_length=1, description="the tables a release backs up and restores")
    backup_catalog: SqlIdentifier
    grants: list[Grant] = Field(default_factory=list)
    delta_retention_days: Annotated[float, Field(gt=0)] = Field(
        7, description="how long VACUUM keeps old versions (Delta's default: 7 days)"
    )
    migrations: SqlFileMigrations | None = None

    def connection_ids(self) -> list[str]:
        return [self.conn_id]


class UnityCatalogDataTarget(DataTarget):
    config: UnityCatalogTarget
    capabilities = frozenset()  # Delta tables: no scratch-database drill, and Databricks runs its own VACUUM

    def __init__(self, *, config: UnityCatalogTarget) -> None:
        self.config = config
        self.warehouse = Warehouse(conn_id=config.conn_id, warehouse_id=config.warehouse_id)

    def table(self, name: str) -> str:
        return quote(self.config.catalog, self.config.schema_name, name)

    def ping(self) -> None:
        self.warehouse.execute("SELECT 1")

    def fingerprint(self) -> dict[str, Any]:
        """Per table: rows, an order-independent content hash, the columns (versions change on RESTORE, content does not)."""
        result: dict[str, Any] = {}
        existing = self.existing_tables()
        for name in self.config.tables:
            key = f"{self.config.schema_name}.{name}"
            if name not in existing:
                result[key] = {"absent": True}
                continue
            # The modulo keeps the sum inside 64 bits, where ANSI mode would raise ARITHMETIC_OVERFLOW.
            [[rows, content]] = self.warehouse.execute(
                f"SELECT count(*) AS row_count, coalesce(sum(xxhash64(*) % 1000000007), 0) AS content FROM {self.table(name)}"  # noqa: S608 - identifiers pattern-checked by the profile, backtick-quoted
            )
            columns = ", ".join(f"{row[0]} {row[1]}" for row in self.warehouse.execute(f"DESCRIBE TABLE {self.table(name)}") if row[0])
            result[key] = {"rows": int(rows), "content": str(content), "columns": columns}
        return result

    def existing_tables(self) -> set[str]:
        rows = self.warehouse.execute(f"SHOW TABLES IN {quote(self.config.catalog, self.config.schema_name)}")
        return {str(row[1]).lower() for row in rows}

    def table_version(self, name: str) -> int:
        [row] = self.warehouse.execute(f"DESCRIBE HISTORY {self.table(name)} LIMIT 1")
        return int(row[0])

    def backup_path(self, directory: Path, release_id: str) -> Path:
        return directory / f"{self.config.name}-{safe_file_name(release_id)}.json"

    def backup(self, destination: Path) -> BackupRecord:
        """Record each table's Delta version and copy it to the backup catalog; write the manifest of both."""
        private_directory(destination.parent)
        fingerprint = self.fingerprint()
        stamp = datetime.now(UTC)
        # Named after the backup, not the day (the seed's `_backup_$(date +%Y%m%d)`): a backup step that deferred
        # across midnight must send the same CTAS on resuming, which the statement journal then recognises as sent.
        # The manifest keeps when it was taken.
        suffix = hashlib.sha256(destination.stem.encode()).hexdigest()[:12]
        backup_schema = quote(self.config.backup_catalog, self.config.schema_name)
        self.warehouse.execute(f"CREATE SCHEMA IF NOT EXISTS {backup_schema}")
        tables: dict[str, Any] = {}
        for name in self.config.tables:
            if fingerprint[f"{self.config.schema_name}.{name}"].get("absent"):
                tables[name] = {"absent": True}
                continue
            version = self.table_version(name)
            copy = f"{name}_backup_{suffix}"
            self.warehouse.execute(
                f"CREATE TABLE {quote(self.config.backup_catalog, self.config.schema_name, copy)} AS SELECT * FROM {self.table(name)}"  # noqa: S608 - identifiers pattern-checked by the profile, backtick-quoted
            )
            tables[name] = {"version": version, "backup_table": copy}
        manifest = {"target": self.config.name, "taken_at": stamp.isoformat(), "tables": tables, "fingerprint": fingerprint}
        destination.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        owner_only(destination)
        return BackupRecord(
            location=str(destination),
            format="delta-version+ctas",
            sha256=file_sha256(destination),
            size_bytes=destination.stat().st_size,
            fingerprint=fingerprint,
            toc_entries=len(tables),
        )

    def verify_integrity(self, location: str, expected_sha256: str) -> None:
        """The manifest is the one recorded, and every copy it names is still in the backup catalog."""
        path = verify_sha256(location, expected_sha256)
        copies = {t["backup_table"].lower() for t in json.loads(path.read_text())["tables"].values() if "backup_table" in t}
        present = {
            str(row[1]).lower()
            for row in self.warehouse.execute(f"SHOW TABLES IN {quote(self.config.backup_catalog, self.config.schema_name)}")
        }
        if missing := sorted(copies - present):
            raise BackupIntegrityError(
                f"backup copies missing from {self.config.backup_catalog}.{self.config.schema_name}: {', '.join(missing)}"
            )

    def restore(self, location: str, expected_sha256: str) -> None:
        self.verify_integrity(location, expected_sha256)
        manifest = json.loads(Path(location).read_text())
        age_days = (datetime.now(UTC) - datetime.fromisoformat(manifest["taken_at"])).total_seconds() / 86400
        within_retention = age_days < self.config.delta_retention_days
        if not within_retention:
            log.warning(
                "the backup is %.1f days old, beyond Delta's retention of %g days: restoring from the copies, not from time travel",
                age_days,
                self.config.delta_retention_days,
            )
        existing = self.existing_tables()
        for name, entry in manifest["tables"].items():
            if entry.get("absent"):
                if name in existing:
                    self.warehouse.execute(f"DROP TABLE {self.table(name)}")
                continue
            if within_retention and name in existing:
                try:
                    self.warehouse.execute(f"RESTORE TABLE {self.table(name)} TO VERSION AS OF {int(entry['version'])}")
                    continue
                except DatabricksSqlError as exc:
                    log.warning("RESTORE of %s to version %s refused (%s): restoring from the copy", name, entry["version"], exc)
            copy = quote(self.config.backup_catalog, self.config.schema_name, entry["backup_table"])
            self.warehouse.execute(f"CREATE OR REPLACE TABLE {self.table(name)} AS SELECT * FROM {copy}")  # noqa: S608 - identifiers pattern-checked by the profile, backtick-quoted

    def query_value(self, query: str) -> Any:
        rows = self.warehouse.execute(query)
        return rows[0][0] if rows and rows[0] else None

    def migrate(self, run: MigrationRun) -> list[str]:
        if self.config.migrations is None:
            return []
        applied = UnityCatalogMigrator(target=self, scheme=run.scheme).run(run.version, run.release_id)
        for migration_id in applied:
            run.record(migration_id, None)
        return applied


def split_statements(text: str) -> list[str]:
    """A SQL file's statements: split at `;` ending a line, comments of whole lines dropped."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE) if s.strip()]


class UnityCatalogMigrator:
    """Seed 000's `01_create_catalog.sql` ... `99_validate_and_seed.sql`, in order, on the warehouse."""

    def __init__(self, *, target: UnityCatalogDataTarget, scheme: VersionScheme = VersionScheme.SEMVER) -> None:
        self.target = target
        self.scheme = scheme
        assert target.config.migrations is not None  # noqa: S101 - only built for targets with migrations
        self.directory = target.config.migrations.resolved_path()

    @property
    def _table(self) -> str:
        return self.target.table(MIGRATIONS_TABLE)

    def applied(self) -> dict[str, str]:
        config = self.target.config
        # The record needs a home before the first file (seed 000's 01_create_catalog.sql) has made one.
        self.target.warehouse.execute(f"CREATE CATALOG IF NOT EXISTS {quote(config.catalog)}")
        self.target.warehouse.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(config.catalog, config.schema_name)}")
        self.target.warehouse.execute(f"CREATE TABLE IF NOT EXISTS {self._table} (migration_id STRING, checksum STRING, release_id STRING)")
        return {row[0]: row[1] for row in self.target.warehouse.execute(f"SELECT migration_id, checksum FROM {self._table}")}  # noqa: S608 - identifiers pattern-checked by the profile, backtick-quoted

    def run(self, version: str, release_id: str) -> list[str]:
        applied = self.applied()
        done = []
        for migration in migrations_for(self.directory, version, self.scheme):
            recorded = applied.get(migration.migration_id)
            if recorded and recorded != migration.checksum:
                raise MigrationError(f"{migration.path} was changed after it was applied: add a new migration instead")
            if recorded:
                continue
            log.info("applying migration %s", migration.migration_id)
            try:
                for statement in split_statements(migration.path.read_text()):
                    self.target.warehouse.execute(statement)
            except DatabricksSqlError as exc:
                raise MigrationError(f"migration {migration.migration_id} failed: {exc}") from exc
            self.target.warehouse.execute(
                f"INSERT INTO {self._table} VALUES (:migration_id, :checksum, :release_id)",  # noqa: S608 - a quoted identifier; values as parameters
                {"migration_id": migration.migration_id, "checksum": migration.checksum, "release_id": release_id},
            )
            done.append(migration.migration_id)
        self.grant_and_verify()
        return done

    def grant_and_verify(self) -> None:
        config = self.target.config
        for grant in config.grants:
            on = quote(config.catalog) if grant.securable == "CATALOG" else quote(config.catalog, config.schema_name)
            privileges = ", ".join(p.replace("_", " ") for p in grant.privileges)
            self.target.warehouse.execute(f"GRANT {privileges} ON {grant.securable} {on} TO {quote(grant.to)}")
        missing = sorted(set(config.tables) - self.target.existing_tables())
        if missing:
            raise MigrationError(f"after the migrations, SHOW TABLES lacks {', '.join(missing)}")


# --- apps ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningRelease:
    version: str
    detail: str


class DatabricksAppTarget(ServingAppConfig):
    """A Databricks App (seed 000), deployed from a workspace source path per version; rolled back by redeploying the recorded one."""

    kind: Literal["databricks_app"]
    conn_id: ConnId
    app_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,29}$")]
    source_code_path: Annotated[str, Field(pattern=r"^/Workspace/[A-Za-z0-9 @._/{}-]+$")] = Field(
        description="the workspace path of a version's source; {version} stands for the version"
    )

    @field_validator("source_code_path")
    @classmethod
    def _names_the_version(cls, value: str) -> str:
        if "{version}" not in value or ".." in value.split("/"):
            raise ValueError("must contain {version} (each version's source has its own path) and no '..'")
        return value

    def connection_ids(self) -> list[str]:
        return [self.conn_id]


class DatabricksApp(AppTarget):
    config: DatabricksAppTarget
    capabilities = frozenset({AppCapability.SNAPSHOT_RESTORE})

    def __init__(self, *, config: DatabricksAppTarget) -> None:
        self.config = config

    @cached_property
    def hook(self) -> DatabricksHook:
        return _hook(self.config.conn_id)

    def _app(self) -> dict[str, Any]:
        result: dict[str, Any] = api(self.hook, "GET", f"2.0/apps/{self.config.app_name}")
        return result

    def source_path(self, version: str) -> str:
        return self.config.source_code_path.replace("{version}", version)

    def version_of(self, path: str | None) -> str | None:
        prefix, _, suffix = self.config.source_code_path.partition("{version}")
        if not path or not path.startswith(prefix) or not path.endswith(suffix):
            return None
        return path[len(prefix) : len(path) - len(suffix)] or None

    def current(self) -> RunningRelease | None:
        path = (self._app().get("active_deployment") or {}).get("source_code_path")
        version = self.version_of(path)
        return RunningRelease(version=version, detail=str(path)) if version else None

    def recorded_version(self) -> str | None:
        running = self.current()
        return running.version if running else None

    def snapshot(self) -> dict[str, Any]:
        return {"source_code_path": (self._app().get("active_deployment") or {}).get("source_code_path")}

    def base_url(self) -> str:
        """Assigned by the platform, so asked for rather than configured."""
        return str(self._app().get("url") or "").rstrip("/")

    def deploy_path(self, path: str) -> float:
        """Deploy `path` and wait until it serves. A deployment of it that an earlier run of the step began (under way,
        or done and not crashed) is followed, not begun again; a crashed or stopped one is deployed again."""
        began = time.monotonic()
        app = self._app()
        active = (app.get("active_deployment") or {}).get("source_code_path")
        deployed = active == path and (app.get("app_status") or {}).get("state") not in {"CRASHED", "UNAVAILABLE"}
        if not deployed and (app.get("pending_deployment") or {}).get("source_code_path") != path:
            try:
                raise_failed_wait(f"app {self.config.app_name} serving {path}")  # not deployed again in the same try
            except WaitFailedError as exc:
                raise AppNotReadyError(str(exc)) from None
            self.start_compute()
            log.info("deploying app %s from %s", self.config.app_name, path)
            api(self.hook, "POST", f"2.0/apps/{self.config.app_name}/deployments", {"source_code_path": path, "mode": "SNAPSHOT"})
        self._wait_running(path)
        return time.monotonic() - began

    def _wait_running(self, path: str) -> None:
        app = self._app()
        if serving_problem(app, path) is None and http_problem(str(app["url"]).rstrip("/") + self.config.readiness.path) is None:
            return
        trigger = self._trigger(DatabricksAppServingTrigger, source_code_path=path, readiness_path=self.config.readiness.path)
        self._wait(trigger, f"app {self.config.app_name} serving {path}", AppNotReadyError)

    def start_compute(self) -> None:
        """Start a stopped app's compute. The platform restarts the app's last deployment with it: Databricks
        deploys only to running compute, so a stopped app cannot go straight to another source path."""
        state = (self._app().get("compute_status") or {}).get("state")
        if state == "ACTIVE":
            return
        if state != "STARTING":  # one an earlier run of the step asked for is followed, not asked for twice
            log.info("starting the compute of app %s", self.config.app_name)
            api(self.hook, "POST", f"2.0/apps/{self.config.app_name}/start")
        started = self._trigger(DatabricksAppComputeTrigger, state="ACTIVE")
        self._wait(started, f"app {self.config.app_name} compute started", AppNotReadyError)

    def quiesce(self) -> dict[str, Any]:
        """Stop the app (its compute): nothing of it serves or writes until it is started again (`wait_quiesced`)."""
        log.info("stopping app %s", self.config.app_name)
        api(self.hook, "POST", f"2.0/apps/{self.config.app_name}/stop")
        return {}

    def wait_quiesced(self) -> None:
        if (self._app().get("compute_status") or {}).get("state") != "STOPPED":
            self._wait(self._trigger(DatabricksAppComputeTrigger, state="STOPPED"), f"app {self.config.app_name} stopped", AppStopError)

    def _trigger(self, kind: type[_AppTrigger], **arguments: Any) -> _AppTrigger:
        deadline = time.time() + self.config.readiness.timeout_seconds
        return kind(conn_id=self.config.conn_id, app_name=self.config.app_name, poll_interval=POLL_SECONDS, deadline=deadline, **arguments)

    def _wait(self, trigger: BaseTrigger, what: str, error: type[Exception]) -> None:
        """Wait for `trigger` (in the triggerer, inside a task); its failure or a passed deadline raises `error`."""
        wait_until_done(trigger, what, timeout=self.config.readiness.timeout_seconds, error=error)

    def resume(self, quiesced: dict[str, Any], version: str | None = None) -> float:
        """Start the app again: at `version`, or with the deployment that was active when it was stopped."""
        del quiesced  # the platform keeps the active deployment across a stop
        began = time.monotonic()
        if version:
            return self.deploy_path(self.source_path(version))
        self.start_compute()
        active = (self._app().get("active_deployment") or {}).get("source_code_path")
        self._wait_running(str(active))
        return time.monotonic() - began

    def switch_to(self, version: str) -> float:
        return self.deploy_path(self.source_path(version))

    def wait_ready(self, version: str) -> float:
        began = time.monotonic()
        self._wait_running(self.source_path(version))
        return time.monotonic() - began

    def restore(self, snapshot: dict[str, Any]) -> float:
        return self.deploy_path(str(snapshot["source_code_path"]))


class MlflowAliasTarget(AppTargetConfig):
    """A registered model's alias (seed 001's `champion`), moved to the newest registered version on deploy and back on rollback."""

    kind: Literal["mlflow_alias"]
    conn_id: ConnId
    model: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){0,2}$")]
    alias: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]

    def connection_ids(self) -> list[str]:
        return [self.conn_id]


class MlflowAlias(AppTarget):
    """`champion` moved to the newest registered version of the model; the version it pointed at is recorded first."""

    config: MlflowAliasTarget
    capabilities = frozenset({AppCapability.SNAPSHOT_RESTORE})

    def __init__(self, *, config: MlflowAliasTarget) -> None:
        self.config = config

    def base_url(self) -> str:
        raise ProfileError(f"{self.config.name} is a model alias: it answers no HTTP; an http or latency check cannot name it")

    def adopt(self, version: str) -> str:
        """An alias has no release version: what it points at is the baseline."""
        return f"{self.config.model}@{self.config.alias} points at model version {self.snapshot()['model_version']}"

    @cached_property
    def hook(self) -> DatabricksHook:
        return _hook(self.config.conn_id)

    def aliased_version(self) -> str | None:
        try:
            found = api(self.hook, "GET", "2.0/mlflow/registered-models/alias", {"name": self.config.model, "alias": self.config.alias})
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):  # the alias is not set
                return None
            raise
        return str(found["model_version"]["version"])

    def newest_version(self) -> str:
        model = api(self.hook, "GET", "2.0/mlflow/registered-models/get", {"name": self.config.model})["registered_model"]
        versions = [v["version"] for v in model.get("latest_versions") or []]
        if not versions:
            raise AppNotReadyError(f"model {self.config.model} has no registered version to alias")
        return str(max(versions, key=int))

    def current(self) -> RunningRelease | None:
        """None: an alias names a model version, not a release; what it points at is in `snapshot()`."""
        return None

    def recorded_version(self) -> str | None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {"model_version": self.aliased_version()}

    def move_to(self, model_version: str | None) -> None:
        if model_version is None:
            api(self.hook, "DELETE", f"2.0/mlflow/registered-models/alias?name={self.config.model}&alias={self.config.alias}")
        else:
            body = {"name": self.config.model, "alias": self.config.alias, "version": model_version}
            api(self.hook, "POST", "2.0/mlflow/registered-models/alias", body)
        log.info("%s@%s -> version %s", self.config.model, self.config.alias, model_version)

    def switch_to(self, version: str) -> float:
        del version  # the alias follows the model registry, not the release number
        began = time.monotonic()
        self.move_to(self.newest_version())
        return time.monotonic() - began

    def wait_ready(self, version: str) -> float:
        del version
        return 0.0

    def restore(self, snapshot: dict[str, Any]) -> float:
        began = time.monotonic()
        self.move_to(snapshot.get("model_version"))
        return time.monotonic() - began

    def quiesce(self) -> dict[str, Any]:
        """Nothing to stop: an alias is a pointer, and the serving endpoint behind it writes no release data."""
        return {}

    def resume(self, quiesced: dict[str, Any], version: str | None = None) -> float:
        del quiesced
        return self.switch_to(version) if version else 0.0


# --- checks ----------------------------------------------------------------------------------------------


def serving_endpoint_ready(check: ServingEndpointCheck) -> CheckResult:
    try:
        endpoint = api(_hook(check.conn_id), "GET", f"2.0/serving-endpoints/{check.endpoint}")
    except Exception as exc:  # noqa: BLE001 - an endpoint that cannot be read is a failed check, with the API's reason
        reason = "it does not exist" if "RESOURCE_DOES_NOT_EXIST" in str(exc) else f"{type(exc).__name__}: {str(exc)[:300]}"
        return CheckResult(check.name, check.kind, check.critical, False, f"serving endpoint {check.endpoint}: {reason}")
    state = endpoint.get("state") or {}
    ready, update = state.get("ready"), state.get("config_update")
    passed = ready == "READY" and update != "UPDATE_FAILED"
    return CheckResult(check.name, check.kind, check.critical, passed, f"serving endpoint {check.endpoint}: {ready}, config {update}")


def run_job(check: DatabricksJobCheck, idempotency_token: str) -> CheckResult:
    """Run the job (seed 001's batch inference) to its end; passes on SUCCESS.

    The wait is the provider's DatabricksExecutionTrigger (deferred to the triggerer inside a task). run-now's
    `idempotency_token` makes the step's second run (after the trigger fired, or after a crash) find the run the
    first one started instead of starting another: the caller derives it from what must not run the job twice.
    """
    from airflow.providers.databricks.triggers.databricks import DatabricksExecutionTrigger

    hook = _hook(check.conn_id)
    run_id = hook.run_now({"job_id": check.job_id, "idempotency_token": idempotency_token})
    if not (state := hook.get_run_state(run_id)).is_terminal:
        trigger = DatabricksExecutionTrigger(run_id=run_id, databricks_conn_id=check.conn_id, polling_period_seconds=TRIGGER_POLL_SECONDS)
        try:
            wait_for(trigger, f"job {check.job_id} run {run_id}", timeout=check.timeout_seconds)
        except WaitFailedError as exc:
            return CheckResult(check.name, check.kind, check.critical, False, str(exc))
        state = hook.get_run_state(run_id)
    seconds = int(hook.get_run(run_id).get("run_duration") or 0) / 1000  # the run's own, whichever attempt waited for it
    detail = f"job {check.job_id} run {run_id}: {state.result_state or state.life_cycle_state} in {seconds:.1f} s"
    if state.state_message:
        detail += f" ({state.state_message})"
    return CheckResult(
        check.name, check.kind, check.critical, state.is_successful, detail, {"run_id": run_id, "seconds": round(seconds, 1)}
    )


register_data_kind(UnityCatalogTarget, lambda config, _environment: UnityCatalogDataTarget(config=config))
register_app_kind(DatabricksAppTarget, lambda config, _environment: DatabricksApp(config=config))
register_app_kind(MlflowAliasTarget, lambda config, _environment: MlflowAlias(config=config))
