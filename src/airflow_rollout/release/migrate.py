"""Migrate: the schema migrations of the new version, under a verified backup (stop_first: the apps stopped first).

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_rollout.config import DeployOrder
from airflow_rollout.ledger import FingerprintStage
from airflow_rollout.release.backup import require_backups
from airflow_rollout.release.deploy import stop_for_deploy
from airflow_rollout.targets.base import MigrationRun

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


log = logging.getLogger(__name__)


def migrate(ctx: ReleaseContext) -> dict[str, Any]:
    require_backups(ctx)
    if ctx.profile.deploy_order is DeployOrder.STOP_FIRST:
        stopped = stop_for_deploy(ctx)
        log.info("stop_first: stopped before migrating: %s", stopped)
    snapshots = take_snapshots(ctx)
    applied: dict[str, Any] = {}
    for target in ctx.data_targets:
        name = target.config.name

        def record(migration_id: str, checksum: str | None, name: str = name) -> None:
            ctx.ledger.record_migration(ctx.release_id, name, migration_id, checksum)

        run = MigrationRun(
            version=ctx.version,
            release_id=ctx.release_id,
            system=ctx.profile.name,
            scheme=ctx.profile.version_scheme,
            redact=ctx.redact,
            record=record,
        )
        applied[name] = target.migrate(run)
        ctx.ledger.record_fingerprint(ctx.release_id, name, FingerprintStage.AFTER_MIGRATE, target.fingerprint())
    return {**applied, "snapshots": snapshots} if snapshots else applied


def take_snapshots(ctx: ReleaseContext) -> dict[str, str]:
    """Each target's snapshot, before the first migration of any target and (stop_first, the profile checks) with no app
    connected; recorded in the ledger under the release, which is how a rollback or a later promotion finds it."""
    snapshots: dict[str, str] = {}
    for target in ctx.data_targets:
        name = target.config.name
        snapshot = target.snapshot_name(ctx.release_id, ctx.version)
        if snapshot is None:
            continue
        kept = [row.name for row in reversed(ctx.ledger.kept_snapshots(ctx.profile.name, name))]  # the oldest first
        taken = target.take_snapshot(snapshot, kept)
        if taken:
            ctx.ledger.record_snapshot(ctx.release_id, name, snapshot)
            log.info("snapshot of %s: %s", name, taken)
            snapshots[name] = taken
    return snapshots
