"""System profiles: `include/systems/<name>.yaml`, validated when loaded.

A profile says what a release of one system touches (data targets, app targets), how it is checked and
when it is rolled back. It names Airflow connections by id and never holds a secret. Any error names the
file, the field and what was expected, so the operator can fix the YAML without reading this code.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = PROJECT_ROOT / "include"
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
CONN_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"
SQL_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
COMMAND_PLACEHOLDERS = frozenset({"version", "port", "python", "include", "state_dir"})


def systems_dir() -> Path:
    """Where profiles live; ROLLOUT_SYSTEMS_DIR lets tests and other checkouts point elsewhere."""
    return Path(os.environ.get("ROLLOUT_SYSTEMS_DIR", INCLUDE_DIR / "systems"))


def state_dir() -> Path:
    """Where pid files, logs and backups of this machine's releases are kept."""
    return Path(os.environ.get("ROLLOUT_STATE_DIR", PROJECT_ROOT / ".state"))


class ProfileError(ValueError):
    """A profile that cannot be used; the message is meant for the operator as it stands."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError("expected a URL path starting with '/' and without spaces, e.g. /health")
    return value


UrlPath = Annotated[str, AfterValidator(_url_path)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
ConnId = Annotated[str, Field(pattern=CONN_ID_PATTERN)]
SqlIdentifier = Annotated[str, Field(pattern=SQL_IDENTIFIER_PATTERN)]


class BackupFormat(StrEnum):
    CUSTOM = "custom"
    DIRECTORY = "directory"


class BackupSettings(_Strict):
    format: BackupFormat = BackupFormat.CUSTOM
    jobs: Annotated[int, Field(ge=1, le=16)] = 1
    compress: Annotated[int, Field(ge=0, le=9)] = 6
    directory: Path | None = None

    @model_validator(mode="after")
    def _jobs_need_directory_format(self) -> BackupSettings:
        if self.jobs > 1 and self.format is not BackupFormat.DIRECTORY:
            raise ValueError("parallel jobs (jobs > 1) need format: directory; pg_dump writes custom format alone")
        return self


class SqlFileMigrations(_Strict):
    """Ordered `*.sql` files; a sub-directory named after a version holds what that version needs."""

    kind: Literal["sql_files"]
    path: str = Field(description="relative to include/, or absolute")

    @field_validator("path")
    @classmethod
    def _no_climbing_out(cls, value: str) -> str:
        if ".." in Path(value).parts:
            raise ValueError(f"{value!r} climbs out with '..': give a path inside include/ or an absolute one")
        return value

    def resolved_path(self) -> Path:
        path = Path(self.path)
        return path if path.is_absolute() else INCLUDE_DIR / path


class CommandMigrations(_Strict):
    """A migration tool of the system's own, such as `alembic upgrade head`, run with an argument list."""

    kind: Literal["command"]
    command: list[str] = Field(min_length=1)
    env_from_connections: dict[str, ConnId] = Field(default_factory=dict)
    timeout_seconds: Annotated[int, Field(ge=1)] = 900


Migrations = Annotated[SqlFileMigrations | CommandMigrations, Field(discriminator="kind")]


class PostgresTarget(_Strict):
    kind: Literal["postgres"]
    name: Name
    conn_id: ConnId
    schemas: list[SqlIdentifier] = Field(default_factory=lambda: ["public"], min_length=1)
    volatile_tables: list[SqlIdentifier] = Field(
        default_factory=list,
        description="tables the running app writes to; left out of the corruption check",
    )
    backup: BackupSettings = Field(default_factory=BackupSettings)
    migrations: Migrations | None = None


DataTarget = Annotated[PostgresTarget, Field(discriminator="kind")]


class Readiness(_Strict):
    path: UrlPath = "/health"
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60


class LocalProcessTarget(_Strict):
    """A service run on this machine, one process per version, started from an argument list."""

    kind: Literal["local_process"]
    name: Name
    command: list[str] = Field(min_length=1)
    port: Annotated[int, Field(ge=1024, le=65535)]
    host: str = "127.0.0.1"
    env_from_connections: dict[str, ConnId] = Field(default_factory=dict)
    readiness: Readiness = Field(default_factory=Readiness)
    stop_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 15

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, command: list[str]) -> list[str]:
        for arg in command:
            unknown = set(re.findall(r"{([^{}]*)}", arg)) - COMMAND_PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"unknown placeholder {{{sorted(unknown)[0]}}} in {arg!r}; "
                    f"allowed: {', '.join('{' + p + '}' for p in sorted(COMMAND_PLACEHOLDERS))}"
                )
        return command

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


