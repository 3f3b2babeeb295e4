"""Which target kinds exist: each registered once, with its config model and how its runtime is built.

The profile's `data_targets` and `app_targets` unions, the discriminator tags its error messages leave
out, and the runtime objects a release works with are all built from here; nothing else names the kinds.
A kind of your own is one module that defines a config model (a `DataTargetConfig` or `AppTargetConfig`
subclass with `kind: Literal["..."]`) and a runtime class (`DataTarget` or `AppTarget`), and calls
`register_data_kind` or `register_app_kind` once. Make Airflow import it by naming the module in the
`airflow_rollout.target_kinds` entry-point group of your package (README: "Adding a target kind").
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from airflow_rollout.config import AppTargetConfig, DataTargetConfig, TargetConfig
    from airflow_rollout.targets.base import AppTarget, DataTarget

BUILTIN_KIND_MODULES = (
    "airflow_rollout.targets.postgres",
    "airflow_rollout.targets.files",
    "airflow_rollout.targets.databricks",
    "airflow_rollout.targets.local_process",
    "airflow_rollout.targets.compose",
    "airflow_rollout.targets.kubernetes",
)
ENTRY_POINT_GROUP = "airflow_rollout.target_kinds"

ConfigT = TypeVar("ConfigT")
RuntimeT = TypeVar("RuntimeT")


@dataclass(frozen=True)
class TargetEnvironment:
    """What a runtime object may need beyond its config: whose target it is, and where local state is kept."""

    system: str
    state_dir: Path


@dataclass(frozen=True)
class Kind(Generic[ConfigT, RuntimeT]):
    tag: str
    config: type[ConfigT]
    build: Callable[[Any, TargetEnvironment], RuntimeT]


_data: dict[str, Kind[DataTargetConfig, DataTarget]] = {}
_app: dict[str, Kind[AppTargetConfig, AppTarget]] = {}
_generation = 0  # changes with every registration: the profile model built from the kinds is rebuilt
_loaded = False


def kind_tag(config: type[TargetConfig]) -> str:
    """The value of the config model's `kind: Literal["..."]` field."""
    annotation = config.model_fields["kind"].annotation
    values = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise TypeError(f"{config.__name__}.kind must be a Literal of one string, e.g. kind: Literal['my_kind']")
    return values[0]


def _register(registry: dict[str, Any], config: type[TargetConfig], build: Callable[[Any, TargetEnvironment], Any]) -> None:
    global _generation  # noqa: PLW0603 - the registry is process-wide by design, like Airflow's provider registry
    tag = kind_tag(config)
    if tag in _data or tag in _app:
        raise ValueError(f"target kind {tag!r} is registered already")
    registry[tag] = Kind(tag=tag, config=config, build=build)
    _generation += 1


def register_data_kind(config: type[DataTargetConfig], build: Callable[[Any, TargetEnvironment], DataTarget]) -> None:
    """Make `config`'s kind usable in a profile's data_targets; `build(config, environment)` makes its runtime."""
    _register(_data, config, build)


def register_app_kind(config: type[AppTargetConfig], build: Callable[[Any, TargetEnvironment], AppTarget]) -> None:
    """Make `config`'s kind usable in a profile's app_targets; `build(config, environment)` makes its runtime."""
    _register(_app, config, build)


def unregister(tag: str) -> None:
    """Forget a kind (tests that register a toy kind put the registry back)."""
    global _generation  # noqa: PLW0603
    _data.pop(tag, None)
    _app.pop(tag, None)
    _generation += 1


def _load() -> None:
    """Import the built-in kinds and those other packages announce; each registers itself on import."""
    global _loaded  # noqa: PLW0603
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_KIND_MODULES:
        import_module(module)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()


def data_kinds() -> Mapping[str, Kind[DataTargetConfig, DataTarget]]:
    _load()
    return MappingProxyType(_data)


def app_kinds() -> Mapping[str, Kind[AppTargetConfig, AppTarget]]:
    _load()
    return MappingProxyType(_app)


def generation() -> int:
    _load()
    return _generation


def build_data_target(config: DataTargetConfig, environment: TargetEnvironment) -> DataTarget:
    return data_kinds()[config.kind].build(config, environment)


def build_app(config: AppTargetConfig, environment: TargetEnvironment) -> AppTarget:
    return app_kinds()[config.kind].build(config, environment)
