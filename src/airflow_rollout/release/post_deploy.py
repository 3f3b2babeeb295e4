"""Post-deploy: the new version promoted, the lock freed, the baselines recorded.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_rollout.ledger import ReleaseStatus
from airflow_rollout.notify import Event

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


def promote(ctx: ReleaseContext) -> dict[str, Any]:
    release = ctx.release()
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.PROMOTED, reason=release.decision and f"decision: {release.decision}", final=True)
    ctx.ledger.release_lock(ctx.profile.name, ctx.release_id)
    measurements = ctx.ledger.measurements(ctx.release_id)
    ctx.notifier.send(
        Event.PROMOTED,
        ctx.release_id,
        f"{ctx.version} promoted (was {release.previous_version or 'nothing'})",
        [m.detail for m in measurements] + [f"migrations: {', '.join(ctx.ledger.migrations(ctx.release_id)) or 'none'}"],
    )
    # Promoted, the release will not be rolled back through its snapshot: the copy's disk space is given back.
    dropped = {target.config.name: done for target in ctx.data_targets if (done := target.drop_snapshot(ctx.release_id))}
    result = {"status": ReleaseStatus.PROMOTED.value, "baselines": {m.name: m.metrics for m in measurements if m.kind == "latency"}}
    return {**result, "snapshots": dropped} if dropped else result
