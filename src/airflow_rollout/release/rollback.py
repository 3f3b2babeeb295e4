"""Rollback, app and data: stop the apps, restore the data from the backup (fingerprint-proven), start the previous version.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_rollout.config import HttpCheck
from airflow_rollout.decision import Outcome
from airflow_rollout.ledger import FingerprintStage, ReleaseStatus, SnapshotState
from airflow_rollout.notify import Event
from airflow_rollout.release.deploy import quiesce
from airflow_rollout.release.errors import ChecksFailedError, RollbackError, StepNotApplicableError
from airflow_rollout.release.verify import run_checks
from airflow_rollout.targets.base import (
    AppCapability,
    AppNotReadyError,
    AppTarget,
    DataTarget,
    Fingerprint,
    RestoreMismatchError,
    SnapshotRefusedError,
    differing_tables,
)

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


log = logging.getLogger(__name__)

# Why a release in *investigate* rolled back when its question ended without an answer.
UNANSWERED = "investigated: the question to a human ended without an answer (its task failed): rolled back, its default"


def stop_apps(ctx: ReleaseContext) -> dict[str, Any]:
    """Quiesce every app the release touched, so that nothing of the new version writes while the data is restored.

    Most services refuse to start on a schema revision they do not know: the previous version can only start
    once its data is back, so the order is stop, restore, start. A stop that fails starts again what this
    step had stopped (the system serves as before the step) and nothing is restored.
    """
    release = ctx.release()
    if release.status == ReleaseStatus.ROLLED_BACK.value:
        raise StepNotApplicableError(f"release {ctx.release_id} is rolled back already: nothing is stopped, restored or started again")
    if ctx.reason:
        record_rollback_request(ctx)
    elif release.decision == Outcome.INVESTIGATE.value:  # no human's answer replaced it
        record_unanswered_question(ctx)
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.ROLLING_BACK)
    states = ctx.ledger.app_states(ctx.release_id)
    result: dict[str, Any] = {}
    stopped: list[str] = []
    for name, app in ctx.apps.items():
        if name not in states:
            result[name] = "untouched: the release never deployed it"
            continue
        try:
            result[name] = quiesce(ctx, name, app)
        except Exception as exc:
            restarted = _resume_as_before_rollback(ctx, stopped)
            raise RollbackError(
                f"could not stop {name}: {exc}; nothing was restored, so that nothing is restored under a running version; {restarted}"
            ) from exc
        stopped.append(name)
    return result


def record_rollback_request(ctx: ReleaseContext) -> None:
    """A rollback an operator asked for: who and why become the release's decision (once, however often retried)."""
    release = ctx.release()
    requester = ctx.triggered_by or "an operator (name unknown)"
    request = f"rolled back by {requester} because {ctx.reason}"
    reasons = list(release.decision_reasons or [])
    if request not in reasons:
        ctx.ledger.record_decision(ctx.release_id, "rollback", [*reasons, request], None, requester)


def record_unanswered_question(ctx: ReleaseContext) -> None:
    """The question to a human ended without an answer on record (its task failed): the release rolls back, the
    question's own default, and the record says why."""
    release = ctx.release()
    reasons = [*list(release.decision_reasons or []), UNANSWERED]
    ctx.ledger.record_decision(ctx.release_id, "rollback", reasons, None, "no answer")


def _resume_as_before_rollback(ctx: ReleaseContext, names: list[str]) -> str:
    """Start again, as they ran before the rollback stopped them, the apps in `names`; says what it did."""
    if not names:
        return "no app had been stopped"
    states = ctx.ledger.app_states(ctx.release_id)
    done = []
    for name in names:
        state = states[name]
        version = state.deployed_version or state.previous_version
        try:
            ctx.apps[name].resume(state.quiesced or {}, version)
            done.append(f"{name} runs {version} again, as before the rollback")
        except Exception as exc:  # noqa: BLE001 - each app is tried; what failed is reported, not hidden
            done.append(f"{name} could not be started again ({ctx.redact(str(exc))}): nothing of it serves")
    return "; ".join(done)


