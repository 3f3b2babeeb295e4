"""Expectations over JSON documents, as the kubernetes, databricks_api and delta_table item checks use them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from pydantic import ValidationError

from airflow_rollout.json_expectations import Expectation, check_document

DEPLOYMENTS = {
    "items": [
        {
            "metadata": {"name": "backend"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"resources": {"limits": {"memory": "1Gi"}}}]}}},
        },
        {"metadata": {"name": "frontend"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"resources": {}}]}}}},
    ]
}
LIMITS = ["items", "*", "spec", "template", "spec", "containers", "*", "resources", "limits", "memory"]


def holds(document: object, **expectation: object) -> bool:
    passed, _, _ = check_document(document, [Expectation.model_validate(expectation)], "test")
    return passed


def test_every_branch_of_a_wildcard_must_hold_and_one_without_the_field_fails() -> None:
    passed, detail, numbers = check_document(DEPLOYMENTS, [Expectation(path=LIMITS)], "GET deployments")
    assert not passed
    assert "items[frontend].spec.template.spec.containers[0].resources.limits missing" in detail
    assert numbers["items.*.spec.template.spec.containers.*.resources.limits.memory"] == ["1Gi"]
    DEPLOYMENTS["items"][1]["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "512Mi"}}  # type: ignore[index]
    try:
        assert holds(DEPLOYMENTS, path=LIMITS)
    finally:
        DEPLOYMENTS["items"][1]["spec"]["template"]["spec"]["containers"][0]["resources"] = {}  # type: ignore[index]


def test_bounds_equality_and_membership() -> None:
    replicas = ["items", "*", "spec", "replicas"]
    assert holds(DEPLOYMENTS, path=replicas, at_least=2)
    assert not holds(DEPLOYMENTS, path=replicas, at_least=3)
    assert holds(DEPLOYMENTS, path=["items", "*", "metadata", "name"], one_of=["backend", "frontend"])
    assert not holds(DEPLOYMENTS, path=["items", "*", "metadata", "name"], equals="backend")
    assert holds(DEPLOYMENTS, path=["items", "*", "metadata", "name"], equals="backend", match="any")
    assert not holds(DEPLOYMENTS, path=["items", "*", "metadata", "name"], equals="gateway", match="any")
    assert holds({"policyTypes": ["Ingress", "Egress"]}, path=["policyTypes"], contains="Ingress")
    assert not holds({"policyTypes": ["Egress"]}, path=["policyTypes"], contains="Ingress")


def test_absent_counts_the_branches_without_the_path_and_fails_on_a_value_found() -> None:
    role = ["items", "*", "metadata", "labels", "node-role.kubernetes.io/control-plane"]
    control_plane = {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}}
    nodes = {"items": [control_plane, {"metadata": {"labels": {}}}, {"metadata": {}}, {"metadata": {"labels": {"zone": "a"}}}]}
    assert holds(nodes, path=role, absent=True, match="any", min_count=3)
    assert not holds(nodes, path=role, absent=True, match="any", min_count=4)
    passed, detail, _ = check_document(nodes, [Expectation(path=role, absent=True)], "GET nodes")
    assert not passed
    assert 'items[0].metadata.labels.node-role.kubernetes.io/control-plane = "" (present)' in detail
    with pytest.raises(ValidationError, match="absent compares nothing"):
        Expectation(path=role, absent=True, equals="")


def test_contains_a_mapping_finds_an_element_with_those_fields_among_others() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    issuing = {"type": "Issuing", "status": "True"}
    wanted = {"type": "Ready", "status": "True"}
    assert holds({"conditions": [issuing, ready]}, path=["conditions"], contains=wanted)
    assert not holds({"conditions": [issuing, {**ready, "status": "False"}]}, path=["conditions"], contains=wanted)
    assert not holds({"conditions": [issuing]}, path=["conditions"], contains=wanted)
    assert not holds({"conditions": ["Ready"]}, path=["conditions"], contains=wanted)


def test_an_empty_list_or_a_missing_field_finds_nothing_and_fails() -> None:
    assert not holds({"items": []}, path=["items", "*", "metadata", "name"])
    assert not holds({}, path=["enable_photon"], equals=True)
    assert not holds({"items": [{}]}, path=["items", "*", "x"], equals=1, match="any")
    assert not holds({"items": [{"x": 1}]}, path=["items", "*", "x"], equals=1, min_count=2)


def test_values_sent_as_strings_compare_as_the_expectation_s_type() -> None:
    assert holds({"delta.autoOptimize.optimizeWrite": "true"}, path=["delta.autoOptimize.optimizeWrite"], equals=True)
    assert not holds({"delta.autoOptimize.optimizeWrite": "false"}, path=["delta.autoOptimize.optimizeWrite"], equals=True)
    assert holds({"auto_stop_mins": "45"}, path=["auto_stop_mins"], at_least=30, at_most=60)
    assert not holds({"auto_stop_mins": True}, path=["auto_stop_mins"], at_least=0)


def test_a_string_holding_json_is_read_into() -> None:
    policy = {"policies": [{"definition": json.dumps({"autotermination_minutes": {"type": "range", "maxValue": 60}})}]}
    assert holds(policy, path=["policies", "*", "definition", "autotermination_minutes", "maxValue"], at_most=120)
    assert not holds(policy, path=["policies", "*", "definition", "autotermination_minutes", "maxValue"], at_most=30)


def test_an_expectation_nothing_could_meet_is_refused() -> None:
    with pytest.raises(ValidationError, match="nothing could pass"):
        Expectation(path=["x"], at_least=5, at_most=1)
    with pytest.raises(ValidationError):
        Expectation(path=[])
    with pytest.raises(ValidationError):
        Expectation(path=["x"], min_count=0)


def test_equals_path_compares_with_another_value_of_the_same_document() -> None:
    statefulset = {"spec": {"replicas": 3}, "status": {"readyReplicas": 3}}
    ready = {"path": ["status", "readyReplicas"], "equals_path": ["spec", "replicas"]}
    assert holds(statefulset, **ready)
    assert not holds({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}, **ready)
    assert not holds({"spec": {}, "status": {"readyReplicas": 2}}, **ready)  # no count to reach: nothing equals it
    passed, detail, _ = check_document({"spec": {"replicas": 5}, "status": {"readyReplicas": 3}}, [Expectation(**ready)], "GET x")
    assert not passed and "status.readyReplicas = 3 (differs)" in detail and "equals 5" in detail, detail
    with pytest.raises(ValidationError, match="give one"):
        Expectation(path=["a"], equals=1, equals_path=["b"])
    with pytest.raises(ValidationError, match="absent compares nothing"):
        Expectation(path=["a"], absent=True, equals_path=["b"])


WRITERS = {
    "metadata": {
        "managedFields": [
            {"manager": "kubectl-create", "time": "2026-09-01T00:00:00Z", "fieldsV1": {"f:data": {"f:JWT_SECRET_KEY": {}}}},
            {"manager": "kubectl-label", "time": "2026-11-30T00:00:00Z", "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}},
        ]
    }
}
WRITTEN = ["metadata", "managedFields", "*", "time"]


@pytest.mark.parametrize(("run", "passes"), [("2026-11-29T00:00:00+00:00", True), ("2026-12-01T00:00:00+00:00", False)])
def test_max_age_days_measures_from_the_run_s_time(run: str, passes: bool) -> None:
    """90 days after 2026-09-01 is 2026-11-30: a run before it finds the Secret's values young enough, one after it not."""
    writers = Expectation(path=WRITTEN, where_present=["fieldsV1", "f:data"], max_age_days=90)
    passed, detail, _ = check_document(WRITERS, [writers], "GET secret", datetime.fromisoformat(run))
    assert passed is passes, detail
    assert passes or 'managedFields[0].time = "2026-09-01T00:00:00Z" (91.0 days before the run)' in detail


