"""`monitoring` items against the Prometheus and Grafana API stand-in (devtools/monitoring_standin.py): seed 002's shipped
items pass on the monitoring the seed asks for, and each fails when its statement is false."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError
from seed_platforms import AI_ETL_ALERTS, ROUTING_DASHBOARDS, set_up_ai_etl_monitoring, set_up_routing_monitoring, shipped_checks

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.monitoring import MonitoringItemCheck, duration_seconds
from devtools.monitoring_standin import MonitoringStandIn

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_rollout.evidence import Evidence

SYSTEM = "ai-etl-assistant"
TOKEN = "grafana-test-token"
ALERT_ITEMS = {  # item: the seed's rule it reads
    "High error rate (>5%)": "HighErrorRate",
    "Slow API responses (>2s)": "SlowApiResponses",
    "Database connection issues": "DatabaseDown",
    "Disk space warnings (>80%)": "DiskSpaceLow",
}


@pytest.fixture
def monitoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MonitoringStandIn]:
    """Prometheus and Grafana as seed 002 sets them up, behind the shipped items' connections."""
    with MonitoringStandIn(grafana_token=TOKEN) as server:
        set_up_ai_etl_monitoring(server)
        monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_PROMETHEUS", server.prometheus_connection())
        monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_GRAFANA", server.grafana_connection())
        monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_ALERTMANAGER", server.alertmanager_connection())
        monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_LOKI", server.loki_connection())
        yield server


def item(text: str, at: datetime | None = None) -> Evidence:
    """The shipped item's evidence, for a run at `at` (now by default): what the log searches measure from."""
    ctx = SimpleNamespace(at=at or datetime.now(UTC))
    return evaluate(ctx, shipped_checks(SYSTEM, "monitoring")[text])  # type: ignore[arg-type]


def test_every_shipped_monitoring_item_passes_on_the_seeds_monitoring(monitoring: MonitoringStandIn) -> None:
    results = {text: item(text) for text in shipped_checks(SYSTEM, "monitoring")}
    assert len(results) == 23
    assert {text: e.detail for text, e in results.items() if not e.passed} == {}
    assert results["Set retention period (15 days minimum)"].detail.endswith("storageRetention '15d', at least 15d")
    assert "HighErrorRate: " in results["High error rate (>5%)"].detail
    assert "dashboard 'LLM Usage' (uid llm-usage) with 1 panel(s)" in results["LLM usage tracking"].detail
    assert results["Configure PagerDuty/Opsgenie"].detail.endswith("route.routes[0] sends to 'pagerduty-oncall' (pagerduty)")
    assert results["Set log retention policy"].detail.endswith("limits_config.retention_period '744h', at least 1d")
    assert results["Check log aggregation"].detail.count("(1 stream(s))") == 3


@pytest.mark.parametrize(("retention", "why"), [("14d", "shorter than 15d"), ("30d or 50GiB", "a size cap deletes blocks")])
def test_a_shorter_retention_or_a_size_cap_fails(monitoring: MonitoringStandIn, retention: str, why: str) -> None:
    monitoring.retention = retention
    evidence = item("Set retention period (15 days minimum)")
    assert not evidence.passed
    assert why in evidence.detail


def test_a_longer_retention_in_other_units_passes(monitoring: MonitoringStandIn) -> None:
    monitoring.retention = "2w1d"
    assert item("Set retention period (15 days minimum)").passed
    assert duration_seconds("360h") == duration_seconds("15d")


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("API request rate and latency", "http_request_duration_seconds_bucket"),
        ("Pipeline success rate", "etl_pipeline_runs_total"),
        ("Database connection pool usage", "db_pool_size"),
        ("LLM API costs and latency", "llm_cost_usd_total"),
    ],
)
def test_a_key_metric_prometheus_does_not_hold_fails(monitoring: MonitoringStandIn, text: str, metric: str) -> None:
    # for the pipeline: only its successes counted, so no success rate can be computed
    monitoring.series[:] = [s for s in monitoring.series if s["__name__"] != metric or s.get("status") == "success"]
    evidence = item(text)
    assert not evidence.passed
    assert f"NONE: {metric}" in evidence.detail