def start_previous(ctx: ReleaseContext) -> dict[str, Any]:
    """With the data restored: the previous version of every app the release touched, started or put back."""
    states = ctx.ledger.app_states(ctx.release_id)
    stopped = ctx.ledger.step_status(ctx.release_id, "rollback", "stop_apps") == "succeeded"
    if not stopped or any(state.quiesced is None for state in states.values()):
        raise StepNotApplicableError("the apps were not stopped, so nothing was restored and nothing is started here (see stop_apps)")
    if not data_restored(ctx):
        failure = next((s.error for s in ctx.ledger.steps(ctx.release_id) if s.step == "restore_data" and s.error), None)
        raise RollbackError(
            f"the data was not restored ({failure or 'see restore_data'}), so the previous version is not started on it; "
            + _resume_as_before_rollback(ctx, list(states))
        )
    result: dict[str, Any] = {}
    for name, app in ctx.apps.items():
        if name not in states:
            result[name] = "untouched: the release never deployed it"
            continue
        previous = states[name].previous_version
        if AppCapability.SNAPSHOT_RESTORE in app.capabilities:  # deploy recorded what to put back
            snapshot = states[name].snapshot
            if snapshot is None:
                raise RollbackError(f"{name}: the ledger holds no snapshot of it from before the release, so nothing can be put back")
            result[name] = _put_back(app, snapshot, previous)
            continue
        running = app.current()
        if previous is None:
            app.stop()  # first release of this system: before it, nothing ran
            result[name] = "stopped: there was no previous version"
        elif running and running.version == previous:
            app.wait_ready(previous)
            result[name] = f"already on {previous}"
        else:
            seconds = app.switch_to(previous)
            result[name] = f"back on {previous} in {seconds:.1f} s"
    return result


def _put_back(app: AppTarget, recorded: dict[str, Any], previous: str | None) -> str:
    """What the app was before the release, recorded then; left alone if it is already there and serving."""
    if app.snapshot() == recorded:
        try:
            app.wait_ready(previous or "")
            return "as recorded before the release, and serving"
        except AppNotReadyError as exc:  # recorded, but not serving (a failed deployment stopped it): deploy it again
            log.info("the recorded state is in place but not serving (%s): putting it back", exc)
    seconds = app.restore(recorded)
    return f"put back as recorded before the release ({previous}) in {seconds:.1f} s"


def restore_data(ctx: ReleaseContext) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for target in ctx.data_targets:
        name = target.config.name
        backup_row = ctx.ledger.backup(ctx.release_id, name)
        before = ctx.ledger.fingerprint(ctx.release_id, name, FingerprintStage.BEFORE)
        if backup_row is None or before is None:
            result[name] = "nothing to restore: no backup was taken, so nothing was changed"
            continue
        # The snapshot first, in seconds; the fingerprint proves it, and a copy that differs (damaged, or written to
        # between the backup and the stop) is replaced by the dump, as a missing one is.
        switched, refused = switch_in_snapshot(ctx, target, before)
        if target.fingerprint() == before:
            ctx.ledger.record_fingerprint(ctx.release_id, name, FingerprintStage.AFTER_RESTORE, before)
            result[name] = f"{switched}; fingerprint equal" if switched else "already equal to the pre-release fingerprint"
            continue
        if switched:
            log.warning("%s: the copy switched in differs from the pre-release fingerprint; restoring the dump", name)
        target.restore(backup_row.location, backup_row.sha256)
        after = target.fingerprint()
        ctx.ledger.record_fingerprint(ctx.release_id, name, FingerprintStage.AFTER_RESTORE, after)
        if after != before:
            differing = differing_tables(before, after)
            raise RestoreMismatchError(f"{name}: after the restore these tables differ from before the release: {', '.join(differing)}")
        instead = " (the copy switched in differed from the pre-release fingerprint)" if switched else refused
        result[name] = f"restored from {backup_row.location}{instead}; fingerprint equal ({len(after)} tables)"
    return result


