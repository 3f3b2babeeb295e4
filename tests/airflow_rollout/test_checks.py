"""HTTP checks and the latency probe against a real in-process HTTP server (no mocks of httpx)."""

from __future__ import annotations

import json
import math
import re
import socket
import threading
from dataclasses import dataclass
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from airflow_rollout.checks import CheckResult, percentile, run_burst, run_http_check, run_latency_probe
from airflow_rollout.config import HttpCheck, JsonShape, LatencyCheck, RequestAuth

if TYPE_CHECKING:
    from collections.abc import Iterator

SERVED_VERSION = "1.2.0"
# The secrets the served app knows; the checks read them from Airflow connections (AIRFLOW_CONN_*), as in production.
APP_TOKEN = "dapi-test-token"
SMOKE_USER, SMOKE_PASSWORD = "rollout-smoke", "smoke-password"
LIMIT = 5  # requests /limited answers before it refuses with 429
PRODUCTION_ORIGIN = "https://routing.example.com"


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, so the probe measures requests rather than TCP handshakes.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each keep-alive answer waits for a delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "ok", "version": SERVED_VERSION})
        elif self.path == "/list":
            self._send(200, [{"id": 1, "name": "a"}])
        elif self.path == "/fail":
            self._send(500, {"error": "boom"})
        elif self.path == "/text":
            self._send(200, b"plain words, not JSON")
        elif self.path == "/version":
            self._send(200, b"3.1.2\n", content_type="text/plain; charset=utf-8")
        elif self.path == "/long":
            self._send(200, b"<html>" + b"x" * 994, content_type="text/html")
        elif self.path == "/api/v1/health/detailed":
            # seed 000's "Test health with auth": a Databricks App refuses a request without its OAuth token
            token = self.headers.get("Authorization")
            if self.server.open_doors or token == f"Bearer {APP_TOKEN}":
                self._send(200, {"status": "healthy"})
            else:
                self._send(401, {"error": "unauthenticated"})
        elif self.path == "/limited":
            # a rate limit of LIMIT requests per server (per window, in a real one); open_doors: no limit at all
            with self.server.lock:
                self.server.limited_count += 1
                refused = not self.server.open_doors and self.server.limited_count > LIMIT
            self._send(429, {"detail": "slow down"}, headers={"Retry-After": "60"}) if refused else self._send(200, {"ok": True})
        elif self.path == "/cors":
            # seed 003's "CORS configured for production domains only": only its own origin is allowed
            origin = self.headers.get("Origin", "")
            allowed = self.server.open_doors or origin == PRODUCTION_ORIGIN
            self._send(
                200, {"ok": True}, headers={"Access-Control-Allow-Origin": "*" if self.server.open_doors else origin} if allowed else {}
            )
        elif self.path == "/every-fourth":
            with self.server.lock:
                self.server.every_fourth_count += 1
                count = self.server.every_fourth_count
            self._send(500 if count % 4 == 0 else 200, {"n": count})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"null")
        if self.path == "/api/auth/login":
            # seed 003's login; open_doors lets anyone in whatever the password, the failure the check must catch
            known = body.get("username") == SMOKE_USER and body.get("password") == SMOKE_PASSWORD
            if self.server.open_doors or known:
                self._send(200, {"access_token": "issued"})
            else:
                self._send(401, {"detail": "wrong username or password"})
            return
        self._send(201, body)

    def _send(self, status: int, body: Any, content_type: str | None = None, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type or ("application/octet-stream" if isinstance(body, bytes) else "application/json"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep pytest output clean


class _Server(ThreadingHTTPServer):
    # Do not wait for idle keep-alive handler threads at close; they are daemons and die with the test run.
    block_on_close = False
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.every_fourth_count = 0
        self.limited_count = 0
        self.open_doors = False


@dataclass(frozen=True)
class Served:
    base_url: str
    server: _Server


@pytest.fixture
def served() -> Iterator[Served]:
    # Function scope: /every-fourth counts requests, and each test must start that count at zero.
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Served(f"http://127.0.0.1:{server.server_port}", server)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    # Bind then close: nothing listens there afterwards, so a connection is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def http(path: str, **fields: Any) -> HttpCheck:
    return HttpCheck(name="probe", kind="http", app="web", path=path, **fields)


def latency(path: str, **fields: Any) -> LatencyCheck:
    return LatencyCheck(name="load", kind="latency", app="web", path=path, **fields)


# --- run_http_check -------------------------------------------------------------------------------------


def test_health_passes_with_version_substituted(served: Served) -> None:
    result = run_http_check(http("/health", expect_json={"status": "ok", "version": "{version}"}), served.base_url, "1.2.0")
    assert result.passed, result.detail
    assert result.detail.startswith("GET /health: HTTP 200 in ")
    assert result.metrics["status"] == 200
    assert result.metrics["elapsed_ms"] >= 0
    assert (result.name, result.kind, result.critical) == ("probe", "http", True)


def test_json_field_mismatch_names_field_and_both_values(served: Served) -> None:
    # The deployed process still answers with the old version: the substituted value must not match.
    result = run_http_check(http("/health", expect_json={"version": "{version}"}), served.base_url, "1.3.0")
    assert not result.passed
    assert result.detail == "GET /health: version is '1.2.0', expected '1.3.0'"


def test_missing_json_field_is_a_mismatch(served: Served) -> None:
    result = run_http_check(http("/health", expect_json={"build": 7}), served.base_url, "1.2.0")
    assert not result.passed
    assert result.detail == "GET /health: build is None, expected 7"


def test_json_field_on_a_list_body_is_a_mismatch(served: Served) -> None:
    result = run_http_check(http("/list", expect_json={"id": 1}), served.base_url, "1.2.0")
    assert not result.passed
    assert "id is None, expected 1" in result.detail


def test_status_mismatch(served: Served) -> None:
    result = run_http_check(http("/fail", critical=False), served.base_url, "1.2.0")
    assert not result.passed
    assert result.critical is False
    assert result.detail == "GET /fail: HTTP 500, expected 200"
    assert result.metrics["status"] == 500


def test_expected_error_status_passes(served: Served) -> None:
    result = run_http_check(http("/fail", expect_status=500), served.base_url, "1.2.0")
    assert result.passed, result.detail


def test_unknown_path_is_a_status_mismatch(served: Served) -> None:
    result = run_http_check(http("/nowhere"), served.base_url, "1.2.0")
    assert not result.passed
    assert "HTTP 404, expected 200" in result.detail


@pytest.mark.parametrize(
    ("path", "shape", "problem"),
    [
        pytest.param("/health", JsonShape(type="list"), "expected a JSON list, got dict", id="object-where-list-expected"),
        pytest.param("/list", JsonShape(type="object"), "expected a JSON object, got list", id="list-where-object-expected"),
        pytest.param("/list", JsonShape(type="list", keys=["id", "name", "price"]), "item 0 lacks price", id="list-item-missing-key"),
        pytest.param("/health", JsonShape(type="object", keys=["uptime"]), "item 0 lacks uptime", id="object-missing-key"),
    ],
)
def test_shape_mismatch(served: Served, path: str, shape: JsonShape, problem: str) -> None:
    result = run_http_check(http(path, expect_shape=shape), served.base_url, "1.2.0")
    assert not result.passed
    assert result.detail == f"GET {path}: {problem}"


def test_shape_match(served: Served) -> None:
    result = run_http_check(http("/list", expect_shape=JsonShape(type="list", keys=["id", "name"])), served.base_url, "1.2.0")
    assert result.passed, result.detail


def test_body_that_is_not_json(served: Served) -> None:
    result = run_http_check(http("/text", expect_json={"status": "ok"}), served.base_url, "1.2.0")
    assert not result.passed
    assert result.detail == "GET /text: the body is not JSON"


def test_body_is_not_parsed_when_nothing_is_expected_of_it(served: Served) -> None:
    assert run_http_check(http("/text"), served.base_url, "1.2.0").passed


def test_post_sends_the_json_body(served: Served) -> None:
    check = http("/echo", method="POST", json_body={"name": "x"}, expect_status=201, expect_json={"name": "x"})
    result = run_http_check(check, served.base_url, "1.2.0")
    assert result.passed, result.detail


def test_connection_refused(closed_port_url: str) -> None:
    result = run_http_check(http("/health", timeout_seconds=2), closed_port_url, "1.2.0")
    assert not result.passed
    assert result.detail == "GET /health: no answer (ConnectError)"
    assert result.metrics == {}


def test_result_serialises_for_the_ledger(served: Served) -> None:
    result = run_http_check(http("/health"), served.base_url, "1.2.0")
    as_dict = result.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert CheckResult(**as_dict) == result


# --- run_http_check: plain-text bodies -------------------------------------------------------------------


def test_plain_text_version_passes_expect_text(served: Served) -> None:
    # /version answers "3.1.2\n" in text/plain: the body is compared stripped, {version} stands for the version.
    result = run_http_check(http("/version", expect_text="{version}"), served.base_url, "3.1.2")
    assert result.passed, result.detail
    assert result.detail.startswith("GET /version: HTTP 200 in ")


def test_plain_text_mismatch_says_what_was_expected_and_what_came(served: Served) -> None:
    result = run_http_check(http("/version", expect_text="{version}"), served.base_url, "3.1.3")
    assert not result.passed
    assert result.detail == "GET /version: expected the body '3.1.3', got '3.1.2'"
    assert result.metrics == {"status": 200}


def test_expect_text_is_the_whole_body_not_a_part(served: Served) -> None:
    assert not run_http_check(http("/text", expect_text="plain words"), served.base_url, "1.0.0").passed
    assert run_http_check(http("/text", expect_text="plain words, not JSON"), served.base_url, "1.0.0").passed


@pytest.mark.parametrize(
    ("regex", "version", "passed"),
    [
        (r"{version}", "3.1.2", True),
        (r"3\.\d+\.\d+", "0.0.0", True),
        (r"\d+\.\d+", "0.0.0", False),  # fullmatch: a match at the start is not enough
        (r"{version}", "3.1", False),
        (r"{version}", "3x1x2", False),
        (r"(?i)3\.1\.2", "0.0.0", True),
    ],
)
def test_expect_text_regex_matches_the_whole_stripped_body(served: Served, regex: str, version: str, passed: bool) -> None:
    result = run_http_check(http("/version", expect_text_regex=regex), served.base_url, version)
    assert result.passed is passed, result.detail


def test_version_in_a_regex_is_matched_literally(served: Served) -> None:
    # Unescaped, the dots of 3.1.2 would match any character and "3a1b2" would pass.
    result = run_http_check(http("/version", expect_text_regex="{version}"), served.base_url, "3a1b2")
    assert not result.passed
    result = run_http_check(http("/version", expect_text_regex="v?{version}"), served.base_url, "3.1.2")
    assert result.passed, result.detail


def test_regex_mismatch_shows_the_expanded_pattern(served: Served) -> None:
    result = run_http_check(http("/version", expect_text_regex=r"{version}\+\w+"), served.base_url, "3.1.2")
    assert result.detail == r"GET /version: expected the whole body to match `3\.1\.2\+\w+`, got '3.1.2'"


def test_a_long_body_is_cut_to_its_first_200_characters(served: Served) -> None:
    result = run_http_check(http("/long", expect_text="ok"), served.base_url, "1.0.0")
    expected_excerpt = repr("<html>" + "x" * 194)
    assert result.detail == f"GET /long: expected the body 'ok', got {expected_excerpt}… (1000 characters)"


def test_text_and_json_expectations_both_hold(served: Served) -> None:
    body = '{"status": "ok", "version": "1.2.0"}'
    check = http("/health", expect_text=body, expect_text_regex='.*"version": "{version}".*', expect_json={"status": "ok"})
    assert run_http_check(check, served.base_url, "1.2.0").passed
    assert not run_http_check(check, served.base_url, "1.3.0").passed


# --- requests sent as a connection: a bearer token, a login --------------------------------------------


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connections the checks are sent as, the way a deployment gives them: AIRFLOW_CONN_* (or a secrets backend)."""
    connections = {
        "APP_TOKEN": {"conn_type": "generic", "password": APP_TOKEN},
        "WRONG_TOKEN": {"conn_type": "generic", "password": "not-the-token"},
        "NO_PASSWORD": {"conn_type": "generic", "login": SMOKE_USER},
        "SMOKE_USER": {"conn_type": "generic", "login": SMOKE_USER, "password": SMOKE_PASSWORD},
    }
    for conn_id, fields in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps(fields))


BEARER = RequestAuth(conn_id="app_token", refused_without=[401, 403])
LOGIN = RequestAuth(conn_id="smoke_user", kind="json_login", refused_without=[401])


@pytest.mark.parametrize(
    ("path", "method", "auth", "open_doors", "evidence"),
    [
        ("/api/v1/health/detailed", "GET", BEARER, False, "without a token: HTTP 401 (refused)"),
        (
            "/api/v1/health/detailed",
            "GET",
            BEARER,
            True,
            "without a token: HTTP 200, expected a refusal (401, 403): it does not need the credentials of app_token",
        ),
        ("/api/auth/login", "POST", LOGIN, False, "with an empty password: HTTP 401 (refused)"),
        ("/api/auth/login", "POST", LOGIN, True, "with an empty password: HTTP 200, expected a refusal (401)"),
    ],
    ids=["token-needed", "open-without-a-token", "password-needed", "empty-password-let-in"],
)
def test_a_check_sent_with_a_secret_fails_when_the_request_without_it_is_not_refused(
    served: Served, secrets: None, path: str, method: str, auth: RequestAuth, open_doors: bool, evidence: str
) -> None:
    served.server.open_doors = open_doors
    result = run_http_check(http(path, method=method, auth=auth), served.base_url, "1.2.0")
    assert result.passed is not open_doors, result.detail
    assert evidence in result.detail
    assert APP_TOKEN not in result.detail and SMOKE_PASSWORD not in result.detail


def test_a_wrong_token_is_a_status_mismatch(served: Served, secrets: None) -> None:
    result = run_http_check(http("/api/v1/health/detailed", auth=RequestAuth(conn_id="wrong_token")), served.base_url, "1.2.0")
    assert not result.passed
    assert "HTTP 401, expected 200" in result.detail


def test_a_connection_without_a_password_is_a_failure_that_says_so(served: Served, secrets: None) -> None:
    result = run_http_check(http("/api/v1/health/detailed", auth=RequestAuth(conn_id="no_password")), served.base_url, "1.2.0")
    assert not result.passed
    assert "connection no_password has no password to send as the bearer secret" in result.detail


@pytest.mark.parametrize(("auth", "error_rate"), [(RequestAuth(conn_id="app_token"), 0.0), (None, 1.0)], ids=["with-token", "without"])
def test_latency_probe_sends_every_request_with_the_token(
    served: Served, secrets: None, auth: RequestAuth | None, error_rate: float
) -> None:
    result = run_latency_probe(latency("/api/v1/health/detailed", requests=20, concurrency=4, auth=auth), served.base_url)
    assert result.metrics["error_rate"] == error_rate, result.detail


def _shipped_item(system: str, text: str) -> Any:
    from airflow_rollout.checklists import load_checklist

    checklist = load_checklist(system)
    assert checklist is not None
    return next(e.item.check for e in checklist.entries() if e.item.text == text)


@pytest.mark.parametrize("open_doors", [False, True], ids=["token-needed", "open-endpoint"])
def test_ontos_token_based_auth_works_fails_on_an_endpoint_open_without_a_token(
    served: Served, monkeypatch: pytest.MonkeyPatch, open_doors: bool
) -> None:
    from types import SimpleNamespace

    from airflow_rollout.checklist_run import evaluate

    monkeypatch.setenv("AIRFLOW_CONN_ONTOS_APP_TOKEN", json.dumps({"conn_type": "generic", "password": APP_TOKEN}))
    served.server.open_doors = open_doors
    ctx = SimpleNamespace(version="1.2.0", app_base_url=lambda _app: served.base_url)
    evidence = evaluate(ctx, _shipped_item("ontos-ml-workbench", "Verify token-based auth works"))  # type: ignore[arg-type]
    assert evidence.passed is not open_doors, evidence.detail


@pytest.mark.parametrize("open_doors", [False, True], ids=["password-needed", "password-less-login-accepted"])
def test_routing_login_check_fails_when_a_login_without_the_password_succeeds(
    served: Served, monkeypatch: pytest.MonkeyPatch, open_doors: bool
) -> None:
    from airflow_rollout.config import load_profile

    smoke_user = {"conn_type": "generic", "login": SMOKE_USER, "password": SMOKE_PASSWORD}
    monkeypatch.setenv("AIRFLOW_CONN_ROUTING_SMOKE_USER", json.dumps(smoke_user))
    served.server.open_doors = open_doors
    login = next(c for c in load_profile("routing-ml-platform").checks if c.name == "login")
    assert isinstance(login, HttpCheck)
    result = run_http_check(login, served.base_url, "1.2.0")
    assert result.passed is not open_doors, result.detail


def test_json_login_cannot_go_in_a_list_body() -> None:
    with pytest.raises(ValueError, match="json_body cannot be a list"):
        http("/api/auth/login", method="POST", json_body=[1], auth=RequestAuth(conn_id="smoke_user", kind="json_login"))


# --- run_latency_probe ----------------------------------------------------------------------------------


def test_latency_probe_counts_every_fourth_request_as_an_error(served: Served) -> None:
    result = run_latency_probe(latency("/every-fourth", requests=200, concurrency=5), served.base_url)
    metrics = result.metrics
    assert served.server.every_fourth_count == 200  # exactly the requested number; no retries, none skipped
    assert metrics["requests"] == 200
    assert metrics["concurrency"] == 5
    assert metrics["errors"] == 50
    assert metrics["error_rate"] == 0.25
    assert 0 < metrics["p50_ms"] <= metrics["p95_ms"] <= metrics["p99_ms"]
    assert metrics["mean_ms"] > 0
    assert metrics["rps"] > 0
    # Error rate is for the decision to judge; with no latency limits set the probe itself passes.
    assert result.passed
    assert (result.kind, result.critical) == ("latency", False)
    assert "200 × GET /every-fourth at concurrency 5" in result.detail
    assert "error rate 25.0%" in result.detail


def test_latency_probe_fails_when_p95_exceeds_its_limit(served: Served) -> None:
    result = run_latency_probe(latency("/health", requests=20, concurrency=2, max_p95_ms=0.001), served.base_url)
    assert not result.passed
    assert f"p95 {result.metrics['p95_ms']} ms > 0.001 ms" in result.detail
    assert result.metrics["error_rate"] == 0.0


def test_latency_probe_reports_every_breach(served: Served) -> None:
    check = latency("/health", requests=10, concurrency=2, max_p95_ms=0.001, max_mean_ms=0.001, min_rps=1e9)
    detail = run_latency_probe(check, served.base_url).detail
    assert "p95 " in detail
    assert "mean " in detail
    assert "requests/s < 1000000000.0" in detail


def test_latency_probe_within_generous_limits_passes(served: Served) -> None:
    check = latency("/health", requests=20, concurrency=4, max_p95_ms=10_000, max_mean_ms=10_000, min_rps=0.1)
    result = run_latency_probe(check, served.base_url)
    assert result.passed, result.detail
    assert result.metrics["errors"] == 0


def test_latency_probe_against_nothing_is_all_errors(closed_port_url: str) -> None:
    result = run_latency_probe(latency("/health", requests=6, concurrency=3, timeout_seconds=2), closed_port_url)
    assert result.metrics["requests"] == 6
    assert result.metrics["error_rate"] == 1.0


# --- percentile -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        pytest.param([], 0.5, 0.0, id="empty"),
        pytest.param([7.0], 0.0, 7.0, id="one-value-p0"),
        pytest.param([7.0], 0.99, 7.0, id="one-value-p99"),
        pytest.param([1.0, 2.0], 0.5, 1.0, id="two-values-p50-is-the-lower"),
        pytest.param([1.0, 2.0], 0.51, 2.0, id="two-values-p51"),
        pytest.param([1.0, 2.0, 3.0, 4.0], 0.5, 2.0, id="four-values-p50"),
        pytest.param([float(v) for v in range(1, 11)], 0.0, 1.0, id="p0-is-the-minimum"),
        pytest.param([float(v) for v in range(1, 11)], 0.5, 5.0, id="ten-values-p50"),
        pytest.param([float(v) for v in range(1, 11)], 0.9, 9.0, id="ten-values-p90"),
        pytest.param([float(v) for v in range(1, 11)], 0.95, 10.0, id="ten-values-p95-rounds-up"),
        pytest.param([float(v) for v in range(1, 11)], 1.0, 10.0, id="p100-is-the-maximum"),
        pytest.param([float(v) for v in range(1, 21)], 0.95, 19.0, id="twenty-values-p95"),
        pytest.param([float(v) for v in range(1, 101)], 0.99, 99.0, id="hundred-values-p99"),
    ],
)
def test_percentile_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize("fraction", [0.5, 0.95, 0.99])
def test_percentile_matches_the_exact_definition(fraction: float) -> None:
    # Nearest rank is ceil(p * n) in exact arithmetic; float products like 0.95 * 60 must not round it up.
    for n in range(1, 1001):
        values = [float(v) for v in range(1, n + 1)]
        rank = max(1, math.ceil(Fraction(str(fraction)) * n))
        assert percentile(values, fraction) == float(rank), n


# --- request headers, accepted statuses, response headers, a burst ----------------------------------------


def test_an_unauthenticated_request_passes_when_refused_with_any_accepted_status(served: Served) -> None:
    result = run_http_check(http("/api/v1/health/detailed", expect_status=[401, 403]), served.base_url, SERVED_VERSION)
    assert result.passed, result.detail
    served.server.open_doors = True
    result = run_http_check(http("/api/v1/health/detailed", expect_status=[401, 403]), served.base_url, SERVED_VERSION)
    assert not result.passed
    assert result.detail == "GET /api/v1/health/detailed: HTTP 200, expected 401 or 403"


def test_request_headers_are_sent_and_response_headers_matched(served: Served) -> None:
    check = http(
        "/cors", headers={"Origin": PRODUCTION_ORIGIN}, expect_headers={"Access-Control-Allow-Origin": "https://routing\\.example\\.com"}
    )
    result = run_http_check(check, served.base_url, SERVED_VERSION)
    assert result.passed, result.detail
    assert result.detail.endswith("; Access-Control-Allow-Origin: 'https://routing.example.com'")


@pytest.mark.parametrize(
    ("origin", "open_doors", "problem"),
    [
        ("https://evil.example.net", False, "no Access-Control-Allow-Origin header"),
        ("https://evil.example.net", True, "Access-Control-Allow-Origin is '*', expected it to match `https://routing\\.example\\.com`"),
    ],
    ids=["foreign-origin-not-echoed", "wildcard"],
)
def test_a_response_header_missing_or_not_matching_fails(served: Served, origin: str, open_doors: bool, problem: str) -> None:
    served.server.open_doors = open_doors
    check = http("/cors", headers={"Origin": origin}, expect_headers={"Access-Control-Allow-Origin": "https://routing\\.example\\.com"})
    result = run_http_check(check, served.base_url, SERVED_VERSION)
    assert not result.passed
    assert result.detail == f"GET /cors: {problem}"


def test_a_header_pattern_that_does_not_compile_is_refused() -> None:
    with pytest.raises(ValueError, match="X-Frame-Options: `\\(` is not a valid Python regular expression"):
        http("/", expect_headers={"X-Frame-Options": "("})


def test_a_burst_passes_at_the_first_429(served: Served) -> None:
    result = run_burst(http("/limited"), served.base_url, 20)
    assert result.passed, result.detail
    assert re.fullmatch(rf"GET /limited: HTTP 429 at request {LIMIT + 1} of a burst \([0-9.]+ s\), Retry-After '60'", result.detail)
    assert result.metrics == {"requests": LIMIT + 1}


def test_a_burst_nobody_limits_fails(served: Served) -> None:
    served.server.open_doors = True
    result = run_burst(http("/limited"), served.base_url, 20)
    assert not result.passed
    assert result.detail == "GET /limited: 20 requests back to back, none refused with 429 (20 × 200)"


def test_a_foreign_origin_given_no_cors_header_passes_and_one_let_in_fails(served: Served) -> None:
    check = http("/cors", headers={"Origin": "https://cors-probe.invalid"}, absent_headers=["Access-Control-Allow-Origin"])
    result = run_http_check(check, served.base_url, SERVED_VERSION)
    assert result.passed, result.detail
    assert result.detail.endswith("; no Access-Control-Allow-Origin")
    served.server.open_doors = True
    result = run_http_check(check, served.base_url, SERVED_VERSION)
    assert not result.passed
    assert result.detail == "GET /cors: sent Access-Control-Allow-Origin: '*', expected no such header"
