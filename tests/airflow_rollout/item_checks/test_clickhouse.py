"""`clickhouse` items against the stand-in of ClickHouse's HTTP interface (devtools/clickhouse_standin.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError
from seed_platforms import fill_ai_etl_clickhouse

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.checklists import load_checklist
from airflow_rollout.item_checks.clickhouse import ClickHouseItemCheck
from devtools.clickhouse_standin import ClickHouseStandIn

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_rollout.evidence import Evidence

PASSWORD = "clickhouse-test-password"
SEED_SETTINGS = {"max_memory_usage": "10000000000", "max_threads": "16", "max_query_size": "1000000000"}


@pytest.fixture
def clickhouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClickHouseStandIn]:
    server = ClickHouseStandIn(user="rollout", password=PASSWORD, settings={"max_threads": "2", "max_memory_usage": "0"})
    server.start()
    conn = {"conn_type": "generic", "host": "127.0.0.1", "port": server.port, "login": "rollout", "password": PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS", json.dumps(conn))
    yield server
    server.stop()


def clickhouse_item(**fields: object) -> Evidence:
    check = ClickHouseItemCheck.model_validate({"kind": "clickhouse", "conn_id": "analytics", **fields})
    return evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]


def test_the_seeds_analytics_settings_pass_when_the_server_has_them(clickhouse: ClickHouseStandIn) -> None:
    clickhouse.set_settings(SEED_SETTINGS)
    evidence = clickhouse_item(settings=SEED_SETTINGS)
    assert evidence.passed, evidence.detail
    assert "max_memory_usage = '10000000000' (expected '10000000000'), max_threads = '16'" in evidence.detail
    assert clickhouse.queries[-1].endswith(" FORMAT JSON")


def test_a_server_with_other_settings_fails_naming_them(clickhouse: ClickHouseStandIn) -> None:
    evidence = clickhouse_item(settings=SEED_SETTINGS)
    assert not evidence.passed
    assert "max_threads = '2' (expected '16')" in evidence.detail
    assert evidence.detail.endswith("; not as expected: max_memory_usage, max_threads, max_query_size")


REPLICATED = (
    "SELECT CASE WHEN count(*) = 0 THEN -1 ELSE sum(engine NOT LIKE 'Replicated%') END FROM system.tables"
    " WHERE engine LIKE '%MergeTree' AND database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema')"
)


def test_a_query_passes_and_fails_on_its_first_value(clickhouse: ClickHouseStandIn) -> None:
    clickhouse.execute("INSERT INTO system.tables VALUES (?, ?, ?, ?, ?)", [("etl", "runs", "ReplicatedMergeTree", "toYYYYMM(day)", "")])
    assert clickhouse_item(query=REPLICATED, equals=0).passed
    clickhouse.execute("INSERT INTO system.tables VALUES (?, ?, ?, ?, ?)", [("etl", "metrics", "MergeTree", "", "")])
    evidence = clickhouse_item(query=REPLICATED, equals=0)
    assert not evidence.passed
    assert evidence.detail.endswith("-> 1 (expected 0.0)")


RETENTION = ("Configure TTL for old metrics", "Set up partitioning by date", "Enable compression")


def shipped(text: str) -> ClickHouseItemCheck:
    """The checklist's item as shipped (its conn_id ai_etl_clickhouse is the stand-in here)."""
    checklist = load_checklist("ai-etl-assistant")
    assert checklist is not None
    [check] = [e.item.check for e in checklist.entries() if e.item.text == text and isinstance(e.item.check, ClickHouseItemCheck)]
    return check