@pytest.mark.parametrize(
    ("text", "metric"),
    [
        ("Monitor replication lag", "pg_replication_lag_seconds"),
        ("Monitor lag and sync status", "redis_master_link_up"),
        ("Monitor replica health", "ClickHouseMetrics_ReadonlyReplica"),
        ("Configure log forwarding to Loki/ELK", "fluentbit_output_proc_records_total"),
        ("Verify metrics are being collected", "llm_request_duration_seconds_bucket"),
        ("Enable connection pooling", "db_pool_connections_in_use"),
    ],
)
def test_what_an_item_monitors_fails_when_prometheus_does_not_scrape_it(monitoring: MonitoringStandIn, text: str, metric: str) -> None:
    monitoring.series[:] = [s for s in monitoring.series if s["__name__"] != metric]
    evidence = item(text)
    assert not evidence.passed
    assert f"NONE: {metric}" in evidence.detail


def test_a_collector_forwarding_elsewhere_than_loki_or_elasticsearch_is_no_log_forwarding(monitoring: MonitoringStandIn) -> None:
    """Fluent Bit's only output is stdout: its records are counted, but they reach no log store."""
    for series in monitoring.series:
        if series["__name__"] == "fluentbit_output_proc_records_total":
            series["name"] = "stdout.0"
    assert not item("Configure log forwarding to Loki/ELK").passed
    for series in monitoring.series:
        if series["__name__"] == "fluentbit_output_proc_records_total":
            series["name"] = "es.1"
    assert item("Configure log forwarding to Loki/ELK").passed


def test_a_metric_no_longer_scraped_does_not_count(monitoring: MonitoringStandIn) -> None:
    """The gateway stopped exporting its spend two hours ago: Prometheus keeps the old series, but none is current."""
    for series in monitoring.series:
        if series["__name__"] == "llm_cost_usd_total":
            monitoring.end_series(series, time.time() - 7200)
    evidence = item("LLM API costs and latency")
    assert not evidence.passed
    assert 'NONE: llm_cost_usd_total{job="llm-gateway"} (0 series)' in evidence.detail


def test_a_metric_from_another_job_does_not_count(monitoring: MonitoringStandIn) -> None:
    for series in monitoring.series:
        if series["__name__"] == "db_pool_size":
            series["job"] = "postgres-exporter"
    assert not item("Database connection pool usage").passed


@pytest.mark.parametrize(
    ("text", "other_threshold"),
    [
        ("High error rate (>5%)", ("> 0.05", "> 0.5")),
        ("Slow API responses (>2s)", ("> 2", "> 20")),
        ("Database connection issues", ("== 0", "== 1")),
        ("Disk space warnings (>80%)", ("> 0.8", "> 0.95")),
    ],
)
def test_an_alert_with_another_threshold_fails(monitoring: MonitoringStandIn, text: str, other_threshold: tuple[str, str]) -> None:
    [group] = monitoring.rule_groups
    rule = next(r for r in group["rules"] if r["name"] == ALERT_ITEMS[text])
    assert rule["query"] == AI_ETL_ALERTS[ALERT_ITEMS[text]]
    rule["query"] = rule["query"].replace(*other_threshold)
    evidence = item(text)
    assert not evidence.passed
    assert "none whose expression matches" in evidence.detail


def test_an_alert_without_its_rule_or_one_that_fails_to_evaluate_fails(monitoring: MonitoringStandIn) -> None:
    [group] = monitoring.rule_groups
    rule = next(r for r in group["rules"] if r["name"] == "HighErrorRate")
    rule.update(health="err", lastError="many-to-many matching not allowed")
    evidence = item("High error rate (>5%)")
    assert not evidence.passed
    assert "HighErrorRate health 'err': many-to-many matching not allowed" in evidence.detail
    group["rules"].remove(rule)
    assert not item("High error rate (>5%)").passed


