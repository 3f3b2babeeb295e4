"""Post-deploy: the new version promoted, the lock freed, the baselines recorded.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_rollout.ledger import ReleaseStatus, SnapshotState
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
    snapshots = keep_or_drop_snapshots(ctx)
    result = {"status": ReleaseStatus.PROMOTED.value, "baselines": {m.name: m.metrics for m in measurements if m.kind == "latency"}}
    return {**result, "snapshots": snapshots} if snapshots else result


def keep_or_drop_snapshots(ctx: ReleaseContext) -> dict[str, str]:
    """Promoted, the release's snapshot is kept among the target's newest `snapshot_keep` (for a later rollback of it
    by the rollback DAG), and those of older promoted releases beyond that number are dropped; with none to keep, it
    is dropped, its disk space given back. Running it again does the same and nothing twice."""
    done: dict[str, str] = {}
    for target in ctx.data_targets:
        name = target.config.name
        own = ctx.ledger.snapshot(ctx.release_id, name)
        if own is None:
            continue
        keep = target.snapshots_to_keep()
        if not keep:
            done[name] = target.drop_snapshot(own.name) or f"dropped {own.name}"
            ctx.ledger.set_snapshot_state(ctx.release_id, name, SnapshotState.DROPPED)
            continue
        if own.state == SnapshotState.TAKEN.value:
            ctx.ledger.set_snapshot_state(ctx.release_id, name, SnapshotState.KEPT)
        kept = ctx.ledger.kept_snapshots(ctx.profile.name, name)  # this release's first: promoted last
        notes = [f"kept {row.name}" for row in kept[:keep]]
        for older in kept[keep:]:
            notes.append(target.drop_snapshot(older.name) or f"dropped {older.name}")
            ctx.ledger.set_snapshot_state(older.release_id, name, SnapshotState.DROPPED)
        done[name] = "; ".join(notes)
    return done