AppTarget = Annotated[LocalProcessTarget, Field(discriminator="kind")]


class JsonShape(_Strict):
    type: Literal["object", "list"]
    keys: list[str] = Field(default_factory=list, description="keys every object (or every list item) must have")


class HttpCheck(_Strict):
    """One request; passes when the status, the JSON fields and the JSON shape are as expected."""

    kind: Literal["http"]
    name: Name
    app: Name
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: UrlPath
    json_body: dict[str, Any] | list[Any] | None = None
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200
    expect_json: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="field: value; '{version}' stands for the version being checked"
    )
    expect_shape: JsonShape | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    critical: bool = True


class LatencyCheck(_Strict):
    """N requests at concurrency C (the seeds' `ab -n 1000 -c 10`) -> p50, p95, p99 and error rate."""

    kind: Literal["latency"]
    name: Name
    app: Name
    method: Literal["GET", "POST"] = "GET"
    path: UrlPath
    json_body: dict[str, Any] | list[Any] | None = None
    requests: Annotated[int, Field(ge=1, le=100_000)] = 1000
    concurrency: Annotated[int, Field(ge=1, le=256)] = 10
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    max_p95_ms: Annotated[float, Field(gt=0)] | None = None
    max_mean_ms: Annotated[float, Field(gt=0)] | None = None
    min_rps: Annotated[float, Field(gt=0)] | None = None
    critical: bool = False

    @model_validator(mode="after")
    def _concurrency_within_requests(self) -> LatencyCheck:
        if self.concurrency > self.requests:
            raise ValueError("concurrency cannot exceed requests")
        return self


Check = Annotated[HttpCheck | LatencyCheck, Field(discriminator="kind")]


class RollbackCriteria(_Strict):
    """Seed 003's "Rollback Decision Criteria", each number overridable per profile."""

    error_rate_rollback: Annotated[float, Field(ge=0, le=1)] = 0.10
    error_rate_investigate: Annotated[float, Field(gt=0, le=1)] = 0.01
    latency_degradation_investigate: Annotated[float, Field(ge=0)] = 0.20
    latency_degradation_rollback: Annotated[float, Field(ge=0)] = 0.50
    latency_min_delta_ms: Annotated[float, Field(ge=0)] = 25.0
    downtime_rollback_seconds: Annotated[float, Field(ge=0)] = 300
    investigate_timeout_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 30

    @model_validator(mode="after")
    def _investigate_below_rollback(self) -> RollbackCriteria:
        if self.error_rate_investigate > self.error_rate_rollback:
            raise ValueError("error_rate_investigate must not exceed error_rate_rollback")
        if self.latency_degradation_investigate > self.latency_degradation_rollback:
            raise ValueError("latency_degradation_investigate must not exceed latency_degradation_rollback")
        return self


