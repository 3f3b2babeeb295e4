"""`tls`: the certificate a host serves is valid for it (chain and name, as a browser checks) and lasts long enough;
optionally its HTTPS answer carries HSTS and other headers (a Content-Security-Policy) and its plain-HTTP port redirects
to HTTPS.

The host and port come from an Airflow connection (an `http` connection naming the public host, port 443 by default):
the name the certificate must be valid for is the connection's host. Its extra `http_port` (80 by default) is where plain
HTTP answers; a private CA is trusted through its extra `ca_file` (a PEM bundle path); without it the system's trust
store decides, as for any client.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from airflow_rollout.config import ConnId, HeaderPatterns, StrictModel, UrlPath

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_rollout.context import SystemContext
    from airflow_rollout.evidence import Evidence

REDIRECTS = frozenset({301, 302, 307, 308})
MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class TlsItemCheck(StrictModel):
    """The connection's host serves a certificate valid for its name, with at least `min_days_left` days to go."""

    kind: Literal["tls"]
    conn_id: ConnId = Field(description="its host is the name the certificate must be valid for; its port the HTTPS port (443)")
    min_days_left: Annotated[int, Field(ge=0)] = 30
    hsts_min_max_age: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="GET `path` over HTTPS must send Strict-Transport-Security with at least this max-age (seconds)"
    )
    expect_headers: HeaderPatterns = Field(
        default_factory=dict, description="GET `path` over HTTPS must send each header, its whole value matching this regular expression"
    )
    http_redirect: bool = Field(
        default=False, description="plain HTTP (the connection's extra http_port, 80) must answer `path` with a redirect to https://<host>"
    )
    path: UrlPath = "/"
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10


def _endpoint(conn_id: str) -> tuple[str, int, int, ssl.SSLContext]:
    """Host, HTTPS port, plain-HTTP port and the TLS context trusting what the connection says to trust."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.host:
        raise ValueError(f"connection {conn_id} names no host")
    extra = conn.extra_dejson
    ca_file: Any = extra.get("ca_file")
    return conn.host, int(conn.port or 443), int(extra.get("http_port", 80)), ssl.create_default_context(cafile=ca_file)


def _header_problems(check: TlsItemCheck, headers: Mapping[str, str], found: list[str], numbers: dict[str, Any]) -> list[str]:
    """What the HTTPS answer's headers lack (each expected header, HSTS's max-age); what they hold goes to `found`."""
    problems = []
    for name, pattern in check.expect_headers.items():
        value = headers.get(name)
        if value is None or not re.fullmatch(pattern, value):
            problems.append(f"{name} is {value!r}, expected it to match `{pattern}`")
        else:
            found.append(f"{name} {value!r}")
    if check.hsts_min_max_age is not None:
        header = headers.get("strict-transport-security")
        max_age = int(match[1]) if header and (match := MAX_AGE.search(header)) else None
        numbers["hsts_max_age"] = max_age
        if max_age is None or max_age < check.hsts_min_max_age:
            problems.append(f"Strict-Transport-Security is {header!r}, expected max-age >= {check.hsts_min_max_age}")
        else:
            found.append(f"Strict-Transport-Security {header!r}")
    return problems


def run(_ctx: SystemContext, check: TlsItemCheck) -> Evidence:
    import httpx

    from airflow_rollout.evidence import Evidence

    host, port, http_port, context = _endpoint(check.conn_id)
    where = f"{host}:{port}"
    try:
        with (
            socket.create_connection((host, port), timeout=check.timeout_seconds) as sock,
            context.wrap_socket(sock, server_hostname=host) as tls,
        ):
            certificate, protocol = tls.getpeercert(), tls.version()
    except ssl.SSLCertVerificationError as exc:
        return Evidence(False, f"{where}: the certificate is not valid for {host}: {exc.verify_message}")
    except (OSError, ssl.SSLError) as exc:
        return Evidence(False, f"{where}: no TLS handshake ({type(exc).__name__}: {exc})")
    assert certificate is not None  # noqa: S101 - a verified handshake always has the peer's certificate
    days_left = (ssl.cert_time_to_seconds(str(certificate["notAfter"])) - time.time()) / 86400
    numbers: dict[str, Any] = {"days_left": round(days_left, 1), "protocol": protocol}
    found = [f"certificate valid for {host} ({protocol}), expires {certificate['notAfter']}: {days_left:.0f} days left"]
    problems = [f"{days_left:.0f} days left, fewer than {check.min_days_left}"] if days_left < check.min_days_left else []
    base = f"https://{host}:{port}"
    try:
        if check.hsts_min_max_age is not None or check.expect_headers:
            answer = httpx.get(base + check.path, verify=context, timeout=check.timeout_seconds)
            problems += _header_problems(check, answer.headers, found, numbers)
        if check.http_redirect:
            plain = f"http://{host}:{http_port}{check.path}"
            response = httpx.get(plain, timeout=check.timeout_seconds)
            location = response.headers.get("location", "")
            numbers["http_status"] = response.status_code
            if response.status_code not in REDIRECTS or not location.startswith(f"https://{host}"):
                problems.append(
                    f"{plain} answered HTTP {response.status_code} to {location or 'nowhere'}, expected a redirect to https://{host}"
                )
            else:
                found.append(f"{plain} redirects ({response.status_code}) to {location}")
    except httpx.HTTPError as exc:
        problems.append(f"no answer over HTTP(S) ({type(exc).__name__}: {exc})")
    if problems:
        return Evidence(False, f"{where}: {'; '.join(problems)}", numbers)
    return Evidence(True, f"{where}: {'; '.join(found)}", numbers)