def test_a_recording_rule_with_the_expression_is_no_alert(monitoring: MonitoringStandIn) -> None:
    [group] = monitoring.rule_groups
    for rule in group["rules"]:
        rule["type"] = "recording"
    assert not item("Disk space warnings (>80%)").passed


def test_a_missing_or_empty_dashboard_fails(monitoring: MonitoringStandIn) -> None:
    monitoring.dashboards[0]["panels"] = []
    evidence = item("System overview dashboard")
    assert not evidence.passed
    assert evidence.detail.endswith("dashboard 'System Overview' (uid system-overview) has no panels")
    monitoring.dashboards[:] = [{"uid": "api-old", "title": "API Performance (old)", "panels": [{"id": 1}]}]
    evidence = item("API performance dashboard")
    assert not evidence.passed
    assert "no dashboard titled 'API Performance' (found: 'API Performance (old)')" in evidence.detail


PAGERDUTY_ROUTE = "  - receiver: pagerduty-oncall\n    matchers: ['severity=\"critical\"']\n"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        # on-call never set up: Alertmanager sends everything to Slack
        (lambda config: config.replace("pagerduty_configs:\n  - routing_key: <secret>", "email_configs:\n  - to: ops@x.org"), "none with"),
        # the PagerDuty receiver is defined, but the route that sent critical alerts to it is gone
        (lambda config: config.replace(PAGERDUTY_ROUTE, ""), "named by no route"),
    ],
    ids=["no-paging-receiver", "receiver-without-route"],
)
def test_alerts_not_routed_to_pagerduty_or_opsgenie_fail(monitoring: MonitoringStandIn, change: Any, why: str) -> None:
    changed = change(monitoring.alertmanager_config)
    assert changed != monitoring.alertmanager_config
    monitoring.alertmanager_config = changed
    evidence = item("Configure PagerDuty/Opsgenie")
    assert not evidence.passed
    assert why in evidence.detail and "<secret>" not in evidence.detail, evidence.detail


def test_an_opsgenie_receiver_a_child_route_inherits_passes(monitoring: MonitoringStandIn) -> None:
    monitoring.alertmanager_config = (
        "route:\n  receiver: opsgenie\n  routes:\n  - matchers: ['team=\"etl\"']\n"
        "receivers:\n- name: opsgenie\n  opsgenie_configs:\n  - api_key: <secret>\n"
    )
    evidence = item("Configure PagerDuty/Opsgenie")
    assert evidence.passed, evidence.detail
    assert "route sends to 'opsgenie' (opsgenie)" in evidence.detail


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ("compactor:\n  retention_enabled: false\nlimits_config:\n  retention_period: 744h\n", "the compactor deletes nothing"),
        ("compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 0s\n", "logs are kept forever"),
        ("compactor:\n  retention_enabled: true\nlimits_config:\n  retention_period: 12h\n", "shorter than 1d"),
    ],
    ids=["compactor-off", "kept-forever", "half-a-day"],
)
def test_loki_without_a_retention_policy_fails(monitoring: MonitoringStandIn, config: str, why: str) -> None:
    monitoring.loki_config = config
    evidence = item("Set log retention policy")
    assert not evidence.passed
    assert why in evidence.detail, evidence.detail


def test_logs_loki_does_not_hold_for_the_hour_before_the_run_fail(monitoring: MonitoringStandIn) -> None:
    """The frontend's logs never reached Loki: aggregation fails for it alone; a run two hours later finds no line at all."""
    monitoring.log_streams[:] = [s for s in monitoring.log_streams if s["stream"]["app"] != "frontend"]
    evidence = item("Check log aggregation")
    assert not evidence.passed
    assert 'NO LINE: {namespace="ai-etl-prod", app="frontend"}' in evidence.detail and "NO LINE" not in evidence.detail.replace(
        'NO LINE: {namespace="ai-etl-prod", app="frontend"}', ""
    )
    assert item("Test log search").passed
    later = datetime.now(UTC) + timedelta(hours=2)
    assert not item("Test log search", later).passed
    assert not item("Check log aggregation", later).passed


