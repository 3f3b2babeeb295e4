"""Puts the demo system in its starting state: data of version 1.0.0, version 1.0.0 serving.

Used by `make demo` and by the end-to-end tests, through the same target code the DAGs use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_rollout.config import SqlFileMigrations, SystemProfile
from airflow_rollout.targets.local_process import LocalProcessApp, LocalProcessTarget
from airflow_rollout.targets.migrations import SqlFileMigrator
from airflow_rollout.targets.postgres import PostgresDataTarget, PostgresTarget

if TYPE_CHECKING:
    from pathlib import Path

START_VERSION = "1.0.0"


def reset(profile: SystemProfile, state_dir: Path) -> None:
    """Empty the demo database, apply the migrations of 1.0.0 and serve 1.0.0."""
    for config in profile.data_targets:
        if not isinstance(config, PostgresTarget):
            continue
        target = PostgresDataTarget(config=config)
        with target.connect() as conn:
            for schema in config.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{schema}"')
        if isinstance(config.migrations, SqlFileMigrations):
            migrator = SqlFileMigrator(target=target, config=config.migrations, scheme=profile.version_scheme)
            for migration in migrator.pending(START_VERSION):
                migrator.apply(migration, "demo-setup")
    for app_config in local_processes(profile):
        LocalProcessApp(config=app_config, system=profile.name, state_dir=state_dir).switch_to(START_VERSION)


def stop_apps(profile: SystemProfile, state_dir: Path) -> None:
    for app_config in local_processes(profile):
        LocalProcessApp(config=app_config, system=profile.name, state_dir=state_dir).stop()


def local_processes(profile: SystemProfile) -> list[LocalProcessTarget]:
    return [a for a in profile.app_targets if isinstance(a, LocalProcessTarget)]
