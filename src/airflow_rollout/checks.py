"""Checks run against a deployed version: HTTP health and smoke requests, and a latency probe.

Each returns a CheckResult the ledger stores as it is: whether it passed, how critical it is, the
numbers measured and a one-line reason an operator can act on.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from airflow_rollout.config import text_pattern

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_rollout.config import HttpCheck, JsonShape, LatencyCheck


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    critical: bool
    passed: bool
    detail: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shape_problem(payload: Any, shape: JsonShape) -> str | None:
    items: list[Any]
    if shape.type == "list":
        if not isinstance(payload, list):
            return f"expected a JSON list, got {type(payload).__name__}"
        items = payload
    else:
        if not isinstance(payload, dict):
            return f"expected a JSON object, got {type(payload).__name__}"
        items = [payload]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"item {index} is {type(item).__name__}, expected an object"
        missing = [key for key in shape.keys if key not in item]
        if missing:
            return f"item {index} lacks {', '.join(missing)}"
    return None


def _json_problem(check: HttpCheck, payload: Any, version: str) -> str | None:
    """What in the JSON answer is not as the check expects, or None."""
    fields = payload if isinstance(payload, dict) else {}
    for key, expected in check.expect_json.items():
        wanted = expected.replace("{version}", version) if isinstance(expected, str) else expected
        if fields.get(key) != wanted:
            return f"{key} is {fields.get(key)!r}, expected {wanted!r}"
    for key, floor in check.expect_at_least.items():
        actual = fields.get(key)
        if not isinstance(actual, int | float) or isinstance(actual, bool) or actual < floor:
            return f"{key} is {actual!r}, expected at least {floor:g}"
    if check.expect_shape:
        return _shape_problem(payload, check.expect_shape)
    return None


BODY_EXCERPT_CHARS = 200


def _excerpt(text: str) -> str:
    """The start of an answer, quoted so that whitespace and an empty body show."""
    if len(text) <= BODY_EXCERPT_CHARS:
        return repr(text)
    return f"{text[:BODY_EXCERPT_CHARS]!r}… ({len(text)} characters)"


def _text_problem(check: HttpCheck, body: str, version: str) -> str | None:
    """What in the body's text (stripped) is not as `expect_text` / `expect_text_regex` say, or None."""
    text = body.strip()
    if check.expect_text is not None:
        wanted = check.expect_text.replace("{version}", version)
        if text != wanted:
            return f"expected the body {wanted!r}, got {_excerpt(text)}"
    if check.expect_text_regex is not None:
        pattern = text_pattern(check.expect_text_regex, version)
        if not pattern.fullmatch(text):
            return f"expected the whole body to match `{pattern.pattern}`, got {_excerpt(text)}"
    return None


class MissingSecretError(ValueError):
    """The connection a check is sent as lacks the secret it needs: the check cannot prove anything."""


def request_as(check: HttpCheck | LatencyCheck, *, with_secret: bool) -> tuple[dict[str, str], Any]:
    """Headers and JSON body of the check's request, with its connection's secret or (to prove it is needed) without."""
    auth = check.auth
    if auth is None:
        return {}, check.json_body
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(auth.conn_id)
    if not conn.password:
        raise MissingSecretError(f"connection {auth.conn_id} has no password to send as the {auth.kind} secret")
    if auth.kind == "bearer":
        return ({"Authorization": f"Bearer {conn.password}"} if with_secret else {}), check.json_body
    if not conn.login:
        raise MissingSecretError(f"connection {auth.conn_id} has no login to send as the username")
    # Without the secret, the same login with an empty password: a server that lets it in authenticates nobody.
    body = dict(check.json_body or {}) | {"username": conn.login, "password": conn.password if with_secret else ""}
    return {}, body


def _reporter(check: HttpCheck) -> Callable[..., CheckResult]:
    def result(passed: bool, detail: str, **metrics: Any) -> CheckResult:
        return CheckResult(check.name, check.kind, check.critical, passed, detail, metrics)

    return result


def _prepare(check: HttpCheck) -> tuple[Callable[..., CheckResult], dict[str, str], Any] | CheckResult:
    """The check's result maker, and its request's headers and body with the connection's secret; or the failure saying
    that the secret is missing."""
    result = _reporter(check)
    try:
        headers, body = request_as(check, with_secret=True)
    except MissingSecretError as exc:
        return result(False, f"{check.method} {check.path}: {exc}")
    return result, headers, body


