"""`env_file`: a `.env` held against its `.env.example`: every key set, the example's defaults changed, secrets long enough.

The evidence names keys and gives lengths, never a value: what a `.env` holds is a secret. A value equal to the
example's is a default nobody replaced (`change-me-...`, a sample password), so `changed` fails on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from airflow_rollout.config import Name, StrictModel
from airflow_rollout.targets.files import item_path

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_rollout.context import SystemContext
    from airflow_rollout.evidence import Evidence

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class EnvFileItemCheck(StrictModel):
    """A `.env` compared with its example: `complete` (every key of the example set), `changed`, `min_length`."""

    kind: Literal["env_file"]
    target: Name | None = Field(default=None, description="a files data target: both paths are relative to its root")
    path: str = Field(default=".env", min_length=1, description="relative to the target's root; without a target as a profile path")
    example: str | None = Field(
        default=".env.example", min_length=1, description="the example the .env was made from; relative to the .env's directory"
    )
    complete: bool = Field(default=False, description="every key the example names is set to a non-empty value in the .env")
    changed: list[EnvName] = Field(default_factory=list, description="keys whose value must differ from the example's (its defaults)")
    min_length: dict[EnvName, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="key: fewest characters its value may have (a secret's strength)"
    )

    @model_validator(mode="after")
    def _asks_something(self) -> EnvFileItemCheck:
        if not (self.complete or self.changed or self.min_length):
            raise ValueError("needs something to compare: complete, changed or min_length")
        if (self.complete or self.changed) and self.example is None:
            raise ValueError("complete and changed compare with the example: name it")
        return self


def env_file_values(path: Path) -> dict[str, str]:
    """The variables a .env file sets, as docker compose reads it: KEY=VALUE lines, comments and blanks skipped."""
    values = {}
    for line in path.read_text().splitlines():
        stripped = line.strip().removeprefix("export ").strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        name, value = stripped.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def run(ctx: SystemContext, check: EnvFileItemCheck) -> Evidence:
    from airflow_rollout.evidence import Evidence

    env_path = item_path(ctx, check.target, check.path)
    example_path = env_path.parent / check.example if check.example else None
    missing = [p for p in (env_path, example_path) if p is not None and not p.is_file()]
    if missing:
        return Evidence(False, f"{' and '.join(str(p) for p in missing)} not found")
    values = env_file_values(env_path)
    example = env_file_values(example_path) if example_path else {}
    against = f" against {example_path.name}" if example_path else ""
    problems = []
    if check.complete and (unset := [key for key in example if not values.get(key)]):
        problems.append(f"not set: {', '.join(unset)}")
    if unchanged := [key for key in check.changed if key in values and values[key] == example.get(key)]:
        problems.append(f"still the example's value: {', '.join(unchanged)}")
    if absent := [key for key in [*check.changed, *check.min_length] if key not in values]:
        problems.append(f"absent: {', '.join(dict.fromkeys(absent))}")
    lengths = {key: len(values[key]) for key in check.min_length if key in values}
    problems.extend(
        f"{key} has {lengths[key]} characters, fewer than {least}"
        for key, least in check.min_length.items()
        if key in lengths and lengths[key] < least
    )
    compared = [
        *([f"all {len(example)} keys of the example set"] if check.complete else []),
        *([f"{', '.join(check.changed)} differ from the example"] if check.changed else []),
        *(f"{key} {length} characters (at least {check.min_length[key]})" for key, length in lengths.items()),
    ]
    numbers = {"keys": len(values), "example_keys": len(example), **{f"{key}_length": n for key, n in lengths.items()}}
    if problems:
        return Evidence(False, f"{env_path}{against}: {'; '.join(problems)}", numbers)
    return Evidence(True, f"{env_path}{against}: {'; '.join(compared)}", numbers)
