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
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from airflow_rollout.versions import VersionScheme

if TYPE_CHECKING:
    from collections.abc import Iterable

# The project directory holds include/ (profiles, checklists, migrations) beside dags/. An installed (non-editable)
# package cannot find it from its own path, so a deployment names it: ROLLOUT_PROJECT_DIR (the compose file sets
# /opt/airflow). Unset, the source checkout this package was installed from in editable mode (`make install`).
PROJECT_ROOT = Path(os.environ.get("ROLLOUT_PROJECT_DIR") or Path(__file__).resolve().parents[2])
INCLUDE_DIR = PROJECT_ROOT / "include"
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
CONN_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"
SQL_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
# {state_dir} is ROLLOUT_STATE_DIR wherever it appears (as in resolve_path); {app_dir} a local process's own directory.
COMMAND_PLACEHOLDERS = frozenset({"version", "port", "python", "include", "state_dir", "app_dir"})
# What CommandMigrator.expand replaces in a migration command and its `env` values.
MIGRATION_PLACEHOLDERS = frozenset({"version", "python", "include"})


def systems_dir() -> Path:
    """Where profiles live; ROLLOUT_SYSTEMS_DIR lets tests and other checkouts point elsewhere."""
    return Path(os.environ.get("ROLLOUT_SYSTEMS_DIR", INCLUDE_DIR / "systems"))


def state_dir() -> Path:
    """Where pid files, logs and backups of this machine's releases are kept."""
    return Path(os.environ.get("ROLLOUT_STATE_DIR", PROJECT_ROOT / ".state"))


class ProfileError(ValueError):
    """A profile that cannot be used; the message is meant for the operator as it stands."""