def run_http_check(check: HttpCheck, base_url: str, version: str) -> CheckResult:
    if isinstance(prepared := _prepare(check), CheckResult):
        return prepared
    result, headers, body = prepared
    began = time.perf_counter()
    try:
        response = httpx.request(
            check.method, base_url + check.path, json=body, headers=check.headers | headers, timeout=check.timeout_seconds
        )
    except httpx.HTTPError as exc:
        return result(False, f"{check.method} {check.path}: no answer ({type(exc).__name__})")
    elapsed_ms = (time.perf_counter() - began) * 1000
    accepted = check.accepted_statuses()
    if response.status_code not in accepted:
        return result(
            False,
            f"{check.method} {check.path}: HTTP {response.status_code}, expected {' or '.join(map(str, accepted))}",
            status=response.status_code,
            elapsed_ms=elapsed_ms,
        )
    problem = _header_problem(check, response) or _body_problem(check, response, version)
    refused = ""
    if problem is None and check.auth and check.auth.refused_without:
        problem, refused = _refused_without_secret(check, base_url)
    if problem:
        return result(False, f"{check.method} {check.path}: {problem}", status=response.status_code)
    shown = "".join(f"; {name}: {response.headers[name]!r}" for name in check.expect_headers)
    shown += "".join(f"; no {name}" for name in check.absent_headers)
    return result(
        True,
        f"{check.method} {check.path}: HTTP {response.status_code} in {elapsed_ms:.0f} ms{shown}{refused}",
        status=response.status_code,
        elapsed_ms=elapsed_ms,
    )


def _header_problem(check: HttpCheck, response: httpx.Response) -> str | None:
    """Which expected response header is missing or does not match its pattern, or which forbidden one came; or None."""
    if sent := [name for name in check.absent_headers if name in response.headers]:
        return f"sent {', '.join(f'{name}: {response.headers[name]!r}' for name in sent)}, expected no such header"
    return _patterns_problem(response, check.expect_headers)


def _body_problem(check: HttpCheck, response: httpx.Response, version: str) -> str | None:
    """What in the answer's body (its text, its JSON) is not as the check expects, or None."""
    if problem := _text_problem(check, response.text, version):
        return problem
    if check.expect_json or check.expect_shape or check.expect_at_least:
        try:
            payload = response.json()
        except ValueError:
            return "the body is not JSON"
        return _json_problem(check, payload, version)
    return None


def _refused_without_secret(check: HttpCheck, base_url: str) -> tuple[str | None, str]:
    """(problem, note): the same request without the secret must be refused, or the endpoint lets anyone in."""
    assert check.auth is not None  # noqa: S101 - called only for a check sent with credentials
    refused_with = check.auth.refused_without
    headers, body = request_as(check, with_secret=False)
    what = "without a token" if check.auth.kind == "bearer" else "with an empty password"
    try:
        status = httpx.request(
            check.method, base_url + check.path, json=body, headers=check.headers | headers, timeout=check.timeout_seconds
        ).status_code
    except httpx.HTTPError as exc:
        return f"{what}: no answer ({type(exc).__name__})", ""
    wanted = ", ".join(str(s) for s in refused_with)
    if status not in refused_with:
        return f"{what}: HTTP {status}, expected a refusal ({wanted}): it does not need the credentials of {check.auth.conn_id}", ""
    return None, f"; {what}: HTTP {status} (refused)"


TOO_MANY_REQUESTS = 429


