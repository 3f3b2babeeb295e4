"""`tls` items against a real local HTTPS server whose certificate a CA made in the test signed (devtools/tls_site.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.tls import TlsItemCheck
from devtools.tls_site import CertificateAuthority, TlsSite

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from airflow_rollout.evidence import Evidence

HOST = "localhost"
YEAR = 31536000


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def site(authority: CertificateAuthority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., TlsSite]]:
    """Starts a site as a test asks, the connection `public_site` naming it by its host name and trusting the test CA."""
    started: list[TlsSite] = []

    def start(names: tuple[str, ...] = (HOST,), days: int = 90, hsts: str | None = None, redirect: bool = True) -> TlsSite:
        served = TlsSite(authority.issue(tmp_path, list(names), days), hsts=hsts, redirect=redirect, host=HOST).start()
        started.append(served)
        monkeypatch.setenv("AIRFLOW_CONN_PUBLIC_SITE", served.connection_json(authority.pem))
        return served

    yield start
    for served in started:
        served.stop()


def tls(**fields: object) -> Evidence:
    return evaluate(SimpleNamespace(), TlsItemCheck.model_validate({"kind": "tls", "conn_id": "public_site", **fields}))  # type: ignore[arg-type]


def test_a_valid_certificate_with_hsts_and_a_redirect_passes(site: Callable[..., TlsSite]) -> None:
    served = site(hsts=f"max-age={YEAR}; includeSubDomains")
    evidence = tls(min_days_left=30, hsts_min_max_age=YEAR, http_redirect=True)
    assert evidence.passed, evidence.detail
    assert f"certificate valid for {HOST}" in evidence.detail
    assert f"Strict-Transport-Security 'max-age={YEAR}; includeSubDomains'" in evidence.detail
    assert f"http://{HOST}:{served.http_port}/ redirects (301) to https://{HOST}:{served.https_port}/" in evidence.detail
    assert 88 < evidence.numbers["days_left"] <= 90


def test_a_certificate_for_another_name_fails(site: Callable[..., TlsSite]) -> None:
    site(names=("other.example.com",))
    evidence = tls()
    assert not evidence.passed
    assert f"the certificate is not valid for {HOST}: Hostname mismatch" in evidence.detail


def test_a_certificate_of_an_unknown_ca_fails(site: Callable[..., TlsSite], monkeypatch: pytest.MonkeyPatch) -> None:
    served = site()
    # the system's trust store alone, which does not know the test's CA
    monkeypatch.setenv("AIRFLOW_CONN_PUBLIC_SITE", json.dumps({"conn_type": "http", "host": HOST, "port": served.https_port}))
    evidence = tls()
    assert not evidence.passed
    assert "unable to get local issuer certificate" in evidence.detail


def test_a_certificate_expiring_soon_fails(site: Callable[..., TlsSite]) -> None:
    site(days=10)
    evidence = tls(min_days_left=30)
    assert not evidence.passed
    assert "days left, fewer than 30" in evidence.detail


@pytest.mark.parametrize(("hsts", "shown"), [(None, "None"), ("max-age=300", "'max-age=300'")])
def test_no_or_a_short_hsts_header_fails(site: Callable[..., TlsSite], hsts: str | None, shown: str) -> None:
    site(hsts=hsts)
    evidence = tls(hsts_min_max_age=YEAR)
    assert not evidence.passed
    assert f"Strict-Transport-Security is {shown}, expected max-age >= {YEAR}" in evidence.detail


def test_plain_http_serving_the_page_instead_of_redirecting_fails(site: Callable[..., TlsSite]) -> None:
    served = site(redirect=False)
    evidence = tls(http_redirect=True)
    assert not evidence.passed
    assert f"http://{HOST}:{served.http_port}/ answered HTTP 200 to nowhere, expected a redirect to https://{HOST}" in evidence.detail


def test_expected_response_headers_are_read_from_the_https_answer(site: Callable[..., TlsSite]) -> None:
    served = site()
    served.headers["Content-Security-Policy"] = "default-src 'self'"
    evidence = tls(min_days_left=1, expect_headers={"Content-Security-Policy": ".+"})
    assert evidence.passed, evidence.detail
    assert "Content-Security-Policy \"default-src 'self'\"" in evidence.detail
    evidence = tls(min_days_left=1, expect_headers={"Content-Security-Policy": "default-src 'none'"})
    assert not evidence.passed
    assert "Content-Security-Policy is \"default-src 'self'\", expected it to match `default-src 'none'`" in evidence.detail


def test_an_invalid_header_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="Content-Security-Policy: `\\(` is not a valid Python regular expression"):
        TlsItemCheck.model_validate({"kind": "tls", "conn_id": "public_site", "expect_headers": {"Content-Security-Policy": "("}})


def shipped_security_headers() -> Evidence:
    from seed_platforms import context, shipped_checks

    check = shipped_checks("routing-ml-platform", "tls")["Security headers configured (CSP, HSTS, etc.)"]
    return evaluate(context("routing-ml-platform"), check)


@pytest.mark.parametrize(("hsts", "csp"), [(f"max-age={YEAR}", None), (None, "default-src 'self'"), ("max-age=0", "default-src 'self'")])
def test_seed_003s_security_headers_fail_without_csp_or_hsts(
    site: Callable[..., TlsSite], authority: CertificateAuthority, monkeypatch: pytest.MonkeyPatch, hsts: str | None, csp: str | None
) -> None:
    """The public host with both passes; without a Content-Security-Policy, without HSTS, or HSTS switched off, fails."""
    served = site(hsts=f"max-age={YEAR}")
    served.headers["Content-Security-Policy"] = "default-src 'self'"
    monkeypatch.setenv("AIRFLOW_CONN_ROUTING_PUBLIC", served.connection_json(authority.pem))
    assert shipped_security_headers().passed
    broken = site(hsts=hsts)
    broken.headers |= {"Content-Security-Policy": csp} if csp else {}
    monkeypatch.setenv("AIRFLOW_CONN_ROUTING_PUBLIC", broken.connection_json(authority.pem))
    evidence = shipped_security_headers()
    assert not evidence.passed
    assert ("Content-Security-Policy is None" if csp is None else "Strict-Transport-Security is") in evidence.detail


def shipped_cdn() -> Evidence:
    from seed_platforms import context, shipped_checks

    return evaluate(context("ai-etl-assistant"), shipped_checks("ai-etl-assistant", "tls")["Set up CloudFlare/CloudFront"])


# the two headers CloudFront adds to every answer it passes on, as it writes them
CLOUDFRONT = {
    "Via": "1.1 2e4b5c1f0a3d9e7b6c8a0f1e2d3c4b5a.cloudfront.net (CloudFront)",
    "X-Amz-Cf-Id": "rEZ41zHijmTaPJrLdiavv7oU8giHtH8HQXvabc2QPAly_Btvu5C2Dw==",
}


@pytest.mark.parametrize("missing", ["Via", "X-Amz-Cf-Id"])
def test_seed_002s_cdn_fails_on_an_answer_not_through_cloudfront(
    site: Callable[..., TlsSite], authority: CertificateAuthority, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    """The public host answering through CloudFront passes; an answer lacking either header CloudFront adds fails, and so
    does one that came through another proxy (a Via not naming CloudFront)."""
    served = site()
    served.headers |= CLOUDFRONT
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_PUBLIC", served.connection_json(authority.pem))
    evidence = shipped_cdn()
    assert evidence.passed, evidence.detail
    assert "cloudfront.net (CloudFront)" in evidence.detail
    direct = site()
    direct.headers |= {name: value for name, value in CLOUDFRONT.items() if name != missing}
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_PUBLIC", direct.connection_json(authority.pem))
    evidence = shipped_cdn()
    assert not evidence.passed
    assert f"{missing} is None" in evidence.detail
    other = site()
    other.headers |= {**CLOUDFRONT, "Via": "1.1 varnish (Varnish/7.5)"}
    monkeypatch.setenv("AIRFLOW_CONN_AI_ETL_PUBLIC", other.connection_json(authority.pem))
    assert "Via is '1.1 varnish (Varnish/7.5)'" in shipped_cdn().detail
