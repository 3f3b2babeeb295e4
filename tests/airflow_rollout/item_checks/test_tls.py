"""`tls` items against a real local HTTPS server whose certificate a CA made in the test signed."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.tls import TlsItemCheck

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_rollout.evidence import Evidence

HOST = "localhost"
YEAR = 31536000


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    pem: Path

    def issue(self, directory: Path, names: list[str], days: int) -> tuple[Path, Path]:
        """A server certificate for `names`, valid `days` from now: (certificate, key) PEM files."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{names[0]}-{days}.crt", directory / f"{names[0]}-{days}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert_path, key_path


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("rollout test CA"))
        .issuer_name(_name("rollout test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Authority(key, certificate, pem)


def serve(handler: type[BaseHTTPRequestHandler], tls: tuple[Path, Path] | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def answering(hsts: str | None = None, redirect_to: str | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            self.send_response(301 if redirect_to else 200)
            if redirect_to:
                self.send_header("Location", redirect_to + self.path)
            if hsts:
                self.send_header("Strict-Transport-Security", hsts)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def site(authority: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Starts HTTPS (and plain HTTP) servers as a test asks, with the connection `public_site` pointing at the HTTPS one."""
    servers: list[ThreadingHTTPServer] = []

    def start(names: tuple[str, ...] = (HOST,), days: int = 90, hsts: str | None = None, redirect: bool = True) -> int | None:
        https = serve(answering(hsts=hsts), authority.issue(tmp_path, list(names), days))
        port = https.server_address[1]
        servers.append(https)
        extra = {"ca_file": str(authority.pem)}
        monkeypatch.setenv("AIRFLOW_CONN_PUBLIC_SITE", json.dumps({"conn_type": "http", "host": HOST, "port": port, "extra": extra}))
        plain = serve(answering(redirect_to=f"https://{HOST}:{port}" if redirect else None))
        servers.append(plain)
        return int(plain.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def tls(**fields: object) -> Evidence:
    return evaluate(SimpleNamespace(), TlsItemCheck.model_validate({"kind": "tls", "conn_id": "public_site", **fields}))  # type: ignore[arg-type]


def test_a_valid_certificate_with_hsts_and_a_redirect_passes(site) -> None:
    http_port = site(hsts=f"max-age={YEAR}; includeSubDomains")
    evidence = tls(min_days_left=30, hsts_min_max_age=YEAR, http_redirect_port=http_port)
    assert evidence.passed, evidence.detail
    assert f"certificate valid for {HOST}" in evidence.detail
    assert f"Strict-Transport-Security 'max-age={YEAR}; includeSubDomains'" in evidence.detail
    assert f"http://{HOST}:{http_port}/ redirects (301) to https://{HOST}:" in evidence.detail
    assert 88 < evidence.numbers["days_left"] <= 90


def test_a_certificate_for_another_name_fails(site) -> None:
    site(names=("other.example.com",))
    evidence = tls()
    assert not evidence.passed
    assert f"the certificate is not valid for {HOST}: Hostname mismatch" in evidence.detail


def test_a_certificate_of_an_unknown_ca_fails(site, monkeypatch: pytest.MonkeyPatch) -> None:
    site()
    conn = json.loads(os.environ["AIRFLOW_CONN_PUBLIC_SITE"])
    conn["extra"] = {}  # the system's trust store alone, which does not know the test's CA
    monkeypatch.setenv("AIRFLOW_CONN_PUBLIC_SITE", json.dumps(conn))
    evidence = tls()
    assert not evidence.passed
    assert "unable to get local issuer certificate" in evidence.detail


def test_a_certificate_expiring_soon_fails(site) -> None:
    site(days=10)
    evidence = tls(min_days_left=30)
    assert not evidence.passed
    assert "days left, fewer than 30" in evidence.detail


@pytest.mark.parametrize(("hsts", "shown"), [(None, "None"), ("max-age=300", "'max-age=300'")])
def test_no_or_a_short_hsts_header_fails(site, hsts: str | None, shown: str) -> None:
    site(hsts=hsts)
    evidence = tls(hsts_min_max_age=YEAR)
    assert not evidence.passed
    assert f"Strict-Transport-Security is {shown}, expected max-age >= {YEAR}" in evidence.detail


def test_plain_http_serving_the_page_instead_of_redirecting_fails(site) -> None:
    http_port = site(redirect=False)
    evidence = tls(http_redirect_port=http_port)
    assert not evidence.passed
    assert f"http://{HOST}:{http_port}/ answered HTTP 200 to nowhere, expected a redirect to https://{HOST}" in evidence.detail
