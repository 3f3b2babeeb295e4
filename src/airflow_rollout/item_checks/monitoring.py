"""`monitoring`: what a running Prometheus, Grafana, Alertmanager or Loki reports through its documented HTTP API.

    check: {kind: monitoring, conn_id: ai_etl_prometheus, retention_at_least: 15d}
    check: {kind: monitoring, conn_id: ai_etl_prometheus, series: ['http_requests_total{job="backend"}']}
    check: {kind: monitoring, conn_id: ai_etl_prometheus, alerting_rule: 'http_requests_total.*>\\s*0?\\.05\\s*$'}
    check: {kind: monitoring, conn_id: ai_etl_grafana, dashboard: System Overview}
    check: {kind: monitoring, conn_id: routing_grafana, datasource_health: prometheus}
    check: {kind: monitoring, conn_id: ai_etl_alertmanager, routes_to: [pagerduty, opsgenie]}
    check: {kind: monitoring, conn_id: ai_etl_loki, log_retention_at_least: 7d}
    check: {kind: monitoring, conn_id: ai_etl_loki, logs: ['{namespace="ai-etl-prod", app="backend"}']}

Exactly one question per check:
- `retention_at_least`: Prometheus's effective retention, `storageRetention` of GET /api/v1/status/runtimeinfo ("15d",
  "15d or 512MiB", "512MiB"), is a time of at least this duration and no size cap (a cap deletes blocks sooner);
- `series`: GET /api/v1/series?match[]=<selector>&start=<an hour ago> finds at least one series for each selector: the
  metric is scraped now (a series whose last sample is older, from a service that stopped exporting it, does not count);
- `alerting_rule`: GET /api/v1/rules?type=alert holds an alerting rule whose expression (`query`) matches this Python
  regular expression (re.search), evaluated without error (`health: ok`): the threshold is in the expression;
- `dashboard`: Grafana's GET /api/search?type=dash-db finds a dashboard titled exactly this, and
  GET /api/dashboards/uid/<uid> shows it holds panels (an empty dashboard of that name was not imported); a list of
  titles asks it of each;
- `datasource_health`: Grafana's data source of this uid is a Prometheus one (GET /api/datasources/uid/<uid>) and its
  health check, Grafana querying that Prometheus, says OK (GET /api/datasources/uid/<uid>/health, HTTP 400 when not):
  both answer, and Grafana reaches Prometheus;
- `routes_to`: Alertmanager's configuration as it runs it (GET /api/v2/status, `config.original`) has a receiver with
  one of these integrations (`pagerduty` reads `pagerduty_configs`) that its routing tree sends alerts to (the root
  route's receiver or a child route's): a receiver no route names is never notified. Only receiver names and
  integrations reach the evidence, never their keys;
- `log_retention_at_least`: Loki's running configuration (GET /config, YAML) deletes logs (`compactor.retention_enabled`)
  older than `limits_config.retention_period`, a period of at least this (0s keeps them forever: no policy);
- `logs`: for each LogQL stream selector, Loki's GET /loki/api/v1/query_range over the hour before the run's time finds
  a log line: the logs are collected and searchable now.

The base URL is the connection's schema (http), host and port; a password is sent as `Authorization: Bearer`
(a Grafana service account token), never in the URL.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from airflow_rollout.config import ConnId, StrictModel

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow_rollout.context import SystemContext
    from airflow_rollout.evidence import Evidence

# Prometheus's duration units (model.ParseDuration): a year is 365 days
UNIT_SECONDS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
DURATION = re.compile(r"^(?:\d+(?:ms|[ywdhms]))+$")
DURATION_PART = re.compile(r"(\d+)(ms|[ywdhms])")
SCRAPED_WITHIN_SECONDS = 3600  # a key metric must have a sample this recent: an hour spans many scrape intervals
Selector = Annotated[str, Field(min_length=1, max_length=500)]
DashboardTitle = Annotated[str, Field(min_length=1, max_length=200)]


def duration_seconds(text: str) -> float:
    """Seconds of a Prometheus duration ("15d", "2w", "360h", "1d12h"); anything else raises."""
    if not DURATION.match(text):
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 15d, 2w, 360h)")
    return sum(int(count) * UNIT_SECONDS[unit] for count, unit in DURATION_PART.findall(text))


class MonitoringItemCheck(StrictModel):
    """One question to Prometheus (retention, series, alerting rule), Grafana (dashboard), Alertmanager (routes_to) or
    Loki (log retention, logs)."""

    kind: Literal["monitoring"]
    conn_id: ConnId = Field(description="an http connection: schema, host and port; password: a bearer token (Grafana)")
    retention_at_least: str | None = Field(default=None, description="a Prometheus duration the effective retention must reach")
    series: list[Selector] = Field(default_factory=list, description="series selectors, each of which must find a series")
    alerting_rule: str | None = Field(default=None, description="a regular expression a healthy alerting rule's expression matches")
    dashboard: DashboardTitle | Annotated[list[DashboardTitle], Field(min_length=1)] | None = Field(
        default=None, description="the exact title of a Grafana dashboard, or a list of titles: each must be there"
    )
    datasource_health: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$", description="the uid of a Grafana Prometheus data source whose health must be OK"
    )
    log_retention_at_least: str | None = Field(default=None, description="a duration Loki's retention period must reach")
    logs: list[Annotated[str, Field(pattern=r"^\{[^{}]+\}$", max_length=500)]] = Field(
        default_factory=list, description="LogQL stream selectors, each of which must find a log line of the last hour"
    )
    routes_to: list[Literal["pagerduty", "opsgenie"]] | None = Field(
        default=None, min_length=1, description="Alertmanager routes alerts to a receiver with one of these integrations"
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10

    @field_validator("retention_at_least", "log_retention_at_least")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)
        return value

    @field_validator("alerting_rule")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"`{value}` is not a valid Python regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_question(self) -> MonitoringItemCheck:
        asked = [self.retention_at_least is not None, bool(self.series), self.alerting_rule is not None, self.dashboard is not None]
        asked += [self.datasource_health is not None, self.routes_to is not None, self.log_retention_at_least is not None, bool(self.logs)]
        if sum(asked) != 1:
            raise ValueError(
                "needs exactly one of retention_at_least, series, alerting_rule, dashboard, datasource_health, routes_to,"
                " log_retention_at_least or logs"
            )
        return self


def _get(
    conn_id: str, path: str, params: dict[str, str], timeout_seconds: float, *, also: frozenset[int] = frozenset(), text: bool = False
) -> tuple[str, Any]:
    """(base URL, the JSON answer, or with `text` its text) of one GET; an answer other than 200 (or a status in `also`)
    raises with the server's text."""
    import httpx
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"connection {conn_id} names no host")
    base = f"{conn.schema or 'http'}://{conn.host}" + (f":{conn.port}" if conn.port else "")
    headers = {"Authorization": f"Bearer {conn.password}"} if conn.password else {}
    response = httpx.get(base + path, params=params, headers=headers, timeout=timeout_seconds)
    if response.status_code != 200 and response.status_code not in also:
        raise RuntimeError(f"{base}{path} answered HTTP {response.status_code}: {response.text.strip()[:300]}")
    return base, response.text if text else response.json()


