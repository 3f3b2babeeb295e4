"""Checklists: the seed checklists as data, `include/checklists/<system>.yaml`, validated when loaded.

A checklist keeps the seed's own sections and item texts, so the people who write checklists today
recognise it, and says for every item how it is done:

- `check`: automated, a kind plus arguments (http, sql, connection, backup_fresh, latency, file_present,
  command, python); the release runs it in the item's phase and keeps the evidence;
- `manual`: a role signs off (`manual: Tech Lead`, or `{role: Tech Lead, required: true}` when the
  release must wait for that role's approval before anything changes);
- `not_applicable`: the reason it does not apply to this system;
- `derived: true`: a parent (a seed's bold header over sub-items) done when all its sub-items are done, failed
  when one failed; it needs no person of its own.

An item's `phase` says when it is done; a section's `phase` is the default of its items. Errors name the
file, the item and the field.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airflow_rollout.config import (
    INCLUDE_DIR,
    NAME_PATTERN,
    ConnId,
    HeaderName,
    HeaderPatterns,
    HttpStatus,
    JsonShape,
    Name,
    ProfileError,
    RequestAuth,
    TextRegex,
    UrlPath,
    read_yaml,
)
from airflow_rollout.item_checks.airflow_api import AirflowApiItemCheck
from airflow_rollout.item_checks.clickhouse import ClickHouseItemCheck
from airflow_rollout.item_checks.databricks_api import DatabricksApiItemCheck
from airflow_rollout.item_checks.delta_table import DeltaTableItemCheck
from airflow_rollout.item_checks.env_file import EnvFileItemCheck, EnvName
from airflow_rollout.item_checks.expectation import ValueExpectation, read_only_statement
from airflow_rollout.item_checks.github_api import GitHubApiItemCheck
from airflow_rollout.item_checks.kubernetes import KubernetesItemCheck
from airflow_rollout.item_checks.monitoring import MonitoringItemCheck
from airflow_rollout.item_checks.redis import RedisItemCheck
from airflow_rollout.item_checks.tls import TlsItemCheck

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class ChecklistError(ProfileError):
    """A checklist that cannot be used; the message names file, item and field."""


class Phase(StrEnum):
    PRE_DEPLOY = "pre-deploy"
    BACKUP = "backup"
    MIGRATE = "migrate"
    DEPLOY = "deploy"
    VERIFY = "verify"
    POST_DEPLOY = "post-deploy"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


RELEASE_PHASES = (Phase.PRE_DEPLOY, Phase.BACKUP, Phase.MIGRATE, Phase.DEPLOY, Phase.VERIFY, Phase.POST_DEPLOY)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpItemCheck(_Strict):
    """A request to one of the system's apps; passes on the expected status (and JSON fields).

    With `auth` it is sent with a connection's secret, and `auth.refused_without` makes it also prove that the
    same request without the secret is refused: an item about authentication must fail on an open endpoint.
    """

    kind: Literal["http"]
    app: Name
    path: UrlPath
    method: Literal["GET", "HEAD", "POST"] = "GET"
    auth: RequestAuth | None = None
    headers: dict[HeaderName, str] = Field(default_factory=dict, description="request headers as written; a secret goes in `auth`")
    expect_status: HttpStatus | list[HttpStatus] = Field(default=200, description="the status, or the statuses any of which passes")
    expect_headers: HeaderPatterns = Field(
        default_factory=dict, description="response header: a regular expression its whole value must match"
    )
    absent_headers: list[HeaderName] = Field(default_factory=list, description="response headers that must not be sent")
    expect_json: dict[str, str | int | float | bool] = Field(default_factory=dict)
    rate_limited_within: Annotated[int, Field(ge=2, le=1000)] | None = Field(
        default=None, description="send the request up to this many times back to back: passes at the first HTTP 429"
    )
    expect_shape: JsonShape | None = Field(
        default=None, description="the JSON answer is an object or a list whose every item has these keys (a listing endpoint)"
    )
    load_assets: bool = Field(
        default=False,
        description="the page's own assets (script, style sheet, icon, image, and what its style sheets load: fonts) each answer "
        "200; at least one must be referenced",
    )
    asset_headers: HeaderPatterns = Field(
        default_factory=dict, description="with load_assets: each asset's response headers (Cache-Control), a regular expression each"
    )
    expect_text_regex: TextRegex | None = Field(
        default=None, description="a regular expression the whole stripped body must match (a page that is not empty: `(?s).+`)"
    )

    @model_validator(mode="after")
    def _burst_expects_429_only(self) -> HttpItemCheck:
        if self.rate_limited_within is not None and (
            self.expect_json
            or self.expect_headers
            or self.absent_headers
            or self.expect_status != 200
            or self.expect_shape
            or self.expect_text_regex
        ):
            raise ValueError(
                "rate_limited_within expects HTTP 429 only: drop expect_status, expect_headers, absent_headers, expect_json,"
                " expect_shape and expect_text_regex"
            )
        if self.asset_headers and not self.load_assets:
            raise ValueError("asset_headers are held to the page's assets: set load_assets")
        if self.load_assets and (self.method != "GET" or self.rate_limited_within is not None):
            raise ValueError("load_assets loads a page as a browser does: method GET, no rate_limited_within")
        return self


class SqlItemCheck(ValueExpectation):
    """A read-only query on a data target; its first value is the evidence, compared with `expect`."""

    kind: Literal["sql"]
    target: Name
    as_conn_id: ConnId | None = Field(
        default=None,
        description="run the query logged in as this connection (e.g. the app's own database user) instead of the target's: "
        "privileges are the logged-in user's",
    )
    query: str = Field(min_length=1, max_length=4000)

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str) -> str:
        return read_only_statement(query)


class ConnectionItemCheck(_Strict):
    """The Airflow connection exists and its host answers (a TCP connect to host:port)."""

    kind: Literal["connection"]
    conn_id: ConnId
    default_port: Annotated[int, Field(ge=1, le=65535)] | None = None


class BackupFreshItemCheck(_Strict):
    """The newest verified backup of the data target(s) is at most this old."""

    kind: Literal["backup_fresh"]
    target: Name | None = None
    max_age_hours: Annotated[float, Field(gt=0)] = 26


class LatencyItemCheck(_Strict):
    """Numbers of one of the profile's latency checks, measured in verify, held against limits."""

    kind: Literal["latency"]
    check: Name
    max_p95_ms: Annotated[float, Field(gt=0)] | None = None
    max_mean_ms: Annotated[float, Field(gt=0)] | None = None
    min_rps: Annotated[float, Field(gt=0)] | None = None
    max_error_rate: Annotated[float, Field(ge=0, le=1)] | None = None