def switch_in_snapshot(ctx: ReleaseContext, target: DataTarget, before: Fingerprint) -> tuple[str | None, str]:
    """The release's own snapshot switched in, if it has one: what was done (None: nothing), and why one was refused.

    Found through the ledger's record of this release, never by a name alone. A snapshot taken by this release and not
    yet kept is switched in and proven afterwards, as a restore is; one kept since the release was promoted (the
    rollback DAG run later), or one the ledger does not record, must prove it is this release's data before anything
    is dropped: its own fingerprint equal to the one taken before the release.
    """
    name = target.config.name
    row = ctx.ledger.snapshot(ctx.release_id, name)
    if row is not None and row.state == SnapshotState.DROPPED.value:
        return None, ""
    snapshot = row.name if row is not None else target.snapshot_name(ctx.release_id, ctx.version)
    if snapshot is None:
        return None, ""
    proof = before if row is None or row.state == SnapshotState.KEPT.value else None
    try:
        switched = target.switch_in_snapshot(snapshot, proof=proof)
    except SnapshotRefusedError as exc:
        log.warning("%s: %s; restoring the dump", name, exc)
        return None, f" ({exc})"
    if switched and row is not None:
        ctx.ledger.set_snapshot_state(ctx.release_id, name, SnapshotState.SWITCHED_IN)
    return switched, ""


def data_restored(ctx: ReleaseContext) -> bool:
    """Every data target that was backed up is back to its pre-release fingerprint (what the restore proved)."""
    for target in ctx.data_targets:
        name = target.config.name
        before = ctx.ledger.fingerprint(ctx.release_id, name, FingerprintStage.BEFORE)
        backed_up = ctx.ledger.backup(ctx.release_id, name) is not None and before is not None
        if backed_up and ctx.ledger.fingerprint(ctx.release_id, name, FingerprintStage.AFTER_RESTORE) != before:
            return False
    return True


def verify_restored(ctx: ReleaseContext) -> dict[str, Any]:
    previous = ctx.release().previous_version
    if previous is None:
        return {"skipped": "no previous version to check"}
    results = run_checks(ctx, (HttpCheck,), version=previous)
    failed = [r for r in results if r.critical and not r.passed]
    if failed:
        raise ChecksFailedError(
            f"the previous version {previous} is not healthy after the rollback: " + "; ".join(r.detail for r in failed)
        )
    return {r.name: r.detail for r in results}


def finish_rollback(ctx: ReleaseContext) -> dict[str, Any]:
    release = ctx.release()
    reasons = release.decision_reasons or []
    reason = "; ".join(reasons) or "rolled back"
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.ROLLED_BACK, reason=reason, final=True)
    ctx.ledger.release_lock(ctx.profile.name, ctx.release_id)
    equal = [
        t.config.name
        for t in ctx.data_targets
        if ctx.ledger.fingerprint(ctx.release_id, t.config.name, FingerprintStage.AFTER_RESTORE)
        == ctx.ledger.fingerprint(ctx.release_id, t.config.name, FingerprintStage.BEFORE)
    ]
    serving = f"{release.previous_version} is serving again" if release.previous_version else "nothing runs, as before the release"
    ctx.notifier.send(
        Event.ROLLED_BACK,
        ctx.release_id,
        f"{release.version} rolled back: {serving}",
        [*reasons, f"data fingerprint equal to before the release: {', '.join(equal) or 'no data target'}"],
    )
    return {"status": ReleaseStatus.ROLLED_BACK.value, "reasons": reasons, "fingerprint_equal": equal}


def rollback_failed(ctx: ReleaseContext, error: str) -> None:
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.FAILED, reason=f"rollback failed: {error}", final=True)
    ctx.notifier.send(
        Event.ROLLBACK_FAILED,
        ctx.release_id,
        f"ROLLBACK OF {ctx.version} FAILED: a human must act now",
        [error, f"the release lock of {ctx.profile.name} stays held so that no new release starts on top of this"],
    )
