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
    # Before the first migration of any target, and (stop_first, the profile checks) with no app connected.
    snapshots = {target.config.name: taken for target in ctx.data_targets if (taken := target.take_snapshot(ctx.release_id))}
    for name, taken in snapshots.items():
        log.info("snapshot of %s: %s", name, taken)
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