class FilePresentItemCheck(_Strict):
    """A file exists (and, if given, has exactly this mode, e.g. "0600" for a .env, and sets these variables)."""

    kind: Literal["file_present"]
    target: Name | None = Field(default=None, description="a files data target: the path is relative to its root")
    path: str = Field(
        min_length=1, description="relative to the target's root; without a target absolute, {state_dir}/... or under include/"
    )
    mode: Annotated[str, Field(pattern=r"^0[0-7]{3}$")] | None = None
    env_set: list[EnvName] = Field(
        default_factory=list, description="a .env file: each name is set to a non-empty value (the values, maybe secrets, are never shown)"
    )
    env_equals: dict[EnvName, str] = Field(default_factory=dict, description="a .env file: each name is set to exactly this value")
    in_each_directory_of: str | None = Field(
        default=None,
        min_length=1,
        description="the path is relative to each directory under this one (a model version each), and must be in every one; "
        "at least one directory must be there",
    )
    excluding: list[Annotated[str, Field(pattern=r"^[^/]+$")]] = Field(
        default_factory=list,
        description="directories under in_each_directory_of that are not held to it (a model copied in, not made here)",
    )

    @model_validator(mode="after")
    def _excluding_needs_directories(self) -> FilePresentItemCheck:
        if self.excluding and self.in_each_directory_of is None:
            raise ValueError("excluding names directories of in_each_directory_of, which is not set")
        return self


