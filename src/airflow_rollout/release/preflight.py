"""Preflight: the connections, the lock and the services are there before anything changes; the lock handed back at the end.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from airflow_rollout.checks import tcp_reachable
from airflow_rollout.ledger import ReleaseNotFoundError, ReleaseStatus
from airflow_rollout.notify import Event
from airflow_rollout.release.errors import LockHeldError, PreflightError

if TYPE_CHECKING:
    from airflow_rollout.config import SystemProfile
    from airflow_rollout.context import ReleaseContext, SystemContext


def check_connections(profile: SystemProfile) -> None:
    """Every connection the profile names must exist, before anything is touched."""
    from airflow.sdk import BaseHook

    missing = []
    for conn_id in profile.connection_ids():
        try:
            BaseHook.get_connection(conn_id)
        except Exception:  # noqa: BLE001 - the hook raises different types by Airflow version
            missing.append(conn_id)
    if missing:
        raise PreflightError(
            f"system {profile.name}: connection(s) {', '.join(repr(m) for m in missing)} not defined in Airflow "
            "(Admin > Connections, an AIRFLOW_CONN_* variable or a secrets backend); nothing was changed"
        )


def preflight(ctx: ReleaseContext) -> dict[str, Any]:
    check_connections(ctx.profile)
    ctx.ledger.ensure_schema()
    ctx.ledger.open_release(release_id=ctx.release_id, system=ctx.profile.name, version=ctx.version, triggered_by=ctx.triggered_by)
    try:
        hold_lock(ctx)
    except LockHeldError as exc:
        ctx.ledger.set_status(ctx.release_id, ReleaseStatus.ABORTED, reason=str(exc), final=True)
        raise PreflightError(str(exc)) from None
    try:
        for target in ctx.data_targets:
            target.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the release stops here with the reason
        _refuse(ctx, f"data target unreachable: {ctx.redact(str(exc))}", exc)
    for conn_id in ctx.profile.reachable:
        if not (reached := tcp_reachable(conn_id)).passed:
            _refuse(ctx, f"service unreachable: {reached.detail}", None)
    running = {name: current.version if (current := app.current()) else None for name, app in ctx.apps.items()}
    previous = next((v for v in running.values() if v), None) or _last_promoted_version(ctx)
    ctx.ledger.set_previous_version(ctx.release_id, previous)
    ctx.notifier.send(
        Event.STARTED,
        ctx.release_id,
        f"release of {ctx.version} started (running now: {previous or 'nothing'})",
        [f"release id: {ctx.release_id}", f"triggered by: {ctx.triggered_by or 'unknown'}"],
    )
    return {"previous_version": previous, "running": running}


def hold_lock(ctx: ReleaseContext) -> None:
    """This run works on the system under its lock, or changes nothing: LockHeldError names who holds it."""
    holder = ctx.ledger.claim_lock(ctx.profile.name, ctx.release_id, ctx.run_id)
    if holder is None:
        return
    unstick = "if it is stuck, an operator can free it with the `unlock` DAG, giving a reason"
    if holder.release_id == ctx.release_id:
        raise LockHeldError(
            f"another run of release {ctx.release_id} ({holder.run_id}) is working on {ctx.profile.name}: wait for it to end "
            f"({unstick}); nothing was changed"
        )
    try:
        other = ctx.ledger.release(holder.release_id)
        what = f"{other.version} ({holder.release_id}, {other.status}, started {other.created_at:%Y-%m-%d %H:%M:%S %Z})"
    except ReleaseNotFoundError:
        what = holder.release_id
    raise LockHeldError(
        f"another release of {ctx.profile.name} is in progress: {what}; wait for it to finish ({unstick}); nothing was changed"
    )


def unlock_system(ctx: SystemContext, *, requester: str | None, reason: str) -> str:
    """An operator frees a stuck lock: the release that held it keeps its status, and the record says who and why."""
    ctx.ledger.ensure_schema()
    who = requester or "an operator (name unknown)"
    freed = ctx.ledger.unlock(ctx.profile.name, unlocked_by=who, reason=reason)
    if freed is None:
        return f"{ctx.profile.name} was not locked; nothing to do"
    release = ctx.ledger.release(freed)
    note = f"lock freed by {who} because {reason}"
    ctx.ledger.set_status(freed, ReleaseStatus(release.status), reason=f"{release.outcome_reason or release.status}; {note}")
    ctx.notifier.send(
        Event.UNLOCKED,
        freed,
        f"lock of {ctx.profile.name} freed by {who}: releases may start again",
        [f"reason: {reason}", f"it was held by release {freed} ({release.version}, {release.status})"],
    )
    return f"{ctx.profile.name}: {note} (it was held by release {freed}, {release.version}, {release.status})"


def take_lock(ctx: ReleaseContext) -> str:
    hold_lock(ctx)
    return f"{ctx.profile.name} locked for release {ctx.release_id}, run {ctx.run_id}"


def hand_back_lock(ctx: ReleaseContext) -> str:
    """At the end of a run: free the lock, or leave it to the release when it changed the system and has not finished."""
    release = ctx.release()
    finished = release.status in {ReleaseStatus.PROMOTED.value, ReleaseStatus.ROLLED_BACK.value, ReleaseStatus.ABORTED.value}
    changed = bool(ctx.ledger.app_states(ctx.release_id) or ctx.ledger.migrations(ctx.release_id))
    keep = not finished and (changed or release.status == ReleaseStatus.FAILED.value)
    ctx.ledger.hand_back_lock(ctx.profile.name, ctx.release_id, ctx.run_id, keep_for_release=keep)
    holder = ctx.ledger.lock(ctx.profile.name)
    if holder is None:
        return f"{ctx.profile.name} is not locked"
    if holder.release_id == ctx.release_id and holder.run_id is None:
        return f"{ctx.profile.name} stays locked by release {ctx.release_id} ({release.status}): it changed the system and has not finished"
    return f"{ctx.profile.name} is locked by release {holder.release_id}, run {holder.run_id}"


def _refuse(ctx: ReleaseContext, reason: str, cause: Exception | None) -> NoReturn:
    """Preflight found something down: free the lock, record why, stop before any change."""
    ctx.ledger.release_lock(ctx.profile.name, ctx.release_id)
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.ABORTED, reason=reason, final=True)
    raise PreflightError(reason + "; nothing was changed") from cause


def _last_promoted_version(ctx: ReleaseContext) -> str | None:
    last = ctx.ledger.last_promoted(ctx.profile.name)
    return last.version if last else None