class StrictModel(BaseModel):
    """A profile section: unknown fields are errors (a misspelt key must not be silently ignored), values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise ValueError("expected a URL path starting with '/' and without spaces, e.g. /health")
    return value


UrlPath = Annotated[str, AfterValidator(_url_path)]


def _inside_include(value: str) -> str:
    if ".." in Path(value).parts:
        raise ValueError(f"{value!r} climbs out with '..': give a path inside include/ or an absolute one")
    return value


IncludePath = Annotated[str, AfterValidator(_inside_include)]


def refuse_unknown_placeholders(texts: Iterable[str], allowed: frozenset[str]) -> None:
    """Every `{name}` in `texts` must be one of `allowed`: a typo would otherwise reach the program literally."""
    for text in texts:
        unknown = sorted(set(re.findall(r"{([^{}]*)}", text)) - allowed)
        if unknown:
            name = unknown[0]
            shell = f"; for a shell variable in a shell script write ${name}" if f"${{{name}}}" in text else ""
            raise ValueError(
                f"unknown placeholder {{{name}}} in {text!r}; allowed: {', '.join('{' + p + '}' for p in sorted(allowed))}{shell}"
            )


def resolve_path(value: str) -> Path:
    """A profile path: absolute, `{state_dir}/...` (this machine's state directory), or relative to include/."""
    if value.startswith("{state_dir}"):
        return state_dir() / value.removeprefix("{state_dir}").lstrip("/")
    path = Path(value)
    return path if path.is_absolute() else INCLUDE_DIR / path


Name = Annotated[str, Field(pattern=NAME_PATTERN)]
ConnId = Annotated[str, Field(pattern=CONN_ID_PATTERN)]
SqlIdentifier = Annotated[str, Field(pattern=SQL_IDENTIFIER_PATTERN)]


class BackupFormat(StrEnum):
    CUSTOM = "custom"
    DIRECTORY = "directory"


class BackupSettings(StrictModel):
    format: BackupFormat = BackupFormat.CUSTOM
    jobs: Annotated[int, Field(ge=1, le=16)] = 1
    compress: Annotated[int, Field(ge=0, le=9)] = 6
    directory: Path | None = None

    @model_validator(mode="after")
    def _jobs_need_directory_format(self) -> BackupSettings:
        if self.jobs > 1 and self.format is not BackupFormat.DIRECTORY:
            raise ValueError("parallel jobs (jobs > 1) need format: directory; pg_dump writes custom format alone")
        return self


class SqlFileMigrations(StrictModel):
    """Ordered `*.sql` files; a sub-directory named after a version holds what that version needs."""

    kind: Literal["sql_files"]
    path: IncludePath = Field(description="relative to include/, or absolute")

    def resolved_path(self) -> Path:
        return resolve_path(self.path)

    def connection_ids(self) -> list[str]:
        return []


class CommandMigrations(StrictModel):
    """A migration tool of the system's own, such as `alembic upgrade head`, run with an argument list."""

    kind: Literal["command"]
    command: list[str] = Field(min_length=1, description="{version}, {python} and {include} are replaced; no other placeholder")
    env: dict[Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,62}$")], str] = Field(
        default_factory=dict, description="extra environment, e.g. the compose file's tag variable: {BACKEND_TAG: '{version}'}"
    )
    env_from_connections: dict[str, ConnId] = Field(default_factory=dict)
    timeout_seconds: Annotated[int, Field(ge=1)] = 900

    @field_validator("command", "env")
    @classmethod
    def _known_placeholders(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        refuse_unknown_placeholders(value.values() if isinstance(value, dict) else value, MIGRATION_PLACEHOLDERS)
        return value

    def connection_ids(self) -> list[str]:
        return list(self.env_from_connections.values())


K8S_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
K8sName = Annotated[str, Field(pattern=K8S_NAME_PATTERN)]
ImageRepository = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*(:[0-9]+)?(/[a-z0-9._-]+)*$", max_length=255)]


class KubernetesJobMigrations(StrictModel):
    """The system's migration tool (seed 002's `alembic upgrade head`) as a Job of the new version's image."""

    kind: Literal["kubernetes_job"]
    conn_id: ConnId
    namespace: K8sName
    image: ImageRepository = Field(description="the repository; the tag is the version")
    command: list[str] = Field(min_length=1)
    env_from_secret: K8sName | None = Field(default=None, description="a Secret in the namespace holding DATABASE_URL and the like")
    timeout_seconds: Annotated[int, Field(ge=1)] = 900

    def connection_ids(self) -> list[str]:
        return [self.conn_id]


Migrations = Annotated[SqlFileMigrations | CommandMigrations | KubernetesJobMigrations, Field(discriminator="kind")]


class TargetConfig(StrictModel):
    """What every target kind's config has. A kind narrows `kind` to its own `Literal["..."]` tag and lives,
    with its runtime class, in one module of `airflow_rollout.targets` (see `targets.registry`)."""

    kind: str
    name: Name

    def connection_ids(self) -> list[str]:
        """The Airflow connections this target uses: preflight checks each, and their secrets are masked."""
        return []


class DataTargetConfig(TargetConfig):
    """A data target's config: backed up, migrated and restored by a release."""

    def needs_apps_stopped_to_migrate(self) -> str | None:
        """Why this target needs no app connected when the migration begins (deploy_order: stop_first), or None."""
        return None


class AppTargetConfig(TargetConfig):
    """An app target's config: deployed and rolled back by a release."""


class Readiness(StrictModel):
    path: UrlPath = "/health"
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 60


class ServingAppConfig(AppTargetConfig):
    """An app target that serves HTTP: a release waits for its readiness path to answer once a version starts."""

    readiness: Readiness = Field(default_factory=Readiness)


class JsonShape(StrictModel):
    type: Literal["object", "list"]
    keys: list[str] = Field(default_factory=list, description="keys every object (or every list item) must have")


HTTP_STATUS_RANGE = (100, 599)
HttpStatus = Annotated[int, Field(ge=HTTP_STATUS_RANGE[0], le=HTTP_STATUS_RANGE[1])]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")]


def _header_patterns(value: dict[str, str]) -> dict[str, str]:
    for name, pattern in value.items():
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{name}: `{pattern}` is not a valid Python regular expression: {exc}") from None
    return value


# response headers, each held to a Python regular expression (re.fullmatch) that must compile
HeaderPatterns = Annotated[dict[HeaderName, str], AfterValidator(_header_patterns)]


def _text_regex(value: str) -> str:
    try:
        re.compile(value)  # as written, so that the position in the error is the operator's
        text_pattern(value, "1.0.0")
    except re.error as exc:
        raise ValueError(f"`{value}` is not a valid Python regular expression: {exc}") from None
    return value


# a regular expression a whole stripped body must match (re.fullmatch); '{version}' stands for the version, matched literally
TextRegex = Annotated[str, AfterValidator(_text_regex)]


class RequestAuth(StrictModel):
    """Who a request is sent as, from an Airflow connection (a secret never goes in YAML).

    `bearer`: the header `Authorization: Bearer <the connection's password>` (a Databricks App's OAuth token);
    `json_login`: the JSON body gets `username` and `password`, the connection's login and password.
    """

    conn_id: ConnId
    kind: Literal["bearer", "json_login"] = "bearer"
    refused_without: list[HttpStatus] = Field(
        default_factory=list,
        description="statuses the same request must get without the secret (no token; an empty password), e.g. [401, 403]: "
        "proof that the endpoint is not open to anyone; empty: not asked",
    )


class HttpCheck(StrictModel):
    """One request; passes when the status, the body's text, the JSON fields and the JSON shape are as expected."""

    kind: Literal["http"]
    name: Name
    app: Name
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    path: UrlPath
    json_body: dict[str, Any] | list[Any] | None = None
    auth: RequestAuth | None = None
    headers: dict[HeaderName, str] = Field(
        default_factory=dict, description="request headers sent as written (an Origin, an Accept); a secret goes in `auth`, never here"
    )
    # int | list[int], each checked below, rather than HttpStatus | list[HttpStatus]: a status out of range would fail
    # both sides of that union and be reported twice, once as "should be a valid list", which the operator never wrote
    expect_status: int | list[int] = Field(default=200, description="the status, or the statuses any of which passes")
    expect_headers: HeaderPatterns = Field(
        default_factory=dict, description="response header: a Python regular expression its whole value must match (re.fullmatch)"
    )
    absent_headers: list[HeaderName] = Field(
        default_factory=list, description="response headers that must not be sent (a foreign Origin gets no Access-Control-Allow-Origin)"
    )
    expect_json: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="field: value; '{version}' stands for the version being checked"
    )
    expect_shape: JsonShape | None = None
    expect_at_least: dict[str, float] = Field(default_factory=dict, description="field: lowest acceptable number (seed 004's F1 >= 0.8)")
    expect_text: str | None = Field(
        default=None, description="the whole body, stripped of surrounding whitespace, equals this; '{version}' stands for the version"
    )
    expect_text_regex: TextRegex | None = Field(
        default=None,
        description="a Python regular expression the whole stripped body must match (re.fullmatch); '{version}' stands for the "
        "version, matched literally",
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    critical: bool = True

    @field_validator("expect_status")
    @classmethod
    def _http_statuses(cls, value: int | list[int]) -> int | list[int]:
        for status in value if isinstance(value, list) else [value]:
            if status < HTTP_STATUS_RANGE[0]:
                raise ValueError(f"Input should be greater than or equal to {HTTP_STATUS_RANGE[0]}")
            if status > HTTP_STATUS_RANGE[1]:
                raise ValueError(f"Input should be less than or equal to {HTTP_STATUS_RANGE[1]}")
        return value

    def accepted_statuses(self) -> list[int]:
        return self.expect_status if isinstance(self.expect_status, list) else [self.expect_status]

    @model_validator(mode="after")
    def _login_goes_in_an_object(self) -> HttpCheck:
        if self.auth and self.auth.kind == "json_login" and isinstance(self.json_body, list):
            raise ValueError("auth kind json_login adds username and password to a JSON object: json_body cannot be a list")
        return self


def text_pattern(regex: str, version: str) -> re.Pattern[str]:
    """An `expect_text_regex` with `{version}` replaced by the version, escaped so that its dots match only dots."""
    return re.compile(regex.replace("{version}", re.escape(version)))


class LatencyCheck(StrictModel):
    """N requests at concurrency C (the seeds' `ab -n 1000 -c 10`) -> p50, p95, p99 and error rate."""

    kind: Literal["latency"]
    name: Name
    app: Name
    method: Literal["GET", "POST"] = "GET"
    path: UrlPath
    json_body: dict[str, Any] | list[Any] | None = None
    auth: RequestAuth | None = Field(default=None, description="every request sent as this connection, as an http check's")
    requests: Annotated[int, Field(ge=1, le=100_000)] = 1000
    concurrency: Annotated[int, Field(ge=1, le=256)] = 10
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10
    max_p95_ms: Annotated[float, Field(gt=0)] | None = None
    max_mean_ms: Annotated[float, Field(gt=0)] | None = None
    min_rps: Annotated[float, Field(gt=0)] | None = None
    max_error_rate: Annotated[float, Field(ge=0, le=1)] | None = Field(default=None, description="seed 003's 'Failed requests: 0' is 0")
    critical: bool = False

    @model_validator(mode="after")
    def _concurrency_within_requests(self) -> LatencyCheck:
        if self.concurrency > self.requests:
            raise ValueError("concurrency cannot exceed requests")
        if self.auth and self.auth.refused_without:
            raise ValueError("auth.refused_without belongs to an http check: a load probe measures, it does not prove a refusal")
        return self


class ServingEndpointCheck(StrictModel):
    """A model serving endpoint is READY and not stuck in a failed config update (seed 001)."""

    kind: Literal["serving_endpoint"]
    name: Name
    conn_id: ConnId
    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
    critical: bool = True


class DatabricksJobCheck(StrictModel):
    """A Databricks job run to its end as a check (seed 001's batch inference); passes on SUCCESS."""

    kind: Literal["databricks_job"]
    name: Name
    conn_id: ConnId
    job_id: Annotated[int, Field(ge=1)]
    timeout_seconds: Annotated[float, Field(gt=0, le=24 * 3600)] = 3600
    critical: bool = True


Check = Annotated[HttpCheck | LatencyCheck | ServingEndpointCheck | DatabricksJobCheck, Field(discriminator="kind")]


class RollbackCriteria(StrictModel):
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


class DeployOrder(StrEnum):
    MIGRATE_LIVE = "migrate_live"
    STOP_FIRST = "stop_first"


class VacuumSchedule(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    NEVER = "never"


class MaintenanceSettings(StrictModel):
    """What the scheduled maintenance DAGs keep and check for this system."""

    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    # The newest backup may be at most this old: daily backups need a day plus some slack.
    rpo_hours: Annotated[float, Field(gt=0)] = 26
    # A restore drill must finish within this (seed 002: RTO < 4 h).
    rto_hours: Annotated[float, Field(gt=0)] = 4
    vacuum: VacuumSchedule = VacuumSchedule.WEEKLY


class SlackFiles(StrictModel):
    """Where files (the weekly trend plot) are uploaded: a `slack` connection holding a bot token."""

    conn_id: ConnId
    channel_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{6,20}$")]


class Approver(StrictModel):
    id: str = Field(min_length=1, max_length=250)
    name: str | None = None


class SignOff(StrictModel):
    """Who signs off the checklist's required manual items, per role, and how long the release waits."""

    roles: dict[Annotated[str, Field(min_length=1, max_length=80)], list[Approver]] = Field(default_factory=dict)
    timeout_minutes: Annotated[float, Field(gt=0, le=7 * 24 * 60)] = 240


class SystemProfile(StrictModel):
    name: Name
    description: str = ""
    ledger_conn_id: ConnId
    slack_conn_id: ConnId | None = None
    slack_files: SlackFiles | None = None
    # Typed by the kinds' base classes; `profile_model()` validates them against every registered kind.
    data_targets: list[DataTargetConfig] = Field(default_factory=list)
    app_targets: list[AppTargetConfig] = Field(min_length=1)
    checks: list[Check] = Field(min_length=1)
    deploy_order: DeployOrder = Field(
        default=DeployOrder.MIGRATE_LIVE,
        description="migrate_live: migrate while the old version serves, then switch; stop_first: stop the old version, "
        "migrate, start the new one (for services whose old code must not run on the new schema; the downtime is judged)",
    )
    version_scheme: VersionScheme = Field(
        default=VersionScheme.SEMVER,
        description="which of two versions is the newer (the migrations a release applies): semver (a -suffix is a "
        "pre-release), pep440, or patch_suffix (seed 003: v1.0 < v1.0-p1 < v1.0-p2 < v1.1; other suffixes are pre-releases)",
    )
    rollback_criteria: RollbackCriteria = Field(default_factory=RollbackCriteria)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    approvers: list[Approver] = Field(default_factory=list, description="who may answer an 'investigate' decision; empty: any user")
    sign_off: SignOff = Field(default_factory=SignOff)
    reachable: list[ConnId] = Field(
        default_factory=list,
        description="services the release needs up but does not change (seed 002's Redis, ClickHouse): preflight connects",
    )

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
        if self.deploy_order is not DeployOrder.STOP_FIRST:
            for target in self.data_targets:
                if why := target.needs_apps_stopped_to_migrate():
                    raise ValueError(
                        f"data target {target.name!r}: {why}, but deploy_order {self.deploy_order.value} migrates while "
                        "the old version is connected: set deploy_order: stop_first"
                    )
        apps = {t.name for t in self.app_targets}
        for check in self.checks:
            if isinstance(check, HttpCheck | LatencyCheck) and check.app not in apps:
                raise ValueError(
                    f"check {check.name!r} names app {check.app!r}, which is not among app_targets ({', '.join(sorted(apps))})"
                )
        return self

    def app(self, name: str) -> AppTargetConfig:
        return next(t for t in self.app_targets if t.name == name)

    def connection_ids(self) -> list[str]:
        """Every connection the release will use, in the order preflight should check them."""
        ids = [self.ledger_conn_id]
        for target in [*self.data_targets, *self.app_targets]:
            ids.extend(target.connection_ids())
        ids.extend(c.conn_id for c in self.checks if isinstance(c, ServingEndpointCheck | DatabricksJobCheck))
        ids.extend(c.auth.conn_id for c in self.checks if isinstance(c, HttpCheck | LatencyCheck) and c.auth)
        ids.extend(self.reachable)
        if self.slack_conn_id:
            ids.append(self.slack_conn_id)
        if self.slack_files:
            ids.append(self.slack_files.conn_id)
        return list(dict.fromkeys(ids))


_profile_model: tuple[int, type[SystemProfile]] | None = None


def _tagged_union(models: list[type[TargetConfig]]) -> Any:
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007 - built at run time from the registry


def profile_model() -> type[SystemProfile]:
    """SystemProfile with `data_targets` and `app_targets` validated as tagged unions of the registered kinds."""
    global _profile_model  # noqa: PLW0603 - rebuilt only when a kind is registered
    from airflow_rollout.targets import registry

    generation = registry.generation()
    if _profile_model is None or _profile_model[0] != generation:
        # In tag order: the order modules happen to be imported in must not change what an error message lists.
        data: Any = _tagged_union([kind.config for _, kind in sorted(registry.data_kinds().items())])
        apps: Any = _tagged_union([kind.config for _, kind in sorted(registry.app_kinds().items())])
        model = create_model(
            "SystemProfile",
            __base__=SystemProfile,
            __module__=__name__,
            data_targets=(list[data], Field(default_factory=list)),
            app_targets=(list[apps], Field(min_length=1)),
        )
        _profile_model = (generation, model)
    return _profile_model[1]


def configured_systems(directory: Path | None = None) -> list[str]:
    """Names of the profiles present; reads file names only, so it is safe at DAG parse time."""
    directory = directory or systems_dir()
    return sorted(p.stem for p in directory.glob("*.yaml") if re.fullmatch(NAME_PATTERN, p.stem))


# Tags of the tagged unions that are not target kinds; the target kinds' come from the registry.
CHECK_AND_MIGRATION_TAGS = frozenset({"http", "latency", "serving_endpoint", "databricks_job", "sql_files", "command", "kubernetes_job"})


def discriminator_tags() -> frozenset[str]:
    from airflow_rollout.targets import registry

    return CHECK_AND_MIGRATION_TAGS | frozenset(registry.data_kinds()) | frozenset(registry.app_kinds())


def _format_location(loc: tuple[int | str, ...]) -> str:
    tags = discriminator_tags()
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
        elif tag_position and item in tags:
            continue
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def parse_profile(data: Any, source: str) -> SystemProfile:
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping of profile fields at the top level, got {type(data).__name__}")
    try:
        return profile_model().model_validate(data)
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
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the same safe constructors; libyaml's parser when built with it
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
        # Parsed once, by libyaml where PyYAML has it: every task of a release reads its profile (and a checklist task
        # its checklist), and the pure-Python parser made that a tenth of a second each time.
        loader = SAFE_LOADER(raw.decode("utf-8"))
        try:
            root = loader.get_single_node()
            if root is None:
                return None
            try:
                size = _expanded_size(root, {}, set())
            except ProfileError as exc:
                raise ProfileError(f"{path}: {exc}") from None
            if size > MAX_PROFILE_NODES:
                raise ProfileError(
                    f"{path}: expands to {size} YAML nodes through its aliases (at most {MAX_PROFILE_NODES}): an alias bomb?"
                )
            return loader.construct_document(root)  # only now, from the nodes checked above, are the aliases expanded
        finally:
            loader.dispose()
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
