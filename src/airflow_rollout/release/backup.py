"""Backup: a verified backup of every data target, the one a rollback restores; nothing changes without it.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_rollout.release.errors import PreflightError
from airflow_rollout.targets.base import BackupIntegrityError

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


log = logging.getLogger(__name__)


def backup(ctx: ReleaseContext) -> dict[str, Any]:
    taken: dict[str, Any] = {}
    for target in ctx.data_targets:
        name = target.config.name
        recorded = ctx.ledger.backup(ctx.release_id, name)
        if recorded:
            try:
                target.verify_integrity(recorded.location, recorded.sha256)
                taken[name] = {"location": recorded.location, "reused": True}
                continue
            except BackupIntegrityError as exc:
                log.warning("the recorded backup is unusable, taking a new one: %s", exc)
        record = target.backup(target.backup_path(ctx.backup_directory(target), ctx.release_id))
        ctx.ledger.record_backup(ctx.release_id, name, record.as_dict())
        taken[name] = {
            "location": record.location,
            "sha256": record.sha256,
            "size_bytes": record.size_bytes,
            "tables": len(record.fingerprint),
        }
    return taken


def require_backups(ctx: ReleaseContext) -> None:
    """Nothing is changed without a backup that is there and intact: checked again right before the change."""
    missing = []
    for target in ctx.data_targets:
        recorded = ctx.ledger.backup(ctx.release_id, target.config.name)
        if recorded is None:
            missing.append(target.config.name)
        else:
            target.verify_integrity(recorded.location, recorded.sha256)
    if missing:
        raise PreflightError(
            f"release {ctx.release_id} has no verified backup of {', '.join(missing)}: run the backup phase "
            "(or the `backup` DAG with this release_id) first"
        )
