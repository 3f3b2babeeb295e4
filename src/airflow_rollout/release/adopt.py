"""Adopt: a system already running outside this package becomes the baseline for its next release; nothing of it changes.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_rollout.config import HttpCheck, LatencyCheck, ServingEndpointCheck
from airflow_rollout.ledger import ReleaseStatus
from airflow_rollout.notify import Event
from airflow_rollout.release.verify import verify

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


def take_over(ctx: ReleaseContext) -> dict[str, Any]:
    """Take the system's lock and learn what runs, as the version typed; changes nothing on the system."""
    return {name: app.adopt(ctx.version) for name, app in ctx.apps.items()}


def check_running(ctx: ReleaseContext) -> dict[str, Any]:
    """The running service answers its checks at the version typed; the latency numbers become the baseline."""
    return verify(ctx, (HttpCheck, ServingEndpointCheck, LatencyCheck))


def record_adopted(ctx: ReleaseContext) -> dict[str, Any]:
    """The adopted version is the promoted baseline: the next release records it as the previous version."""
    backups: dict[str, str | None] = {}
    for target in ctx.data_targets:
        backup = ctx.ledger.backup(ctx.release_id, target.config.name)
        backups[target.config.name] = backup.location if backup else None
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.PROMOTED, reason="adopted: it ran before this package managed it", final=True)
    ctx.ledger.release_lock(ctx.profile.name, ctx.release_id)
    ctx.notifier.send(
        Event.PROMOTED,
        ctx.release_id,
        f"{ctx.profile.name} {ctx.version} adopted: running as it was, now the baseline for the next release",
        [m.detail for m in ctx.ledger.measurements(ctx.release_id)] + [f"first backup of {n}: {loc}" for n, loc in backups.items()],
    )
    return {"status": ReleaseStatus.PROMOTED.value, "backups": backups}


def adoption_failed(ctx: ReleaseContext, error: str) -> None:
    """Nothing of the system was changed: record why, free the lock, say so."""
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.ABORTED, reason=f"adoption failed: {error}", final=True)
    ctx.ledger.release_lock(ctx.profile.name, ctx.release_id)
    ctx.notifier.send(Event.ABORTED, ctx.release_id, f"adoption of {ctx.profile.name} {ctx.version} failed; nothing was changed", [error])