class CommandItemCheck(_Strict):
    """A program run with an argument list (never a shell); passes on the expected exit code.

    With `min_version` it also proves a version: the first version number (2.29.7) the program prints must be at
    least that, compared number by number (`docker version --format {{.Server.Version}}` for "Docker 20.10+").
    """

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    expect_exit: int = 0
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 300
    min_version: Annotated[str, Field(pattern=r"^\d+(\.\d+)*$")] | None = None


EVIDENCE_MODULE = "airflow_rollout.evidence"


class PythonItemCheck(_Strict):
    """A function of `airflow_rollout.evidence` that reads the release record; named, never an arbitrary import."""

    kind: Literal["python"]
    function: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")]
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("function")
    @classmethod
    def _known(cls, name: str) -> str:
        from airflow_rollout.evidence import EVIDENCE

        if name not in EVIDENCE:
            raise ValueError(f"unknown evidence function {name!r}; known: {', '.join(sorted(EVIDENCE))}")
        return name


ItemCheck = Annotated[
    HttpItemCheck
    | SqlItemCheck
    | ConnectionItemCheck
    | BackupFreshItemCheck
    | LatencyItemCheck
    | FilePresentItemCheck
    | CommandItemCheck
    | PythonItemCheck
    | KubernetesItemCheck
    | DatabricksApiItemCheck
    | DeltaTableItemCheck
    | EnvFileItemCheck
    | TlsItemCheck
    | RedisItemCheck
    | ClickHouseItemCheck
    | AirflowApiItemCheck
    | MonitoringItemCheck
    | GitHubApiItemCheck,
    Field(discriminator="kind"),
]


class Manual(_Strict):
    role: str = Field(min_length=1, max_length=80)
    required: bool = False


class Item(_Strict):
    text: str = Field(min_length=1)
    phase: Phase | None = None
    check: ItemCheck | None = None
    manual: Manual | None = None
    not_applicable: str | None = Field(default=None, min_length=1)
    derived: bool = Field(default=False, description="a parent whose state is its sub-items': all done, done; one failed, failed")
    blocking: bool = Field(default=False, description="a failed check stops the release (pre-deploy) or rolls it back (verify)")
    items: list[Item] = Field(default_factory=list)

    @field_validator("manual", mode="before")
    @classmethod
    def _role_shorthand(cls, value: Any) -> Any:
        return {"role": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one_way(self) -> Item:
        ways = [name for name in ("check", "manual", "not_applicable") if getattr(self, name) is not None]
        ways += ["derived"] if self.derived else []
        if len(ways) != 1:
            raise ValueError(f"needs exactly one of check, manual, not_applicable or derived; has {', '.join(ways) or 'none'}")
        if self.derived and not self.items:
            raise ValueError("derived takes its state from sub-items, and it has none")
        if self.blocking and self.check is None:
            raise ValueError("blocking applies to automated items (with a check) only")
        return self


class Section(_Strict):
    title: str = Field(min_length=1)
    level: Annotated[int, Field(ge=2, le=4)] = 3
    phase: Phase | None = None
    intro: str = Field(default="", description="text the seed has under the heading, kept for the completed checklist")
    items: list[Item] = Field(default_factory=list)


class Checklist(_Strict):
    system: Annotated[str, Field(pattern=NAME_PATTERN)]
    seed: str | None = Field(default=None, description="the seed file this checklist reproduces")
    title: str
    sections: list[Section] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_item_has_a_phase(self) -> Checklist:
        for entry in self.entries():
            if entry.phase is None:
                raise ValueError(f"item {entry.item_id} ({entry.item.text!r}) has no phase and its section gives none")
        return self

    def entries(self) -> list[Entry]:
        found: list[Entry] = []
        for s_index, section in enumerate(self.sections, 1):
            for entry in _walk(section, section.items, f"s{s_index}", 0):
                found.append(entry)
        return found

    def summary(self) -> dict[str, int]:
        entries = self.entries()
        return {
            "total": len(entries),
            "automated": sum(e.item.check is not None for e in entries),
            "manual": sum(e.item.manual is not None for e in entries),
            "not_applicable": sum(e.item.not_applicable is not None for e in entries),
            "derived": sum(e.item.derived for e in entries),
        }

    def required_roles(self) -> list[str]:
        return sorted({e.item.manual.role for e in self.entries() if e.item.manual and e.item.manual.required})


class Entry(BaseModel):
    """One item where it sits: its id (stable within the file), section, depth and effective phase."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    section: Section
    depth: int
    item: Item
    phase: Phase | None

    @property
    def label(self) -> str:
        """What the UI shows for the item's mapped task: short and free of Markdown."""
        text = re.sub(r"[*`]", "", self.item.text)
        return f"{self.item_id} {text[:70]}"

    def children(self) -> list[Entry]:
        """The item's sub-items where they sit, with the ids and phases `Checklist.entries` gives them."""
        return list(_walk(self.section, self.item.items, self.item_id, self.depth + 1, self.phase, recurse=False))


def _walk(
    section: Section, items: list[Item], prefix: str, depth: int, inherited: Phase | None = None, *, recurse: bool = True
) -> Iterator[Entry]:
    for index, item in enumerate(items, 1):
        item_id = f"{prefix}.{index}"
        phase = item.phase or inherited or section.phase
        yield Entry(item_id=item_id, section=section, depth=depth, item=item, phase=phase)
        if recurse:
            yield from _walk(section, item.items, item_id, depth + 1, phase)


def checklists_dir() -> Path:
    return INCLUDE_DIR / "checklists"


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for previous, part in zip((None, *loc), loc, strict=False):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif previous != "check":  # pydantic puts the check's kind (the union's tag) after `check`: not a field
            parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _item_text(data: Any, loc: tuple[int | str, ...]) -> str | None:
    """The text of the item an error points into, so the operator finds it without counting."""
    node, text = data, None
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("text"), str):
            text = node["text"]
    return text


