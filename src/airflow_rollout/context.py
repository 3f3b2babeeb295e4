"""The system and release a task works for: the profile, and the ledger, notifier and targets built from it.

Everything below the DAGs takes one of these: maintenance and checklists a `SystemContext` (one system),
the release phases a `ReleaseContext` (one release of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_rollout.config import SystemProfile, load_profile, state_dir
from airflow_rollout.ledger import Ledger, Release
from airflow_rollout.maintenance_store import MaintenanceStore
from airflow_rollout.notify import AirflowRun, Notifier, Redactor
from airflow_rollout.targets.registry import TargetEnvironment, build_app, build_data_target
from airflow_rollout.versions import validate_version

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_rollout.targets.base import AppTarget, DataCapability, DataTarget


def run_time(dag_run: Any) -> datetime:
    """The time a DAG run stands for: its data interval end (a scheduled run: the slot, e.g. 02:00), else its logical
    date, else its run_after (a manual run triggered without a logical date has neither)."""
    at: datetime = dag_run.data_interval_end or dag_run.logical_date or dag_run.run_after
    return at


@dataclass(kw_only=True)
class SystemContext:
    """One system's profile and what is built from it: ledger, Slack, data targets, apps."""

    profile: SystemProfile
    state: Path = field(default_factory=state_dir)
    airflow_run: AirflowRun | None = None  # the DAG run this works in: Slack messages link to it
    # the time the DAG run stands for (run_time): what a check ages things from, the same in every attempt; outside a
    # run (a test, a script) the time the context was made
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(conn_id=self.profile.ledger_conn_id)

    @cached_property
    def maintenance_store(self) -> MaintenanceStore:
        """Scheduled backups, drills, findings: in the ledger's database, on the ledger's connection."""
        return MaintenanceStore(conn_id=self.profile.ledger_conn_id, database=self.ledger.database)

    @cached_property
    def redact(self) -> Redactor:
        return Redactor.for_connections(self.profile.connection_ids())

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(
            slack_conn_id=self.profile.slack_conn_id,
            ledger=self.ledger,
            redactor=self.redact,
            system=self.profile.name,
            run=self.airflow_run,
        )

    @cached_property
    def environment(self) -> TargetEnvironment:
        return TargetEnvironment(system=self.profile.name, state_dir=self.state)

    @cached_property
    def data_targets(self) -> list[DataTarget]:
        return [build_data_target(config, self.environment) for config in self.profile.data_targets]

    @cached_property
    def apps(self) -> dict[str, AppTarget]:
        return {config.name: build_app(config, self.environment) for config in self.profile.app_targets}

    def data_targets_with(self, capability: DataCapability) -> list[DataTarget]:
        """The data targets whose kind declares `capability` (the others are reported as not applicable)."""
        return [t for t in self.data_targets if capability in t.capabilities]

    def app_base_url(self, name: str) -> str:
        """Where an app answers: from the profile, or from the platform (a Databricks App's URL is assigned)."""
        return self.apps[name].base_url()

    def backup_directory(self, target: DataTarget) -> Path:
        return target.backup_directory(self.state / "backups" / self.profile.name / target.config.name)


@dataclass(kw_only=True)
class ReleaseContext(SystemContext):
    release_id: str
    version: str
    triggered_by: str | None = None
    run_id: str = ""  # the DAG run working on the release: the lock is held by the release and this run
    reason: str | None = None  # why an operator asked for this run (a standalone rollback must say why)

    @classmethod
    def load(
        cls,
        *,
        system: str,
        version: str,
        release_id: str,
        triggered_by: str | None = None,
        run_id: str = "",
        reason: str | None = None,
        airflow_run: AirflowRun | None = None,
    ) -> ReleaseContext:
        profile = load_profile(system)
        return cls(
            profile=profile,
            release_id=release_id,
            version=validate_version(version, profile.version_scheme),
            triggered_by=triggered_by,
            run_id=run_id or release_id,
            reason=reason,
            airflow_run=airflow_run,
        )

    def release(self) -> Release:
        return self.ledger.release(self.release_id)
