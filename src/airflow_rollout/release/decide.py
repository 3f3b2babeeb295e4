"""Decide: what was measured, against the profile's rollback criteria: proceed, roll back, or ask a human.

Plain functions of a ReleaseContext; `airflow_rollout.tasks` runs them as tasks. Each reads the ledger and the
target before acting, so running it again after a crash or a retry finishes the job instead of doing it twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_rollout.decision import Decision, FailedCheck, Observations, Outcome, decide
from airflow_rollout.ledger import FingerprintStage, ReleaseStatus
from airflow_rollout.notify import Event
from airflow_rollout.targets.base import DataCapability

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext


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
