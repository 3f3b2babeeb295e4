"""The decision as the release page shows it: each criterion measured against its threshold, the verdict being
`decision.decide` applied to that one measurement, and whether its rule is among the reasons recorded."""

from __future__ import annotations

from airflow_rollout.config import RollbackCriteria
from airflow_rollout.dashboard.pages import criteria_rows, reason_kind
from airflow_rollout.decision import Observations, decide

DEFAULTS = RollbackCriteria()


def rows_of(observed: Observations, criteria: RollbackCriteria = DEFAULTS) -> dict[str, dict]:
    decision = decide(observed, criteria)
    return {row["criterion"]: row for row in criteria_rows(decision.numbers, list(decision.reasons), criteria)}


def test_an_error_rate_above_the_rollback_threshold_fired():
    rows = rows_of(Observations(error_rate=0.3333, p95_ms=91, baseline_p95_ms=66, downtime_seconds=1.6))

    error = rows["Error rate"]
    assert (error["measured"], error["threshold"]) == ("33.33 %", "investigate ≥ 1 %, roll back > 10 %")
    assert (error["verdict"], error["rule"], error["fired"]) == ("rollback", "error rate 33.33% > 10%", True)
    latency = rows["p95 latency against the last promoted release"]
    assert latency["verdict"] == "investigate" and latency["fired"]  # recorded as "also: ..." after the rollback rule
    assert rows["Downtime"]["verdict"] == "proceed" and not rows["Downtime"]["fired"]


def test_thresholds_are_the_profiles():
    criteria = RollbackCriteria(error_rate_rollback=0.05, error_rate_investigate=0.02)

    error = rows_of(Observations(error_rate=0.04), criteria)["Error rate"]

    assert error["threshold"] == "investigate ≥ 2 %, roll back > 5 %"
    assert (error["verdict"], error["rule"]) == ("investigate", "error rate 4% within 2%-5%")


def test_latency_below_the_noise_floor_is_within_the_criteria():
    latency = rows_of(Observations(p95_ms=2, baseline_p95_ms=1))["p95 latency against the last promoted release"]

    assert latency["verdict"] == "proceed" and latency["rule"] == "" and not latency["fired"]
    assert "changes under 25 ms ignored" in latency["threshold"]


def test_unmeasured_criteria_say_so_and_failed_checks_are_listed():
    rows = criteria_rows(
        {"error_rate": None},
        ["critical check health failed: HTTP 500", "also: non-critical check smoke failed: slow"],
        RollbackCriteria(),
    )
    by_name = {row["criterion"]: row for row in rows}

    assert by_name["Error rate"]["verdict"] == "not measured"
    assert by_name["Critical checks"]["rule"] == "critical check health failed: HTTP 500" and by_name["Critical checks"]["fired"]
    assert by_name["Non-critical checks"]["verdict"] == "investigate"


def test_each_recorded_reason_is_named_by_its_rule():
    assert reason_kind("error rate 33.33% > 10%") == "rollback rule"
    assert reason_kind("also: p95 latency 91 ms vs baseline 66 ms (+37.96%)") == "investigate rule"
    assert reason_kind("error rate 3% within 1%-10%") == "investigate rule"
    assert reason_kind("p95 latency 200 ms vs baseline 100 ms (+100%) >= +50%") == "rollback rule"
    assert reason_kind("downtime 400.0 s > 300 s") == "rollback rule"
    assert reason_kind("investigated: On-call Olga chose 'Roll back'") == "answer in Required Actions"
    assert reason_kind("rolled back by alice because slow") == "rollback requested by an operator"