def _retention(check: MonitoringItemCheck, wanted: str) -> tuple[bool, str]:
    base, answer = _get(check.conn_id, "/api/v1/status/runtimeinfo", {}, check.timeout_seconds)
    retention = str(answer["data"]["storageRetention"])
    where = f"Prometheus {base}: storageRetention {retention!r}"
    parts = [part.strip() for part in retention.split(" or ")]
    times = [part for part in parts if DURATION.match(part)]
    if len(times) != len(parts):
        return False, f"{where}: a size cap deletes blocks before {wanted} is up"
    if not times or duration_seconds(times[0]) < duration_seconds(wanted):
        return False, f"{where}: shorter than {wanted}"
    return True, f"{where}, at least {wanted}"


def _series(check: MonitoringItemCheck) -> tuple[bool, str]:
    found: list[str] = []
    missing: list[str] = []
    start = str(int(time.time()) - SCRAPED_WITHIN_SECONDS)
    for selector in check.series:
        base, answer = _get(check.conn_id, "/api/v1/series", {"match[]": selector, "start": start}, check.timeout_seconds)
        (found if answer["data"] else missing).append(f"{selector} ({len(answer['data'])} series)")
    where = f"Prometheus {base}: GET /api/v1/series of the last hour"
    return not missing, f"{where}: " + "; ".join([*found, *(f"NONE: {text}" for text in missing)])