def test_where_present_leaves_out_the_writers_of_other_fields() -> None:
    """Without it the relabelling a day ago would count as a write of the values."""
    run = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    assert check_document(WRITERS, [Expectation(path=WRITTEN, max_age_days=90, match="any")], "GET secret", run)[0]
    narrowed = Expectation(path=WRITTEN, where_present=["fieldsV1", "f:data"], max_age_days=90, match="any")
    assert not check_document(WRITERS, [narrowed], "GET secret", run)[0]
    assert not check_document({"metadata": {"managedFields": []}}, [narrowed], "GET secret", run)[0]  # no writer on record


@pytest.mark.parametrize(
    ("value", "run", "why"),
    [
        ("2026-11-01T00:00:00Z", None, "no run time to measure the age from"),
        ("yesterday", "2026-12-01T00:00:00+00:00", "not an RFC 3339 time"),
        ("2026-11-01T00:00:00", "2026-12-01T00:00:00+00:00", "a time without its zone"),
    ],
)
def test_an_age_that_cannot_be_measured_fails(value: str, run: str | None, why: str) -> None:
    at = datetime.fromisoformat(run) if run else None
    passed, detail, _ = check_document({"time": value}, [Expectation(path=["time"], max_age_days=90)], "GET x", at)
    assert not passed and why in detail, detail


def test_where_present_needs_a_wildcard_to_pick_elements_of() -> None:
    with pytest.raises(ValidationError, match="where_present picks elements"):
        Expectation(path=["metadata", "managedFields"], where_present=["fieldsV1"])