def run_burst(check: HttpCheck, base_url: str, requests: int) -> CheckResult:
    """The request sent up to `requests` times back to back: passes at the first 429, proof that a rate limit stops a burst."""
    if isinstance(prepared := _prepare(check), CheckResult):
        return prepared
    result, headers, body = prepared
    statuses: dict[int, int] = {}
    began = time.perf_counter()
    with httpx.Client(headers=check.headers | headers, timeout=check.timeout_seconds) as client:
        for sent in range(1, requests + 1):
            try:
                response = client.request(check.method, base_url + check.path, json=body)
            except httpx.HTTPError as exc:
                return result(False, f"{check.method} {check.path}: request {sent} of the burst got no answer ({type(exc).__name__})")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == TOO_MANY_REQUESTS:
                seconds = time.perf_counter() - began
                retry = f", Retry-After {response.headers['retry-after']!r}" if "retry-after" in response.headers else ""
                return result(
                    True, f"{check.method} {check.path}: HTTP 429 at request {sent} of a burst ({seconds:.2f} s){retry}", requests=sent
                )
    seen = ", ".join(f"{count} × {status}" for status, count in sorted(statuses.items()))
    return result(
        False, f"{check.method} {check.path}: {requests} requests back to back, none refused with 429 ({seen})", requests=requests
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, the definition `ab` and most load tools report."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def run_latency_probe(check: LatencyCheck, base_url: str) -> CheckResult:
    """`check.requests` requests over `check.concurrency` connections; a non-2xx answer is an error."""
    try:
        headers, body = request_as(check, with_secret=True)
    except MissingSecretError as exc:
        return CheckResult(check.name, check.kind, check.critical, False, f"{check.method} {check.path}: {exc}", {})
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    remaining = iter(range(check.requests))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base_url, headers=headers, timeout=check.timeout_seconds) as client:
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                began = time.perf_counter()
                try:
                    ok = client.request(check.method, check.path, json=body).is_success
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors += not ok

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=check.concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(check.concurrency)]:
            future.result()
    wall = time.perf_counter() - began
    ordered = sorted(latencies)
    metrics = {
        "requests": len(ordered),
        "concurrency": check.concurrency,
        "errors": errors,
        "error_rate": errors / len(ordered) if ordered else 1.0,
        "p50_ms": round(percentile(ordered, 0.50), 2),
        "p95_ms": round(percentile(ordered, 0.95), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2),
        "mean_ms": round(statistics.fmean(ordered), 2) if ordered else 0.0,
        "rps": round(len(ordered) / wall, 1) if wall else 0.0,
    }
    breaches = []
    if check.max_p95_ms is not None and metrics["p95_ms"] > check.max_p95_ms:
        breaches.append(f"p95 {metrics['p95_ms']} ms > {check.max_p95_ms} ms")
    if check.max_mean_ms is not None and metrics["mean_ms"] > check.max_mean_ms:
        breaches.append(f"mean {metrics['mean_ms']} ms > {check.max_mean_ms} ms")
    if check.min_rps is not None and metrics["rps"] < check.min_rps:
        breaches.append(f"{metrics['rps']} requests/s < {check.min_rps}")
    if check.max_error_rate is not None and metrics["error_rate"] > check.max_error_rate:
        breaches.append(f"error rate {metrics['error_rate']:.2%} > {check.max_error_rate:.2%}")
    summary = (
        f"{metrics['requests']} × {check.method} {check.path} at concurrency {check.concurrency}: "
        f"p50 {metrics['p50_ms']} ms, p95 {metrics['p95_ms']} ms, p99 {metrics['p99_ms']} ms, "
        f"error rate {metrics['error_rate']:.1%}, {metrics['rps']} req/s"
    )
    detail = summary + ("; " + "; ".join(breaches) if breaches else "")
    # Error rate is judged by the decision against the rollback criteria, not here.
    return CheckResult(check.name, check.kind, check.critical, not breaches, detail, metrics)


DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "http": 80, "https": 443}


def connection_endpoint(conn: Any, default_port: int | None = None) -> tuple[str, int] | None:
    """Host and port an Airflow connection points at; a `kubernetes` one, its kube_config's API server."""
    from urllib.parse import urlsplit

    if conn.conn_type == "kubernetes":
        config = conn.extra_dejson.get("kube_config")
        config = json.loads(config) if isinstance(config, str) else config or {}
        clusters = config.get("clusters") or []
        if not clusters:
            return None
        server = urlsplit(clusters[0]["cluster"]["server"])
        return (server.hostname or "", server.port or DEFAULT_PORTS.get(server.scheme, 443))
    port = conn.port or default_port or DEFAULT_PORTS.get(conn.conn_type)
    return (conn.host, int(port)) if conn.host and port else None


def tcp_reachable(conn_id: str, default_port: int | None = None) -> CheckResult:
    """Whether the service behind the connection accepts a TCP connection (Redis, ClickHouse, an API server)."""
    import socket

    from airflow.sdk import BaseHook

    def result(passed: bool, detail: str, **metrics: Any) -> CheckResult:
        return CheckResult(conn_id, "connection", True, passed, detail, metrics)

    endpoint = connection_endpoint(BaseHook.get_connection(conn_id), default_port)
    if endpoint is None:
        return result(False, f"connection {conn_id} names no host and port to reach")
    began = time.perf_counter()
    try:
        with socket.create_connection(endpoint, timeout=5):
            pass
    except OSError as exc:
        return result(False, f"{conn_id}: {endpoint[0]}:{endpoint[1]} unreachable ({exc.strerror or type(exc).__name__})")
    millis = (time.perf_counter() - began) * 1000
    return result(True, f"{conn_id}: {endpoint[0]}:{endpoint[1]} answered in {millis:.0f} ms", connect_ms=round(millis, 1))