def _alerting_rule(check: MonitoringItemCheck, pattern: str) -> tuple[bool, str]:
    base, answer = _get(check.conn_id, "/api/v1/rules", {"type": "alert"}, check.timeout_seconds)
    rules = [rule for group in answer["data"]["groups"] for rule in group["rules"] if rule.get("type") == "alerting"]
    matching = [rule for rule in rules if re.search(pattern, rule["query"])]
    healthy = [rule for rule in matching if rule.get("health") == "ok"]
    where = f"Prometheus {base}: {len(rules)} alerting rule(s)"
    if healthy:
        return True, f"{where}; {healthy[0]['name']}: {healthy[0]['query']} (health ok)"
    if matching:
        states = ", ".join(f"{rule['name']} health {rule.get('health')!r}: {rule.get('lastError', '')}" for rule in matching)
        return False, f"{where}; matching `{pattern}` but not evaluated cleanly: {states}"
    return False, f"{where}; none whose expression matches `{pattern}`"


def _dashboard(check: MonitoringItemCheck, title: str) -> tuple[bool, str]:
    base, hits = _get(check.conn_id, "/api/search", {"type": "dash-db", "query": title}, check.timeout_seconds)
    named = [hit for hit in hits if hit.get("title") == title]
    where = f"Grafana {base}"
    if not named:
        return False, f"{where}: no dashboard titled {title!r} (found: {', '.join(repr(h.get('title')) for h in hits) or 'none'})"
    _, answer = _get(check.conn_id, f"/api/dashboards/uid/{quote(str(named[0]['uid']), safe='')}", {}, check.timeout_seconds)
    panels = answer["dashboard"].get("panels") or []
    if not panels:
        return False, f"{where}: dashboard {title!r} (uid {named[0]['uid']}) has no panels"
    return True, f"{where}: dashboard {title!r} (uid {named[0]['uid']}) with {len(panels)} panel(s)"


def _datasource_health(check: MonitoringItemCheck, uid: str) -> tuple[bool, str]:
    path = f"/api/datasources/uid/{quote(uid, safe='')}"
    base, source = _get(check.conn_id, path, {}, check.timeout_seconds)
    where = f"Grafana {base}: data source {uid!r} ({source.get('type')} at {source.get('url')})"
    if source.get("type") != "prometheus":
        return False, f"{where}: not a Prometheus data source"
    # Grafana answers its health check with HTTP 400 and status ERROR when it cannot query the data source
    _, health = _get(check.conn_id, f"{path}/health", {}, check.timeout_seconds, also=frozenset({400}))
    return health.get("status") == "OK", f"{where}: health {health.get('status')}: {health.get('message')}"


def _routed_receivers(route: dict[str, Any], inherited: str | None = None, where: str = "route") -> list[tuple[str, str]]:
    """(receiver, the route naming it) for the route and each of its children: a child without one uses its parent's."""
    receiver = route.get("receiver") or inherited
    own = [(receiver, where)] if receiver else []
    children = route.get("routes") or []
    return own + [pair for i, child in enumerate(children) for pair in _routed_receivers(child, receiver, f"{where}.routes[{i}]")]