class VacuumSchedule(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    NEVER = "never"


class MaintenanceSettings(_Strict):
    """What the scheduled maintenance DAGs keep and check for this system."""

    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    # The newest backup may be at most this old: daily backups need a day plus some slack.
    rpo_hours: Annotated[float, Field(gt=0)] = 26
    # A restore drill must finish within this (seed 002: RTO < 4 h).
    rto_hours: Annotated[float, Field(gt=0)] = 4
    vacuum: VacuumSchedule = VacuumSchedule.WEEKLY


class SlackFiles(_Strict):
    """Where files (the weekly trend plot) are uploaded: a `slack` connection holding a bot token."""

    conn_id: ConnId
    channel_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{6,20}$")]


class Approver(_Strict):
    id: str = Field(min_length=1, max_length=250)
    name: str | None = None


class SignOff(_Strict):
    """Who signs off the checklist's required manual items, per role, and how long the release waits."""

    roles: dict[Annotated[str, Field(min_length=1, max_length=80)], list[Approver]] = Field(default_factory=dict)
    timeout_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 240


class SystemProfile(_Strict):
    name: Name
    description: str = ""
    ledger_conn_id: ConnId
    slack_conn_id: ConnId | None = None
    slack_files: SlackFiles | None = None
    data_targets: list[DataTarget] = Field(default_factory=list)
    app_targets: list[AppTarget] = Field(min_length=1)
    checks: list[Check] = Field(min_length=1)
    rollback_criteria: RollbackCriteria = Field(default_factory=RollbackCriteria)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    approvers: list[Approver] = Field(default_factory=list, description="who may answer an 'investigate' decision; empty: any user")
    sign_off: SignOff = Field(default_factory=SignOff)

    @model_validator(mode="after")
    def _references_resolve(self) -> SystemProfile:
        for kind, names in (
            ("data target", [t.name for t in self.data_targets]),
            ("app target", [t.name for t in self.app_targets]),
            ("check", [c.name for c in self.checks]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(duplicates)}")
        apps = {t.name for t in self.app_targets}
        for check in self.checks:
            if check.app not in apps:
                raise ValueError(
                    f"check {check.name!r} names app {check.app!r}, which is not among app_targets ({', '.join(sorted(apps))})"
                )
        return self

    def app(self, name: str) -> LocalProcessTarget:
        return next(t for t in self.app_targets if t.name == name)

    def connection_ids(self) -> list[str]:
        """Every connection the release will use, in the order preflight should check them."""
        ids = [self.ledger_conn_id]
        for data in self.data_targets:
            ids.append(data.conn_id)
            if isinstance(data.migrations, CommandMigrations):
                ids.extend(data.migrations.env_from_connections.values())
        for app in self.app_targets:
            ids.extend(app.env_from_connections.values())
        if self.slack_conn_id:
            ids.append(self.slack_conn_id)
        if self.slack_files:
            ids.append(self.slack_files.conn_id)
        return list(dict.fromkeys(ids))


def configured_systems(directory: Path | None = None) -> list[str]:
    """Names of the profiles present; reads file names only, so it is safe at DAG parse time."""
    directory = directory or systems_dir()
    return sorted(p.stem for p in directory.glob("*.yaml") if re.fullmatch(NAME_PATTERN, p.stem))


DISCRIMINATOR_TAGS = frozenset({"postgres", "local_process", "http", "latency", "sql_files", "command"})


def _format_location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    previous: int | str | None = None
    for item in loc:
        # pydantic inserts the discriminator's value where a tagged union sits: after a list index, or
        # as the value of `migrations`. The operator never wrote it, so it is left out; a field that
        # happens to share its name (a migration's `command`) is not.
        tag_position = isinstance(previous, int) or previous == "migrations"
        previous = item
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif tag_position and item in DISCRIMINATOR_TAGS:
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def parse_profile(data: Any, source: str) -> SystemProfile:
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping of profile fields at the top level, got {type(data).__name__}")
    try:
        return SystemProfile.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {len(exc.errors())} problem(s) in the system profile:"]
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check its spelling and indentation)"
            elif error["type"] == "string_pattern_mismatch":
                message = f"{error['input']!r} does not match {error['ctx']['pattern']}"
            lines.append(f"  - {_format_location(error['loc'])}: {message}")
        raise ProfileError("\n".join(lines)) from None


MAX_PROFILE_BYTES = 256 * 1024
MAX_PROFILE_NODES = 20_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many nodes the document has once its aliases are expanded (memoised: linear in the file)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise ProfileError("a YAML alias refers to a node that contains it (a recursive document)")
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    total = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    sizes[key] = total
    return total


def read_yaml(path: Path) -> Any:
    """yaml.safe_load, refusing files too large to be a profile and alias bombs that expand without bound."""
    raw = path.read_bytes()
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: {len(raw)} bytes; a profile is at most {MAX_PROFILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            try:
                size = _expanded_size(root, {}, set())
            except ProfileError as exc:
                raise ProfileError(f"{path}: {exc}") from None
            if size > MAX_PROFILE_NODES:
                raise ProfileError(
                    f"{path}: expands to {size} YAML nodes through its aliases (at most {MAX_PROFILE_NODES}): an alias bomb?"
                )
        return yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not UTF-8 text: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None


def load_profile(system: str, directory: Path | None = None) -> SystemProfile:
    """Load and validate the profile of `system`; raises ProfileError naming file and field."""
    directory = directory or systems_dir()
    if not re.fullmatch(NAME_PATTERN, system or ""):
        raise ProfileError(f"{system!r} is not a system name (expected {NAME_PATTERN})")
    path = directory / f"{system}.yaml"
    if not path.is_file():
        known = ", ".join(configured_systems(directory)) or "none"
        raise ProfileError(f"unknown system {system!r}: no {path} (configured systems: {known})")
    profile = parse_profile(read_yaml(path), str(path))
    if profile.name != system:
        raise ProfileError(f"{path}: name: {profile.name!r} must equal the file name {system!r}")
    return profile
