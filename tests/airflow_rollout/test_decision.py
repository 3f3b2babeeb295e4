"""The rollback decision, rule by rule and boundary by boundary (seed 003's "Rollback Decision Criteria")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_rollout.config import RollbackCriteria
from airflow_rollout.decision import Decision, FailedCheck, Observations, Outcome, decide

PROCEED, INVESTIGATE, ROLLBACK = Outcome.PROCEED, Outcome.INVESTIGATE, Outcome.ROLLBACK

HEALTH_500 = FailedCheck("health", critical=True, detail="GET /health: HTTP 500, expected 200")
LATENCY_SLOW = FailedCheck("items_latency", critical=False, detail="p95 300 ms > 200 ms")


@dataclass(frozen=True)
class Row:
    id: str
    observed: Observations
    outcome: Outcome
    reasons: tuple[str, ...] | None  # exact; None: only `mentions` are checked
    criteria: dict[str, Any] = field(default_factory=dict)
    mentions: tuple[str, ...] = ()  # substrings of the summary


def latency(p95: float, baseline: float | None) -> Observations:
    return Observations(p95_ms=p95, baseline_p95_ms=baseline)


ROWS = [
    Row("nothing-observed", Observations(), PROCEED, ()),
    Row("all-healthy", Observations(error_rate=0.0, p95_ms=100, baseline_p95_ms=100, downtime_seconds=0), PROCEED, ()),
    # Error rate: investigate from 1 % inclusive, roll back strictly above 10 %.
    Row("error-0.99%-proceed", Observations(error_rate=0.0099), PROCEED, ()),
    Row("error-exactly-1%-investigate", Observations(error_rate=0.01), INVESTIGATE, ("error rate 1% within 1%-10%",)),
    Row("error-5%-investigate", Observations(error_rate=0.05), INVESTIGATE, ("error rate 5% within 1%-10%",)),
    Row("error-exactly-10%-investigate", Observations(error_rate=0.10), INVESTIGATE, ("error rate 10% within 1%-10%",)),
    # Only the threshold is pinned here: how 10.01 % itself is printed is test_rollback_reason_shows_the_number_that_crossed_the_line.
    Row("error-10.01%-rollback", Observations(error_rate=0.1001), ROLLBACK, None, mentions=("error rate 10.0", "> 10%")),
    Row("error-25%-rollback", Observations(error_rate=0.25), ROLLBACK, ("error rate 25% > 10%",)),
    # Downtime: more than 5 minutes, strictly.
    Row("downtime-exactly-300s-proceed", Observations(downtime_seconds=300), PROCEED, ()),
    Row("downtime-301s-rollback", Observations(downtime_seconds=301), ROLLBACK, ("downtime 301.0 s > 300 s",)),
    # Latency: relative to the baseline p95, but only once the absolute change reaches the floor (25 ms).
    Row("latency+20%-under-floor-proceed", latency(120, 100), PROCEED, ()),
    Row("latency+100%-1ms-to-2ms-proceed", latency(2, 1), PROCEED, ()),
    Row("latency+19%-above-floor-proceed", latency(238, 200), PROCEED, ()),
    Row("latency-exactly+20%-investigate", latency(240, 200), INVESTIGATE, ("p95 latency 240 ms vs baseline 200 ms (+20%)",)),
    Row("latency-delta-exactly-at-floor-investigate", latency(125, 100), INVESTIGATE, ("p95 latency 125 ms vs baseline 100 ms (+25%)",)),
    Row("latency+30%-investigate", latency(130, 100), INVESTIGATE, ("p95 latency 130 ms vs baseline 100 ms (+30%)",)),
    Row("latency+49%-investigate", latency(149, 100), INVESTIGATE, ("p95 latency 149 ms vs baseline 100 ms (+49%)",)),
    Row("latency+50%-rollback", latency(150, 100), ROLLBACK, ("p95 latency 150 ms vs baseline 100 ms (+50%) >= +50%",)),
    Row("latency-no-baseline-no-rule", latency(10_000, None), PROCEED, ()),
    Row("latency-zero-baseline-no-rule", latency(10_000, 0), PROCEED, ()),
    Row("latency-improved-proceed", latency(50, 100), PROCEED, ()),
    # Data and checks.
    Row(
        "corrupted-tables-rollback",
        Observations(corrupted_tables=("users", "orders")),
        ROLLBACK,
        ("data corruption detected: tables the migration did not touch changed: users, orders",),
    ),
    Row(
        "critical-check-failed-rollback",
        Observations(failed_checks=(HEALTH_500,)),
        ROLLBACK,
        ("critical check health failed: GET /health: HTTP 500, expected 200",),
    ),
    Row(
        "non-critical-check-failed-investigate",
        Observations(failed_checks=(LATENCY_SLOW,)),
        INVESTIGATE,
        ("non-critical check items_latency failed: p95 300 ms > 200 ms",),
    ),
    Row(
        "phase-failure-rollback",
        Observations(phase_failures=("migrate: relation items already exists",)),
        ROLLBACK,
        ("phase failed: migrate: relation items already exists",),
    ),
    Row(
        "rollback-keeps-investigate-reasons-as-also",
        Observations(failed_checks=(LATENCY_SLOW, HEALTH_500), error_rate=0.05, p95_ms=130, baseline_p95_ms=100),
        ROLLBACK,
        (
            "critical check health failed: GET /health: HTTP 500, expected 200",
            "also: non-critical check items_latency failed: p95 300 ms > 200 ms",
            "also: error rate 5% within 1%-10%",
            "also: p95 latency 130 ms vs baseline 100 ms (+30%)",
        ),
    ),
    Row(
        "every-rollback-rule-at-once-in-rule-order",
        Observations(
            phase_failures=("deploy: readiness timed out",),
            corrupted_tables=("users",),
            failed_checks=(HEALTH_500,),
            error_rate=0.5,
            downtime_seconds=900,
            p95_ms=400,
            baseline_p95_ms=100,
        ),
        ROLLBACK,
        (
            "phase failed: deploy: readiness timed out",
            "data corruption detected: tables the migration did not touch changed: users",
            "critical check health failed: GET /health: HTTP 500, expected 200",
            "error rate 50% > 10%",
            "downtime 900.0 s > 300 s",
            "p95 latency 400 ms vs baseline 100 ms (+300%) >= +50%",
        ),
    ),
    Row(
        "investigate-reasons-in-rule-order",
        Observations(failed_checks=(LATENCY_SLOW,), error_rate=0.02, p95_ms=130, baseline_p95_ms=100),
        INVESTIGATE,
        (
            "non-critical check items_latency failed: p95 300 ms > 200 ms",
            "error rate 2% within 1%-10%",
            "p95 latency 130 ms vs baseline 100 ms (+30%)",
        ),
    ),
    # A profile's own numbers replace the seed's.
    Row(
        "custom-error-rollback-5%",
        Observations(error_rate=0.06),
        ROLLBACK,
        ("error rate 6% > 5%",),
        {"error_rate_rollback": 0.05, "error_rate_investigate": 0.02},
    ),
    Row(
        "custom-error-below-2%-proceed",
        Observations(error_rate=0.015),
        PROCEED,
        (),
        {"error_rate_rollback": 0.05, "error_rate_investigate": 0.02},
    ),
    Row("custom-downtime-60s", Observations(downtime_seconds=61), ROLLBACK, ("downtime 61.0 s > 60 s",), {"downtime_rollback_seconds": 60}),
    Row(
        "custom-no-latency-floor",
        latency(2, 1),
        ROLLBACK,
        ("p95 latency 2 ms vs baseline 1 ms (+100%) >= +50%",),
        {"latency_min_delta_ms": 0},
    ),
    Row(
        "custom-latency-10%-investigate",
        latency(112, 100),
        INVESTIGATE,
        ("p95 latency 112 ms vs baseline 100 ms (+12%)",),
        {"latency_degradation_investigate": 0.1, "latency_degradation_rollback": 0.3, "latency_min_delta_ms": 5},
    ),
    Row(
        "custom-latency-30%-rollback",
        latency(130, 100),
        ROLLBACK,
        ("p95 latency 130 ms vs baseline 100 ms (+30%) >= +30%",),
        {"latency_degradation_investigate": 0.1, "latency_degradation_rollback": 0.3, "latency_min_delta_ms": 5},
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_decide(row: Row) -> None:
    decision = decide(row.observed, RollbackCriteria(**row.criteria))
    assert decision.outcome is row.outcome
    if row.reasons is not None:
        assert decision.reasons == row.reasons
    for mention in row.mentions:
        assert mention in decision.summary()


def test_row_ids_are_unique() -> None:
    assert len({row.id for row in ROWS}) == len(ROWS)


def test_defaults_are_seed_003_numbers() -> None:
    criteria = RollbackCriteria()
    assert criteria.error_rate_rollback == 0.10
    assert criteria.error_rate_investigate == 0.01
    assert criteria.latency_degradation_rollback == 0.50
    assert criteria.downtime_rollback_seconds == 5 * 60


@pytest.mark.parametrize(
    ("observed", "shown"),
    [
        pytest.param(Observations(error_rate=0.1001), "10.01%", id="error-rate-just-over-10%"),
        pytest.param(Observations(downtime_seconds=300.4), "300.4 s", id="downtime-just-over-300s"),
    ],
)
def test_rollback_reason_shows_the_number_that_crossed_the_line(observed: Observations, shown: str) -> None:
    # An operator reading "error rate 10% > 10%" cannot tell why the release was rolled back.
    decision = decide(observed, RollbackCriteria())
    assert decision.outcome is ROLLBACK
    assert shown in decision.reasons[0]


def test_numbers_are_recorded_even_when_no_rule_fires() -> None:
    decision = decide(Observations(error_rate=0.002, p95_ms=110, baseline_p95_ms=100, downtime_seconds=4), RollbackCriteria())
    assert decision.outcome is PROCEED
    assert decision.numbers == {
        "error_rate": 0.002,
        "p95_ms": 110,
        "baseline_p95_ms": 100,
        "latency_degradation": pytest.approx(0.10),
        "downtime_seconds": 4,
    }


def test_no_latency_degradation_without_a_baseline() -> None:
    assert decide(latency(100, None), RollbackCriteria()).numbers["latency_degradation"] is None


def test_summary_when_everything_passed() -> None:
    assert Decision(PROCEED, ()).summary() == "proceed: every check passed within the criteria"


def test_summary_joins_reasons() -> None:
    decision = decide(Observations(error_rate=0.25, failed_checks=(LATENCY_SLOW,)), RollbackCriteria())
    assert decision.summary() == ("rollback: error rate 25% > 10%; also: non-critical check items_latency failed: p95 300 ms > 200 ms")


def test_summary_of_investigate() -> None:
    assert decide(Observations(error_rate=0.03), RollbackCriteria()).summary() == "investigate: error rate 3% within 1%-10%"