def _routes_to(check: MonitoringItemCheck, integrations: Sequence[str]) -> tuple[bool, str]:
    import yaml

    base, status = _get(check.conn_id, "/api/v2/status", {}, check.timeout_seconds)
    config = yaml.safe_load(status["config"]["original"]) or {}
    receivers = {r["name"]: r for r in config.get("receivers") or [] if isinstance(r, dict) and r.get("name")}
    with_integration = {name: [i for i in integrations if receiver.get(f"{i}_configs")] for name, receiver in receivers.items()}
    paging = {name: found for name, found in with_integration.items() if found}
    routed = [(name, where) for name, where in _routed_receivers(config.get("route") or {}) if name in paging]
    where = f"Alertmanager {base}: {len(receivers)} receiver(s)"
    if routed:
        name, route = routed[0]
        return True, f"{where}; {route} sends to {name!r} ({', '.join(paging[name])})"
    if paging:
        return False, f"{where}; {', '.join(map(repr, paging))} ({'/'.join(integrations)}) named by no route: never notified"
    return False, f"{where}; none with {' or '.join(f'{i}_configs' for i in integrations)}"


def _log_retention(check: MonitoringItemCheck, wanted: str) -> tuple[bool, str]:
    import yaml

    base, text = _get(check.conn_id, "/config", {}, check.timeout_seconds, text=True)
    config = yaml.safe_load(text) or {}
    enabled = bool((config.get("compactor") or {}).get("retention_enabled"))
    period = str((config.get("limits_config") or {}).get("retention_period") or "0s")
    where = f"Loki {base}: compactor.retention_enabled {enabled}, limits_config.retention_period {period!r}"
    if not enabled:
        return False, f"{where}: the compactor deletes nothing"
    seconds = duration_seconds(period) if DURATION.match(period) else 0
    if seconds == 0:
        return False, f"{where}: logs are kept forever"
    long_enough = seconds >= duration_seconds(wanted)
    return long_enough, f"{where}, {'at least' if long_enough else 'shorter than'} {wanted}"


def _logs(check: MonitoringItemCheck, at: datetime) -> tuple[bool, str]:
    end = int(at.timestamp() * 1e9)
    found: list[str] = []
    missing: list[str] = []
    for selector in check.logs:
        params = {"query": selector, "start": str(end - SCRAPED_WITHIN_SECONDS * 10**9), "end": str(end), "limit": "1"}
        base, answer = _get(check.conn_id, "/loki/api/v1/query_range", params, check.timeout_seconds)
        lines = sum(len(stream.get("values") or []) for stream in answer["data"]["result"])
        (found if lines else missing).append(f"{selector} ({len(answer['data']['result'])} stream(s))")
    where = f"Loki {base}: GET /loki/api/v1/query_range of the hour before {at.isoformat(timespec='seconds')}"
    return not missing, f"{where}: " + "; ".join([*found, *(f"NO LINE: {text}" for text in missing)])


def run(ctx: SystemContext, check: MonitoringItemCheck) -> Evidence:
    from airflow_rollout.evidence import Evidence

    if check.retention_at_least is not None:
        passed, detail = _retention(check, check.retention_at_least)
    elif check.alerting_rule is not None:
        passed, detail = _alerting_rule(check, check.alerting_rule)
    elif check.dashboard is not None:
        found = [_dashboard(check, title) for title in ([check.dashboard] if isinstance(check.dashboard, str) else check.dashboard)]
        passed, detail = all(ok for ok, _ in found), "; ".join(text for _, text in found)
    elif check.datasource_health is not None:
        passed, detail = _datasource_health(check, check.datasource_health)
    elif check.routes_to is not None:
        passed, detail = _routes_to(check, check.routes_to)
    elif check.log_retention_at_least is not None:
        passed, detail = _log_retention(check, check.log_retention_at_least)
    elif check.logs:
        passed, detail = _logs(check, ctx.at)
    else:
        passed, detail = _series(check)
    return Evidence(passed, detail)
