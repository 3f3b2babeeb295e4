"""The rollback decision: what was observed + the profile's criteria -> proceed, investigate or rollback.

A pure function with no I/O, so every rule is pinned by a table-driven test. The defaults are seed 003's
"Rollback Decision Criteria":

* roll back at once: error rate > 10 %, downtime > 5 min, data corruption detected, a critical check or
  phase failed (and, beyond the seed, latency degraded by 50 % or more);
* investigate first: error rate 1-10 %, latency degraded by less than 50 %, a non-critical check failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_rollout.config import RollbackCriteria


class Outcome(StrEnum):
    PROCEED = "proceed"
    INVESTIGATE = "investigate"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class FailedCheck:
    name: str
    critical: bool
    detail: str


@dataclass(frozen=True)
class Observations:
    phase_failures: tuple[str, ...] = ()
    failed_checks: tuple[FailedCheck, ...] = ()
    error_rate: float | None = None
    p95_ms: float | None = None
    baseline_p95_ms: float | None = None
    downtime_seconds: float | None = None
    corrupted_tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    numbers: dict[str, float | None] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{self.outcome.value}: " + ("; ".join(self.reasons) if self.reasons else "every check passed within the criteria")


def _pct(value: float) -> str:
    """A rate as a percentage precise enough that 10.01 % never reads as the 10 % it exceeds."""
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%"


def decide(observed: Observations, criteria: RollbackCriteria) -> Decision:
    rollback: list[str] = []
    investigate: list[str] = []

    rollback += [f"phase failed: {failure}" for failure in observed.phase_failures]
    if observed.corrupted_tables:
        rollback.append("data corruption detected: tables the migration did not touch changed: " + ", ".join(observed.corrupted_tables))
    for check in observed.failed_checks:
        (rollback if check.critical else investigate).append(
            f"{'critical' if check.critical else 'non-critical'} check {check.name} failed: {check.detail}"
        )

    if observed.error_rate is not None:
        if observed.error_rate > criteria.error_rate_rollback:
            rollback.append(f"error rate {_pct(observed.error_rate)} > {_pct(criteria.error_rate_rollback)}")
        elif observed.error_rate >= criteria.error_rate_investigate:
            band = f"{_pct(criteria.error_rate_investigate)}-{_pct(criteria.error_rate_rollback)}"
            investigate.append(f"error rate {_pct(observed.error_rate)} within {band}")

    if observed.downtime_seconds is not None and observed.downtime_seconds > criteria.downtime_rollback_seconds:
        rollback.append(f"downtime {observed.downtime_seconds:.1f} s > {criteria.downtime_rollback_seconds:g} s")

    degradation: float | None = None
    if observed.p95_ms is not None and observed.baseline_p95_ms:
        delta = observed.p95_ms - observed.baseline_p95_ms
        degradation = delta / observed.baseline_p95_ms
        # Below the absolute floor a relative change is noise (1 ms -> 2 ms is +100 %).
        if delta >= criteria.latency_min_delta_ms:
            text = f"p95 latency {observed.p95_ms:.0f} ms vs baseline {observed.baseline_p95_ms:.0f} ms (+{_pct(degradation)})"
            if degradation >= criteria.latency_degradation_rollback:
                rollback.append(text + f" >= +{_pct(criteria.latency_degradation_rollback)}")
            elif degradation >= criteria.latency_degradation_investigate:
                investigate.append(text)

    numbers = {
        "error_rate": observed.error_rate,
        "p95_ms": observed.p95_ms,
        "baseline_p95_ms": observed.baseline_p95_ms,
        "latency_degradation": degradation,
        "downtime_seconds": observed.downtime_seconds,
    }
    if rollback:
        return Decision(Outcome.ROLLBACK, tuple(rollback + [f"also: {reason}" for reason in investigate]), numbers)
    if investigate:
        return Decision(Outcome.INVESTIGATE, tuple(investigate), numbers)
    return Decision(Outcome.PROCEED, (), numbers)
