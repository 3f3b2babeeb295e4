"""What each phase of a release does, as plain functions of a ReleaseContext.

No Airflow scheduling here: `airflow_rollout.tasks` wraps these functions as tasks. Every function reads the
ledger and the target before acting, so running it again after a crash or a retry finishes the job
instead of doing it twice.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_rollout.checks import CheckResult, run_http_check, run_latency_probe, tcp_reachable
from airflow_rollout.config import (
    DatabricksJobCheck,
    DeployOrder,
    HttpCheck,
    LatencyCheck,
    ProfileError,
    ServingEndpointCheck,
    SystemProfile,
)
from airflow_rollout.decision import Decision, FailedCheck, Observations, Outcome, decide
from airflow_rollout.ledger import FingerprintStage, LedgerConflictError, ReleaseNotFoundError, ReleaseStatus
from airflow_rollout.notify import Event
from airflow_rollout.targets.base import (
    AppCapability,
    AppNotReadyError,
    AppStopError,
    AppTarget,
    BackupIntegrityError,
    DataCapability,
    MigrationRun,
    RestoreMismatchError,
)
from airflow_rollout.targets.compose import ComposeError
from airflow_rollout.targets.databricks import run_job, serving_endpoint_ready
from airflow_rollout.targets.migrations import MigrationError
from airflow_rollout.versions import InvalidVersionError

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext, SystemContext

log = logging.getLogger(__name__)


class PreflightError(RuntimeError):
    """The release cannot start; nothing has been changed."""


class ChecksFailedError(RuntimeError):
    """One or more critical checks failed; the results are in the ledger."""


class RollbackError(RuntimeError):
    """A rollback step could not do its part; the message says what state it left the system in."""


class LockHeldError(PreflightError):
    """Another release, or another run of this one, works on the system: this run changes nothing."""


class StepNotApplicableError(Exception):
    """The step has nothing to do in this run (the task is marked skipped, with this reason)."""


# Errors a retry cannot mend: the task fails at once instead of trying again. Only this package's own types:
# a ValueError or LookupError from a library may be transient, and gets the task's retries.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    PreflightError,  # and LockHeldError
    MigrationError,
    BackupIntegrityError,
    RestoreMismatchError,
    ChecksFailedError,
    RollbackError,
    AppStopError,
    AppNotReadyError,  # a build that exits or never answers does not improve on a second start
    ComposeError,
    ProfileError,  # and ChecklistError
    InvalidVersionError,
    ReleaseNotFoundError,
    LedgerConflictError,
)


def is_permanent(error: BaseException) -> bool:
    """A failure a retry cannot mend: the task fails at once."""
    return isinstance(error, PERMANENT_ERRORS)


# --- preflight -------------------------------------------------------------------------------------


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


# --- backup ------------------------------------------------------------------------------------------


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


# --- migrate -----------------------------------------------------------------------------------------


def migrate(ctx: ReleaseContext) -> dict[str, Any]:
    require_backups(ctx)
    if ctx.profile.deploy_order is DeployOrder.STOP_FIRST:
        stopped = stop_for_deploy(ctx)
        log.info("stop_first: stopped before migrating: %s", stopped)
    applied: dict[str, list[str]] = {}
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
    return applied


# --- deploy ------------------------------------------------------------------------------------------


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
    return f"stopped {running.version}" if running else "already stopped"


def stop_for_deploy(ctx: ReleaseContext) -> dict[str, str]:
    """stop_first: the old version stops before the first migration, so its code never runs on the new schema."""
    stopped = {}
    for name, app in ctx.apps.items():
        record_before_touching(ctx, name, app)
        stopped[name] = quiesce(ctx, name, app)
    return stopped


def deploy(ctx: ReleaseContext) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, app in ctx.apps.items():
        previous = record_before_touching(ctx, name, app)
        running = app.current()
        if running and running.version == ctx.version:
            app.wait_ready(ctx.version)
            result[name] = {"previous_version": previous, "already_running": True}
            continue
        quiesced = ctx.ledger.app_states(ctx.release_id)[name].quiesced
        if quiesced:  # stopped before the migration (stop_first): the downtime runs from that stop
            app.resume(quiesced, ctx.version)
            downtime = time.time() - float(quiesced["stopped_at"])
        else:
            downtime = app.switch_to(ctx.version)
        ctx.ledger.record_app_state(
            ctx.release_id, name, previous_version=previous, deployed_version=ctx.version, downtime_seconds=downtime
        )
        result[name] = {"previous_version": previous, "downtime_seconds": round(downtime, 2)}
    return result


# --- verify ------------------------------------------------------------------------------------------


CheckKinds = tuple[type[HttpCheck | LatencyCheck | ServingEndpointCheck | DatabricksJobCheck], ...]


def run_checks(ctx: ReleaseContext, kinds: CheckKinds, version: str | None = None) -> list[CheckResult]:
    results: list[CheckResult] = []
    for check in ctx.profile.checks:
        if not isinstance(check, kinds):
            continue
        if isinstance(check, ServingEndpointCheck):
            result = serving_endpoint_ready(check)
        elif isinstance(check, DatabricksJobCheck):
            result = run_job(check)
        elif isinstance(check, LatencyCheck):
            result = run_latency_probe(check, ctx.app_base_url(check.app))
        else:
            result = run_http_check(check, ctx.app_base_url(check.app), version or ctx.version)
        log.info("%s %s: %s", "PASS" if result.passed else "FAIL", result.name, result.detail)
        results.append(result)
    return results


def verify(ctx: ReleaseContext, kinds: CheckKinds) -> dict[str, Any]:
    results = run_checks(ctx, kinds)
    for result in results:
        ctx.ledger.record_measurement(ctx.release_id, result.as_dict())
    critical = [r for r in results if r.critical and not r.passed]
    if critical:
        raise ChecksFailedError("; ".join(f"{r.name}: {r.detail}" for r in critical))
    return {r.name: r.detail for r in results}


def check_endpoints(ctx: ReleaseContext) -> dict[str, Any]:
    return verify(ctx, (HttpCheck, ServingEndpointCheck, DatabricksJobCheck))


def probe_latency(ctx: ReleaseContext) -> dict[str, Any]:
    return verify(ctx, (LatencyCheck,))


def fingerprint_after_verify(ctx: ReleaseContext) -> dict[str, Any]:
    tables: dict[str, int] = {}
    for target in ctx.data_targets:
        fingerprint = target.fingerprint()
        ctx.ledger.record_fingerprint(ctx.release_id, target.config.name, FingerprintStage.AFTER_VERIFY, fingerprint)
        tables[target.config.name] = len(fingerprint)
    return tables


# --- decide ------------------------------------------------------------------------------------------


def corrupted_tables(
    before: dict[str, Any], after_migrate: dict[str, Any] | None, after_verify: dict[str, Any] | None, volatile: set[str]
) -> list[str]:
    """Tables the migration left alone (and the app does not write) that changed anyway, or vanished."""
    if after_verify is None:
        return []
    reference = after_migrate if after_migrate is not None else before
    corrupted = []
    for table, fingerprint in sorted(before.items()):
        if table.split(".", 1)[1] in volatile or reference.get(table) != fingerprint:
            continue
        if after_verify.get(table) != fingerprint:
            corrupted.append(table)
    return corrupted


def observe(ctx: ReleaseContext) -> Observations:
    steps = ctx.ledger.steps(ctx.release_id)
    phase_failures = tuple(
        f"{s.phase}.{s.step}: {s.error}" for s in steps if s.status == "failed" and s.phase in {"migrate", "deploy", "verify"}
    )
    measurements = ctx.ledger.measurements(ctx.release_id)
    failed_checks = tuple(FailedCheck(m.name, m.critical, m.detail) for m in measurements if not m.passed)
    latency = [m for m in measurements if m.kind == "latency"]
    error_rate = max((float(m.metrics["error_rate"]) for m in latency), default=None)
    p95 = float(latency[0].metrics["p95_ms"]) if latency else None
    baseline = ctx.ledger.baseline_p95(ctx.profile.name, latency[0].name) if latency else None
    downtimes = [s.downtime_seconds for s in ctx.ledger.app_states(ctx.release_id).values() if s.downtime_seconds is not None]
    corrupted: list[str] = []
    for target in ctx.data_targets_with(DataCapability.CORRUPTION_CHECK):
        name = target.config.name
        before = ctx.ledger.fingerprint(ctx.release_id, name, FingerprintStage.BEFORE)
        if before is not None:
            corrupted += [
                f"{name}:{t}"
                for t in corrupted_tables(
                    before,
                    ctx.ledger.fingerprint(ctx.release_id, name, FingerprintStage.AFTER_MIGRATE),
                    ctx.ledger.fingerprint(ctx.release_id, name, FingerprintStage.AFTER_VERIFY),
                    set(target.volatile_tables()),
                )
            ]
    return Observations(
        phase_failures=phase_failures,
        failed_checks=failed_checks,
        error_rate=error_rate,
        p95_ms=p95,
        baseline_p95_ms=baseline,
        downtime_seconds=max(downtimes, default=None),
        corrupted_tables=tuple(corrupted),
    )


def backups_complete(ctx: ReleaseContext) -> bool:
    return all(ctx.ledger.backup(ctx.release_id, t.config.name) for t in ctx.data_targets)


def make_decision(ctx: ReleaseContext) -> Decision:
    decision = decide(observe(ctx), ctx.profile.rollback_criteria)
    ctx.ledger.record_decision(ctx.release_id, decision.outcome.value, list(decision.reasons), decision.numbers, "airflow_rollout.decision")
    if decision.outcome is Outcome.INVESTIGATE:
        ctx.ledger.set_status(ctx.release_id, ReleaseStatus.AWAITING_DECISION)
    lines = list(decision.reasons) or ["every check passed within the criteria"]
    lines += [f"{key}: {value:.4g}" for key, value in decision.numbers.items() if value is not None]
    ctx.notifier.send(Event.DECISION, ctx.release_id, f"{ctx.version}: decision *{decision.outcome.value}*", lines)
    return decision


def abort(ctx: ReleaseContext, reason: str) -> None:
    """The release stopped before it changed anything: record why, free the lock, say so."""
    ctx.ledger.set_status(ctx.release_id, ReleaseStatus.ABORTED, reason=reason, final=True)
    ctx.ledger.release_lock(ctx.profile.name, ctx.release_id)
    ctx.notifier.send(Event.ABORTED, ctx.release_id, f"release of {ctx.version} stopped before any change", [reason])


def record_human_decision(ctx: ReleaseContext, choice: str, responder: str | None) -> None:
    release = ctx.release()
    reasons = [*list(release.decision_reasons or []), f"investigated: {responder or 'nobody answered in time'} chose {choice!r}"]
    ctx.ledger.record_decision(ctx.release_id, "rollback" if choice == "Roll back" else "proceed", reasons, None, responder or "timeout")


# --- post-deploy -------------------------------------------------------------------------------------


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
    return {"status": ReleaseStatus.PROMOTED.value, "baselines": {m.name: m.metrics for m in measurements if m.kind == "latency"}}


# --- rollback ----------------------------------------------------------------------------------------


def stop_apps(ctx: ReleaseContext) -> dict[str, Any]:
    """Quiesce every app the release touched, so that nothing of the new version writes while the data is restored.

    Most services refuse to start on a schema revision they do not know: the previous version can only start
    once its data is back, so the order is stop, restore, start. A stop that fails starts again what this
    step had stopped (the system serves as before the step) and nothing is restored.
    """
    if ctx.release().status == ReleaseStatus.ROLLED_BACK.value:
        raise StepNotApplicableError(f"release {ctx.release_id} is rolled back already: nothing is stopped, restored or started again")
    if ctx.reason:
        record_rollback_request(ctx)
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
        if target.fingerprint() == before:
            ctx.ledger.record_fingerprint(ctx.release_id, name, FingerprintStage.AFTER_RESTORE, before)
            result[name] = "already equal to the pre-release fingerprint"
            continue
        target.restore(backup_row.location, backup_row.sha256)
        after = target.fingerprint()
        ctx.ledger.record_fingerprint(ctx.release_id, name, FingerprintStage.AFTER_RESTORE, after)
        if after != before:
            differing = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
            raise RestoreMismatchError(f"{name}: after the restore these tables differ from before the release: {', '.join(differing)}")
        result[name] = f"restored from {backup_row.location}; fingerprint equal ({len(after)} tables)"
    return result


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


# --- adopt: a system already running, outside this package ------------------------------------------------


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
