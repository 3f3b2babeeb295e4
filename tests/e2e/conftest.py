"""The seed systems' public HTTPS hosts as their `tls` checklist items reach them: one local site (a certificate for
`localhost` from a CA made for the session, HSTS for a year, a Content-Security-Policy and the CDN's headers, plain HTTP
redirecting) behind every *_public connection."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from testenv import SESSION_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator

PUBLIC_CONNECTIONS = ("ROUTING_PUBLIC", "MLOPS_PUBLIC", "AI_ETL_PUBLIC", "ONTOS_PUBLIC")


@pytest.fixture(scope="session", autouse=True)
def public_hosts() -> Iterator[None]:
    from devtools.tls_site import CertificateAuthority, TlsSite

    directory = SESSION_DIR / "tls"
    authority = CertificateAuthority.create(directory)
    site = TlsSite(authority.issue(directory, ["localhost"], days=90), hsts="max-age=31536000; includeSubDomains")
    site.headers["Content-Security-Policy"] = "default-src 'self'"  # nginx's security headers (seed 003)
    # seed 002's public host is behind CloudFront, which adds these two to every answer (their form as CloudFront sends them)
    site.headers["Via"] = "1.1 2e4b5c1f0a3d9e7b6c8a0f1e2d3c4b5a.cloudfront.net (CloudFront)"
    site.headers["X-Amz-Cf-Id"] = "rEZ41zHijmTaPJrLdiavv7oU8giHtH8HQXvabc2QPAly_Btvu5C2Dw=="
    site.start()
    for conn_id in PUBLIC_CONNECTIONS:
        os.environ[f"AIRFLOW_CONN_{conn_id}"] = site.connection_json(authority.pem)
    yield
    site.stop()