def test_grafana_refuses_a_wrong_token(monitoring: MonitoringStandIn) -> None:
    monitoring.grafana_token = "rotated"
    with pytest.raises(RuntimeError, match="answered HTTP 401"):
        item("System overview dashboard")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs exactly one of"),
        ({"dashboard": "x", "series": ["up"]}, "needs exactly one of"),
        ({"retention_at_least": "15 days"}, "is not a Prometheus duration"),
        ({"alerting_rule": "(unclosed"}, "is not a valid Python regular expression"),
        ({"dashboard": "x", "datasource_health": "prometheus"}, "needs exactly one of"),
        ({"dashboard": []}, "at least 1 item"),
        ({"datasource_health": "../admin"}, "should match pattern"),
        ({"routes_to": ["slack"]}, "Input should be 'pagerduty' or 'opsgenie'"),
        ({"routes_to": [], "series": ["up"]}, "at least 1 item"),
        ({"logs": ['{app="backend"} |= "error"']}, "should match pattern"),
        ({"log_retention_at_least": "a month"}, "is not a Prometheus duration"),
    ],
)
def test_invalid_questions_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MonitoringItemCheck.model_validate({"kind": "monitoring", "conn_id": "ai_etl_prometheus", **fields})


# --- seed 003: Grafana's dashboards and its Prometheus data source ---------------------------------------------------


@pytest.fixture
def routing_monitoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MonitoringStandIn]:
    """Grafana and its Prometheus as seed 003's Step 10 sets them up, behind routing_grafana."""
    with MonitoringStandIn(grafana_token=TOKEN) as server:
        set_up_routing_monitoring(server)
        monkeypatch.setenv("AIRFLOW_CONN_ROUTING_GRAFANA", server.grafana_connection())
        yield server


def routing_item(text: str) -> Evidence:
    return evaluate(SimpleNamespace(), shipped_checks("routing-ml-platform", "monitoring")[text])  # type: ignore[arg-type]


def test_seed_003s_monitoring_items_pass_on_its_grafana_and_prometheus(routing_monitoring: MonitoringStandIn) -> None:
    assert set(shipped_checks("routing-ml-platform", "monitoring")) == {
        "Monitoring infrastructure deployed (Prometheus, Grafana)",
        "Monitoring operational (Grafana dashboards)",
    }
    deployed = routing_item("Monitoring infrastructure deployed (Prometheus, Grafana)")
    assert deployed.passed, deployed.detail
    assert deployed.detail.endswith("health OK: Successfully queried the Prometheus API.")
    dashboards = routing_item("Monitoring operational (Grafana dashboards)")
    assert dashboards.passed, dashboards.detail
    assert all(f"dashboard {title!r}" in dashboards.detail for title in ROUTING_DASHBOARDS)


def test_grafana_whose_prometheus_does_not_answer_fails(routing_monitoring: MonitoringStandIn) -> None:
    """Prometheus is not deployed where the data source points (a closed port): Grafana's health check says ERROR."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        routing_monitoring.datasources[0]["url"] = f"http://127.0.0.1:{closed.getsockname()[1]}"
        evidence = routing_item("Monitoring infrastructure deployed (Prometheus, Grafana)")
    assert not evidence.passed
    assert "health ERROR: error querying the Prometheus API" in evidence.detail


def test_a_data_source_that_is_not_prometheus_fails(routing_monitoring: MonitoringStandIn) -> None:
    routing_monitoring.datasources[0]["type"] = "loki"
    evidence = routing_item("Monitoring infrastructure deployed (Prometheus, Grafana)")
    assert not evidence.passed
    assert evidence.detail.endswith("not a Prometheus data source")


def test_one_of_the_seeds_dashboards_missing_fails(routing_monitoring: MonitoringStandIn) -> None:
    routing_monitoring.dashboards[:] = [d for d in routing_monitoring.dashboards if d["title"] != "Model Training Metrics"]
    evidence = routing_item("Monitoring operational (Grafana dashboards)")
    assert not evidence.passed
    assert "no dashboard titled 'Model Training Metrics'" in evidence.detail
    assert "dashboard 'Routing ML Overview' (uid routing-ml-overview) with 1 panel(s)" in evidence.detail