# what a page makes the browser load: scripts, style sheets, icons and preloaded files (fonts), images
_ASSET_LINK_RELS = frozenset({"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "modulepreload"})
SHOWN_ASSETS = 8  # the evidence names this many of the assets loaded
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)['"]?\s*\)""")


def _page_references(html: str) -> list[str]:
    """The asset URLs a page references, as written: script src, img src, link href of the asset kinds."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = {name: value or "" for name, value in attrs}
            if tag in {"script", "img"} and values.get("src"):
                found.append(values["src"])
            elif tag == "link" and values.get("href") and _ASSET_LINK_RELS & set(values.get("rel", "").lower().split()):
                found.append(values["href"])

    Collector().feed(html)
    return found


def _same_origin(page_url: str, references: list[str]) -> list[str]:
    """The references resolved against the page, those of the page's own origin only (a CDN or a font service is not
    this app's to serve), each once, in order; data: URLs carry their content and load nothing."""
    from urllib.parse import urldefrag, urljoin, urlsplit

    origin = urlsplit(page_url)[:2]
    resolved = [urldefrag(urljoin(page_url, ref)).url for ref in references if not ref.startswith("data:")]
    return list(dict.fromkeys(url for url in resolved if urlsplit(url)[:2] == origin))


def run_page_assets(check: HttpCheck, base_url: str, asset_headers: dict[str, str]) -> CheckResult:
    """The page's own assets load: each script, style sheet, icon and image it references (and each file a same-origin
    style sheet points at with url(), fonts among them) answers 200 with the expected headers. A page referencing no
    asset of its own fails: nothing was shown to load."""
    if isinstance(prepared := _prepare(check), CheckResult):
        return prepared
    result, headers, _ = prepared
    page_url = base_url + check.path
    with httpx.Client(headers=check.headers | headers, timeout=check.timeout_seconds) as client:
        try:
            page = client.get(page_url)
        except httpx.HTTPError as exc:
            return result(False, f"GET {check.path}: no answer ({type(exc).__name__})")
        assets = _same_origin(page_url, _page_references(page.text))
        if not assets:
            return result(False, f"GET {check.path}: HTTP {page.status_code}, the page references no asset of its own to load")
        problems: list[str] = []
        queue, loaded = list(assets), 0
        while queue:
            url = queue.pop(0)
            shown = url.removeprefix(base_url)
            try:
                answer = client.get(url)
            except httpx.HTTPError as exc:
                problems.append(f"{shown}: no answer ({type(exc).__name__})")
                continue
            if answer.status_code != 200:  # an asset that loads is served whole, not partly (206) or from a redirect
                problems.append(f"{shown}: HTTP {answer.status_code}")
                continue
            if problem := _patterns_problem(answer, asset_headers):
                problems.append(f"{shown}: {problem}")
                continue
            loaded += 1
            if "css" in answer.headers.get("content-type", ""):
                queue += [u for u in _same_origin(url, _CSS_URL.findall(answer.text)) if u not in assets]
                assets += [u for u in queue if u not in assets]
    wanted = "".join(f", {name} matching `{pattern}`" for name, pattern in asset_headers.items())
    if problems:
        failed = "; ".join(problems[:5])
        return result(False, f"GET {check.path}: {len(problems)} of {len(assets)} assets failed (expected 200{wanted}): {failed}")
    shown = ", ".join(url.removeprefix(base_url) for url in assets[:SHOWN_ASSETS]) + (", ..." if len(assets) > SHOWN_ASSETS else "")
    return result(True, f"GET {check.path}: its {loaded} assets answered 200{wanted} ({shown})", assets=loaded)


def _patterns_problem(response: httpx.Response, patterns: dict[str, str]) -> str | None:
    """Which response header is missing or does not match its pattern (re.fullmatch), or None."""
    for name, pattern in patterns.items():
        value = response.headers.get(name)
        if value is None:
            return f"no {name} header"
        if not re.fullmatch(pattern, value):
            return f"{name} is {value!r}, expected it to match `{pattern}`"
    return None