@pytest.fixture
def seed_clickhouse(clickhouse: ClickHouseStandIn, monkeypatch: pytest.MonkeyPatch) -> ClickHouseStandIn:
    conn = {"conn_type": "generic", "host": "127.0.0.1", "port": clickhouse.port, "login": "rollout", "password": PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_CLICKHOUSE", json.dumps(conn))
    return clickhouse


def test_the_seed_s_retention_items_pass_on_its_table(seed_clickhouse: ClickHouseStandIn) -> None:
    fill_ai_etl_clickhouse(seed_clickhouse)
    for text in RETENTION:
        evidence = evaluate(SimpleNamespace(), shipped(text))  # type: ignore[arg-type]
        assert evidence.passed, f"{text}: {evidence.detail}"


# a second table as the item's statement is false for it: no TTL, partitioned by a hash, a column stored uncompressed
UNRETAINED = ("etl", "llm_calls", "ReplicatedMergeTree", "cityHash64(model) % 8", "ReplicatedMergeTree() ORDER BY ts")


@pytest.mark.parametrize("text", RETENTION)
def test_a_retention_item_fails_when_a_table_is_not_so(seed_clickhouse: ClickHouseStandIn, text: str) -> None:
    fill_ai_etl_clickhouse(seed_clickhouse)
    seed_clickhouse.execute("INSERT INTO system.tables VALUES (?, ?, ?, ?, ?)", [UNRETAINED])
    seed_clickhouse.execute("INSERT INTO system.columns VALUES (?, ?, ?, ?)", [("etl", "llm_calls", "prompt", "CODEC(NONE)")])
    evidence = evaluate(SimpleNamespace(), shipped(text))  # type: ignore[arg-type]
    assert not evidence.passed
    assert evidence.detail.endswith("-> 1 (expected 0.0)"), evidence.detail


REPLICA_SYNC = "Test replica synchronization"


def test_the_seed_s_replica_is_in_sync(seed_clickhouse: ClickHouseStandIn) -> None:
    fill_ai_etl_clickhouse(seed_clickhouse)
    evidence = evaluate(SimpleNamespace(), shipped(REPLICA_SYNC))  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail


# (is_readonly, absolute_delay, total_replicas, active_replicas) of a second replicated table, each out of sync a way
@pytest.mark.parametrize(
    "replica",
    [(1, 0, 2, 2), (0, 301, 2, 2), (0, 0, 2, 1), (0, 0, 1, 1)],
    ids=["read-only", "behind", "a-peer-inactive", "no-peer-to-sync-with"],
)
def test_replica_synchronization_fails_for_a_replica_out_of_sync(seed_clickhouse: ClickHouseStandIn, replica: tuple[int, ...]) -> None:
    fill_ai_etl_clickhouse(seed_clickhouse)
    seed_clickhouse.execute("INSERT INTO system.replicas VALUES (?, ?, ?, ?, ?, ?)", [("etl", "llm_calls", *replica)])
    evidence = evaluate(SimpleNamespace(), shipped(REPLICA_SYNC))  # type: ignore[arg-type]
    assert not evidence.passed
    assert evidence.detail.endswith("-> 1 (expected 0.0)"), evidence.detail


@pytest.mark.usefixtures("seed_clickhouse")
def test_a_server_without_tables_fails_the_retention_items() -> None:
    for text in RETENTION:
        assert evaluate(SimpleNamespace(), shipped(text)).detail.endswith("-> -1 (expected 0.0)")  # type: ignore[arg-type]


def test_a_wrong_password_is_an_error_that_says_so(clickhouse: ClickHouseStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "generic", "host": "127.0.0.1", "port": clickhouse.port, "login": "rollout", "password": "wrong"}
    monkeypatch.setenv("AIRFLOW_CONN_ANALYTICS", json.dumps(conn))
    with pytest.raises(RuntimeError, match=r"answered HTTP 516: Code: 516\. DB::Exception: rollout: Authentication failed") as failed:
        clickhouse_item(settings={"max_threads": 16})  # a release records it as the item failing: "could not run: ..."
    assert "wrong" not in str(failed.value)  # the password is never shown


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of settings or query"),
        ({"query": "SELECT 1"}, "needs an expectation"),
        ({"query": "DROP TABLE etl.runs", "equals": 0}, "must be one read-only statement"),
        ({"settings": {"max_threads') OR ('1": 1}}, "String should match pattern"),
    ],
)
def test_a_check_that_could_write_or_inject_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ClickHouseItemCheck.model_validate({"kind": "clickhouse", "conn_id": "analytics", **fields})
