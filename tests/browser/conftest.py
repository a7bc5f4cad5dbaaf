"""Fixtures for the browser tests: a certificate the browser trusts, Chromium, a second origin."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.tests.support import logs  # noqa: F401 - the same captured-logs fixture as the core tests
from cris_connect import certs
from tests.browser.page import Page
from tests.support.chromium import CHROMIUM_EXECUTABLE, Chromium
from tests.support.requirements import require_executable


def spki_hash(cert_path: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> certs.CertBundle:
    """What `cris-connect cert` makes: a local CA and a localhost server certificate."""
    return certs.create_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def chromium(tls: certs.CertBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """Headless Chromium trusting exactly our server certificate (by its public key), nothing else.

    Overrides tests.support's fixture of the same name: the flag must be given at start-up.
    """
    require_executable(CHROMIUM_EXECUTABLE, "the headless browser", package="chromium")
    trust = f"--ignore-certificate-errors-spki-list={spki_hash(tls.server.cert_path)}"
    with Chromium(tmp_path_factory.mktemp("chromium"), window_size=(1400, 1000), extra_args=(trust,)) as browser:
        yield browser


@pytest.fixture
async def page(chromium: Chromium) -> AsyncIterator[Page]:
    tab = await Page.first_tab(chromium)
    try:
        yield tab
    finally:
        await tab.close()


class OtherOrigin:
    """A plain web site on another local port, serving whatever page the test sets."""

    def __init__(self) -> None:
        self.html = "<!doctype html><title>elsewhere</title>"
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = origin.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.origin = self.url.rstrip("/")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtherOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def other_origin() -> Iterator[OtherOrigin]:
    with OtherOrigin() as site:
        yield site