def parse_checklist(data: Any, source: str) -> Checklist:
    if not isinstance(data, dict):
        raise ChecklistError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Checklist.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {len(exc.errors())} problem(s) in the checklist:"]
        for error in exc.errors()[:20]:
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check its spelling and indentation)"
            text = _item_text(data, error["loc"])
            where = f" (item {text!r})" if text else ""
            lines.append(f"  - {_location(error['loc'])}{where}: {message}")
        raise ChecklistError("\n".join(lines)) from None


def load_checklist(system: str, directory: Path | None = None) -> Checklist | None:
    """The checklist of `system`, or None when it has none; raises ChecklistError naming file and item."""
    directory = directory or checklists_dir()
    path = directory / f"{system}.yaml"
    if not path.is_file():
        return None
    checklist = parse_checklist(read_yaml(path), str(path))
    if checklist.system != system:
        raise ChecklistError(f"{path}: system: {checklist.system!r} must equal the file name {system!r}")
    return checklist


# --- the seeds ------------------------------------------------------------------------------------------

CHECKBOX = re.compile(r"^(?P<indent>\s*)[-*] \[(?P<mark>[ xX])\] (?P<text>.*?)\s*$")
HEADING = re.compile(r"^(?P<hashes>#{1,4}) (?P<title>.+?)\s*$")
FENCE = re.compile(r"^\s*```")


def repair_text(text: str) -> str:
    """Undo UTF-8 read as Mac Roman (seed 002's '‚úÖ' for '✅'); text that is not broken stays as it is."""
    try:
        repaired = text.encode("mac_roman").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
    return repaired


def seed_items(text: str) -> list[tuple[str, str]]:
    """(nearest heading, item text) of every checkbox line of a seed, code blocks skipped, text repaired."""
    found: list[tuple[str, str]] = []
    heading = ""
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        if match := HEADING.match(line):
            heading = repair_text(match["title"])
        elif match := CHECKBOX.match(line):
            found.append((heading, repair_text(match["text"])))
    return found


def checklist_items(checklist: Checklist) -> list[tuple[str, str]]:
    return [(e.section.title, e.item.text) for e in checklist.entries()]
