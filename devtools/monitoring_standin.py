"""A local stand-in for Prometheus's, Grafana's, Alertmanager's and Loki's HTTP APIs, answering with their documented field
names.

Prometheus (https://prometheus.io/docs/prometheus/latest/querying/api/): GET /api/v1/status/runtimeinfo
(`storageRetention`), /api/v1/series?match[]=<selector>&start=<unix time> (label sets with a sample since `start`; selectors
with =, !=, =~, !~), /api/v1/rules?type=alert
(`groups[].rules[]` with `name`, `query`, `health`, `type`). Grafana (https://grafana.com/docs/grafana/latest/developers/http_api/):
GET /api/search?type=dash-db&query=<text> (title substring, case-insensitive), /api/dashboards/uid/<uid>,
/api/datasources/uid/<uid> and its /health (the data source's URL queried), behind `Authorization: Bearer <token>` as a
service account token is. Alertmanager (https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml):
GET /api/v2/status, its running configuration as YAML text in `config.original`. Loki
(https://grafana.com/docs/loki/latest/reference/loki-http-api/): GET /config (its running configuration, YAML) and
/loki/api/v1/query_range?query=<stream selector>&start=<ns>&end=<ns>&limit=<n> (`data.result[]` streams with `stream`
labels and `values` [<ns>, <line>] within the range; stream selectors only, no pipeline). The state is the test's: what
it stores is answered.

    with MonitoringStandIn(grafana_token="t") as server:
        server.retention = "15d"; server.series.append({"__name__": "up", "job": "backend"})
        server.rule_groups.append({"name": "g", "file": "g.yaml", "rules": [...]})
        server.dashboards.append({"uid": "sys", "title": "System Overview", "panels": [...]})
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*(?:\{(.*)\})?\s*$")


def selects(selector: str, labels: dict[str, str]) -> bool:
    """Whether a series selector (`name{label="v", other=~"re"}`) selects the series with these labels."""
    parsed = SELECTOR.match(selector)
    if parsed is None:
        raise ValueError(f"bad selector {selector!r}")
    name, body = parsed.groups()
    matchers = [("__name__", "=", name)] if name else []
    matchers += [(label, op, json.loads(f'"{value}"')) for label, op, value in MATCHER.findall(body or "")]
    return bool(matchers) and all(_matches(op, labels.get(label, ""), want) for label, op, want in matchers)


def _matches(op: str, have: str, want: str) -> bool:
    """PromQL's label matchers; a label the series lacks is the empty string, and regular expressions are anchored."""
    if op in ("=~", "!~"):
        return (re.fullmatch(want, have) is not None) == (op == "=~")
    return (have == want) == (op == "=")


def _key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)


