"""Deploy: each app switched to the new version, with what ran before recorded first, so a rollback can put it back.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_rollout.targets.base import AppCapability, AppTarget

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


def record_before_touching(ctx: ReleaseContext, name: str, app: AppTarget) -> str | None:
    """The version `name` ran before this release touched it (and its snapshot), recorded once; returns that version."""
    states = ctx.ledger.app_states(ctx.release_id)
    if name in states:
        return states[name].previous_version  # recorded by an earlier attempt: keep it
    release = ctx.release()
    running = app.current()
    previous = running.version if running else release.previous_version
    snapshot = app.snapshot() if AppCapability.SNAPSHOT_RESTORE in app.capabilities else None
    ctx.ledger.record_app_state(ctx.release_id, name, previous_version=previous, snapshot=snapshot)
    if previous and release.previous_version is None:
        # A phase run alone had no preflight to record it; the rollback's check and message need it.
        ctx.ledger.set_previous_version(ctx.release_id, previous)
    return previous


def quiesce(ctx: ReleaseContext, name: str, app: AppTarget) -> str:
    """Stop `name` serving and writing; what was stopped, and when, goes in the ledger to bring it back."""
    running = app.current()
    ctx.ledger.record_quiesced(ctx.release_id, name, {**app.quiesce(), "stopped_at": time.time()})
    app.wait_quiesced()  # after the record: a run of this step after the wait finds what was stopped there
    return f"stopped {running.version}" if running else "already stopped"


def stop_for_deploy(ctx: ReleaseContext) -> dict[str, str]:
    """stop_first: the old version stops before the first migration, so its code never runs on the new schema."""
    stopped = {}
    for name, app in ctx.apps.items():
        record_before_touching(ctx, name, app)
        stopped[name] = quiesce(ctx, name, app)
    return stopped


def deploy(ctx: ReleaseContext) -> dict[str, Any]:
    """Each app switched to the release's version, its downtime measured from the switch's start (or, stop_first,
    from the stop). That start is in the ledger before the switch waits: a wait handed to the triggerer ends this
    run, and the run after it finishes the same switch, measuring from the same start."""
    result: dict[str, Any] = {}
    for name, app in ctx.apps.items():
        previous = record_before_touching(ctx, name, app)
        state = ctx.ledger.app_states(ctx.release_id)[name]
        stopped_at = float(state.quiesced["stopped_at"]) if state.quiesced else None  # stop_first: downtime from the stop
        began = stopped_at or state.switch_began
        running = app.current()
        if running and running.version == ctx.version:
            app.wait_ready(ctx.version)
            if began is None or state.deployed_version is not None:  # not switched by this release, or recorded
                result[name] = {"previous_version": previous, "already_running": True}
                continue
        elif state.quiesced and stopped_at:
            began = stopped_at
            app.resume(state.quiesced, ctx.version)
        else:
            if began is None:
                began = time.time()
                ctx.ledger.record_switch_began(ctx.release_id, name, began)
            app.switch_to(ctx.version)  # a switch an earlier run began is found under way and followed, not begun twice
        downtime = time.time() - began
        ctx.ledger.record_app_state(
            ctx.release_id, name, previous_version=previous, deployed_version=ctx.version, downtime_seconds=downtime
        )
        result[name] = {"previous_version": previous, "downtime_seconds": round(downtime, 2)}
    return result
