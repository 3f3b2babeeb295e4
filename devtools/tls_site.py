"""A public HTTPS site for the tests and the e2e releases' `tls` items: a CA made on the spot, a certificate it signs for
the site's names, an HTTPS server answering with a Strict-Transport-Security header, and a plain-HTTP server that
redirects to it, as a production host behind nginx or an ingress does.

    authority = CertificateAuthority.create(directory)
    site = TlsSite(authority.issue(directory, ["localhost"], days=90), hsts="max-age=31536000")
    site.start()  # site.https_port, site.http_port; site.connection_json("localhost"); site.stop()
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

if TYPE_CHECKING:
    from pathlib import Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    pem: Path  # the CA certificate, what a client is told to trust (a connection's extra `ca_file`)

    @classmethod
    def create(cls, directory: Path) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name("airflow-rollout test CA"))
            .issuer_name(_name("airflow-rollout test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        pem = directory / "ca.pem"
        pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(key, certificate, pem)

    def issue(self, directory: Path, names: list[str], days: int) -> tuple[Path, Path]:
        """A server certificate for `names`, valid `days` from now: its (certificate, key) PEM files."""
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
        cert_path, key_path = directory / f"{names[0]}-{days}d.crt", directory / f"{names[0]}-{days}d.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert_path, key_path


def _handler(hsts: str | None, redirect_to: str | None, headers: dict[str, str] | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def do_GET(self) -> None:
            self.send_response(301 if redirect_to else 200)
            if redirect_to:
                self.send_header("Location", redirect_to + self.path)
            if hsts:
                self.send_header("Strict-Transport-Security", hsts)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


class TlsSite:
    """HTTPS with the given certificate (and HSTS header), plus plain HTTP that redirects there (or, `redirect=False`, serves)."""

    def __init__(self, certificate: tuple[Path, Path], hsts: str | None = None, redirect: bool = True, host: str = "localhost") -> None:
        self.certificate, self.hsts, self.redirect, self.host = certificate, hsts, redirect, host
        self.headers: dict[str, str] = {}  # more headers its HTTPS answers send (a Content-Security-Policy), set before start
        self.servers: list[ThreadingHTTPServer] = []

    def _serve(self, handler: type[BaseHTTPRequestHandler], tls: bool) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.certificate)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return int(server.server_address[1])

    def start(self) -> TlsSite:
        self.https_port = self._serve(_handler(self.hsts, None, self.headers), tls=True)
        redirect_to = f"https://{self.host}:{self.https_port}" if self.redirect else None
        self.http_port = self._serve(_handler(None, redirect_to), tls=False)
        return self

    def connection_json(self, ca_file: Path) -> str:
        """An Airflow `http` connection naming the site by its host name and plain-HTTP port, trusting the test CA."""
        extra = {"ca_file": str(ca_file), "http_port": self.http_port}
        return json.dumps({"conn_type": "http", "host": self.host, "port": self.https_port, "extra": extra})

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