class MonitoringStandIn:
    """Prometheus, Grafana, Alertmanager and Loki on four local ports; `retention`, `series`, `rule_groups`, `dashboards`,
    `datasources`, `alertmanager_config`, `loki_config` and `log_streams` are what they hold."""

    def __init__(self, grafana_token: str) -> None:
        self.grafana_token = grafana_token
        self.retention = "15d"
        self.series: list[dict[str, str]] = []
        self.last_samples: dict[str, float] = {}  # a series no longer scraped (ended_series): when its last sample was
        self.rule_groups: list[dict[str, Any]] = []
        self.dashboards: list[dict[str, Any]] = []
        self.datasources: list[dict[str, Any]] = []  # Grafana's data sources as GET /api/datasources/uid/<uid> returns them
        self.alertmanager_config = "route:\n  receiver: default\nreceivers:\n- name: default\n"  # Alertmanager's YAML
        self.loki_config = "compactor:\n  retention_enabled: false\nlimits_config:\n  retention_period: 0s\n"  # Loki's defaults
        self.log_streams: list[dict[str, Any]] = []  # {"stream": labels, "values": [[<unix ns as text>, <line>], ...]}
        self.servers: list[ThreadingHTTPServer] = []

    def _prometheus(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/api/v1/status/runtimeinfo":
            return 200, {"status": "success", "data": {"storageRetention": self.retention, "reloadConfigSuccess": True}}
        if path == "/api/v1/series":
            selectors = query.get("match[]", [])
            if not selectors:
                return 400, {"status": "error", "errorType": "bad_data", "error": "no match[] parameter provided"}
            start = float(query.get("start", ["0"])[0])
            found = [
                labels
                for labels in self.series
                if any(selects(selector, labels) for selector in selectors) and self.last_samples.get(_key(labels), start) >= start
            ]
            return 200, {"status": "success", "data": found}
        if path == "/api/v1/rules":
            wanted = {"alert": "alerting", "record": "recording"}.get(query.get("type", [""])[0])
            groups = [{**group, "rules": [rule for rule in group["rules"] if wanted in (None, rule["type"])]} for group in self.rule_groups]
            return 200, {"status": "success", "data": {"groups": groups}}
        return 404, {"status": "error", "errorType": "not_found", "error": f"no {path}"}

    def end_series(self, labels: dict[str, str], last_sample: float) -> None:
        """The series stops being scraped: a query whose `start` is after its last sample no longer finds it."""
        self.last_samples[_key(labels)] = last_sample

    def _grafana(self, path: str, query: dict[str, list[str]], authorization: str) -> tuple[int, Any]:
        if authorization != f"Bearer {self.grafana_token}":
            return 401, {"message": "Unauthorized"}
        if path == "/api/search":
            text = query.get("query", [""])[0].lower()
            hits = [
                {"uid": d["uid"], "title": d["title"], "type": "dash-db", "url": f"/d/{d['uid']}", "tags": d.get("tags", [])}
                for d in self.dashboards
                if text in d["title"].lower() and query.get("type", ["dash-db"])[0] == "dash-db"
            ]
            return 200, hits
        if path.startswith("/api/dashboards/uid/"):
            uid = path.removeprefix("/api/dashboards/uid/")
            dashboard = next((d for d in self.dashboards if d["uid"] == uid), None)
            if dashboard is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": dashboard, "meta": {"slug": dashboard["title"].lower().replace(" ", "-"), "provisioned": True}}
        if path.startswith("/api/datasources/uid/"):
            return self._datasource(path.removeprefix("/api/datasources/uid/"))
        return 404, {"message": "Not found"}

    def _datasource(self, rest: str) -> tuple[int, Any]:
        """GET /api/datasources/uid/<uid>, or its /health."""
        uid, _, sub = rest.partition("/")
        source = next((d for d in self.datasources if d["uid"] == uid), None)
        if source is None or sub not in ("", "health"):
            return 404, {"message": "Data source not found"}
        return self._datasource_health(source) if sub == "health" else (200, source)

    @staticmethod
    def _datasource_health(source: dict[str, Any]) -> tuple[int, Any]:
        """As Grafana checks a Prometheus data source: it queries the data source's URL (here its runtime info), HTTP 400
        with status ERROR when that fails."""
        try:
            with urlopen(f"{source['url']}/api/v1/status/runtimeinfo", timeout=5):  # noqa: S310 - the test's own http URL
                return 200, {"status": "OK", "message": "Successfully queried the Prometheus API."}
        except OSError as exc:
            return 400, {"status": "ERROR", "message": f"error querying the Prometheus API: {exc}"}

    def _alertmanager(self, path: str) -> tuple[int, Any]:
        if path == "/api/v2/status":
            cluster = {"name": "01JDSTANDIN", "status": "ready", "peers": []}
            version = {"version": "0.28.1", "branch": "HEAD", "revision": "", "buildUser": "", "buildDate": "", "goVersion": ""}
            config = {"original": self.alertmanager_config}
            return 200, {"cluster": cluster, "versionInfo": version, "config": config, "uptime": "2026-11-01T00:00:00Z"}
        return 404, {"code": 404, "message": f"path {path} was not found"}

    def _loki(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path == "/config":
            return 200, self.loki_config
        if path == "/loki/api/v1/query_range":
            selector = query.get("query", [""])[0]
            start, end = int(query.get("start", ["0"])[0]), int(query.get("end", [str(10**20)])[0])
            limit = int(query.get("limit", ["100"])[0])
            streams = [
                {"stream": s["stream"], "values": [v for v in s["values"] if start <= int(v[0]) <= end][:limit]}
                for s in self.log_streams
                if selects(selector, s["stream"])
            ]
            return 200, {"status": "success", "data": {"resultType": "streams", "result": [s for s in streams if s["values"]]}}
        return 404, "404 page not found"

    def _serve(self, answer: Any) -> int:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                status, body = answer(url.path, parse_qs(url.query), self.headers.get("Authorization", ""))
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return int(server.server_address[1])

    def __enter__(self) -> MonitoringStandIn:
        self.prometheus_port = self._serve(lambda path, query, _auth: self._prometheus(path, query))
        self.grafana_port = self._serve(self._grafana)
        self.alertmanager_port = self._serve(lambda path, _query, _auth: self._alertmanager(path))
        self.loki_port = self._serve(lambda path, query, _auth: self._loki(path, query))
        return self

    def __exit__(self, *_exc: object) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def prometheus_connection(self) -> str:
        return json.dumps({"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": self.prometheus_port})

    def alertmanager_connection(self) -> str:
        return json.dumps({"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": self.alertmanager_port})

    def loki_connection(self) -> str:
        return json.dumps({"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": self.loki_port})

    def grafana_connection(self) -> str:
        """The service account token is the connection's password, as the checks send it."""
        return json.dumps(
            {"conn_type": "http", "schema": "http", "host": "127.0.0.1", "port": self.grafana_port, "password": self.grafana_token}
        )
