"""Tests for cris_connect.certs: real files in tmp_path, real TLS handshakes."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from cris_connect.certs import (
    MAX_SERVER_DAYS,
    CertFiles,
    CertificateError,
    check_server_certificate,
    client_ssl_context,
    create_certificates,
    make_local_ca,
    make_server_certificate,
    server_ssl_context,
    trust_instructions,
)

T0 = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _make_pair(directory: Path, *, days: int, now: dt.datetime) -> CertFiles:
    ca = make_local_ca(directory, now=now)
    return make_server_certificate(directory, ca, days=days, now=now)


def _handshake(
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    *,
    connect_to: str,
    server_hostname: str,
) -> bytes:
    """Run one TLS connection through a real socket; return what the server sent."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(10)
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
            except OSError:
                pass  # the client refused us; the client side reports it

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            # "localhost" may resolve to ::1 first; create_connection falls back.
            with (
                socket.create_connection((connect_to, port), timeout=10) as raw,
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                return tls.recv(5)
        finally:
            thread.join(10)


def _strict(context: ssl.SSLContext) -> ssl.SSLContext:
    # Python 3.13 turns this on by default; the certificates must pass it.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


# --- files --------------------------------------------------------------------


@posix_only
def test_create_writes_four_files_with_private_key_modes(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    bundle = create_certificates(directory)

    assert bundle.directory == directory
    assert bundle.ca_reused is False
    assert _mode(directory) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "server-key.pem",
        "server.pem",
    ]
    assert _mode(bundle.ca.key_path) == 0o600
    assert _mode(bundle.server.key_path) == 0o600
    assert _mode(bundle.ca.cert_path) & 0o077 == 0o044  # public, not writable
    assert _mode(bundle.server.cert_path) & 0o077 == 0o044


def test_ca_certificate_is_a_constrained_local_ca(tmp_path: Path) -> None:
    ca = make_local_ca(tmp_path)
    cert = _cert(ca.cert_path)

    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == f"cris-connect local CA {socket.gethostname()}"[:64]
    assert cert.subject == cert.issuer
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    assert constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650


def test_server_certificate_names_usage_and_issuer(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    ca_cert = _cert(bundle.ca.cert_path)
    cert = _cert(bundle.server.cert_path)

    cert.verify_directly_issued_by(ca_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "::1",
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert (
        cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    )
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=398)  # the browsers' limit
    assert server_pem_holds_leaf_only(bundle.server.cert_path)


def server_pem_holds_leaf_only(path: Path) -> bool:
    return len(x509.load_pem_x509_certificates(path.read_bytes())) == 1


def test_ip_literals_given_as_hostnames_become_ip_entries(tmp_path: Path) -> None:
    create_certificates(tmp_path, hostnames=["PACS-01.example.org", "10.0.0.5"])
    status = check_server_certificate(
        tmp_path / "server.pem", tmp_path / "server-key.pem"
    )
    assert status.hostnames == ("pacs-01.example.org",)
    assert status.addresses == ("10.0.0.5", "127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"addresses": ["not-an-ip"]}, "is not an IP address"),
        ({"hostnames": ["bad name"]}, "is not a hostname"),
        ({"hostnames": [], "addresses": []}, "at least one"),
        ({"days": MAX_SERVER_DAYS + 1}, "between 1 and 397"),
        ({"now": dt.datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_arguments_raise_value_error_and_write_nothing(
    tmp_path: Path, kwargs: dict[str, object], fragment: str
) -> None:
    directory = tmp_path / "certs"
    with pytest.raises(ValueError, match=fragment):
        create_certificates(directory, **kwargs)  # type: ignore[arg-type]
    assert not directory.exists() or not any(directory.iterdir())


# --- overwrite and reuse --------------------------------------------------------


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    create_certificates(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    with pytest.raises(CertificateError) as caught:
        create_certificates(tmp_path)

    message = str(caught.value)
    assert str(tmp_path / "server.pem") in message
    assert "--force" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_make_functions_refuse_existing_files(tmp_path: Path) -> None:
    ca = make_local_ca(tmp_path)
    with pytest.raises(CertificateError, match="--force"):
        make_local_ca(tmp_path)
    make_server_certificate(tmp_path, ca)
    with pytest.raises(CertificateError, match="server"):
        make_server_certificate(tmp_path, ca)


@posix_only
def test_force_replaces_server_files_and_keeps_the_ca(tmp_path: Path) -> None:
    first = create_certificates(tmp_path)
    ca_before = (first.ca.cert_path.read_bytes(), first.ca.key_path.read_bytes())
    server_before = first.server.cert_path.read_bytes()

    second = create_certificates(tmp_path, force=True)

    assert second.ca_reused is True
    assert (
        second.ca.cert_path.read_bytes(),
        second.ca.key_path.read_bytes(),
    ) == ca_before
    assert second.server.cert_path.read_bytes() != server_before
    assert _mode(second.server.key_path) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    _cert(second.server.cert_path).verify_directly_issued_by(_cert(second.ca.cert_path))


def test_renewal_after_removing_server_files_reuses_ca(tmp_path: Path) -> None:
    first = create_certificates(tmp_path)
    ca_pem = first.ca.cert_path.read_bytes()
    first.server.cert_path.unlink()
    first.server.key_path.unlink()

    second = create_certificates(tmp_path)

    assert second.ca_reused is True
    assert second.ca.cert_path.read_bytes() == ca_pem


def test_expired_ca_is_refused_unless_forced(tmp_path: Path) -> None:
    make_local_ca(tmp_path, days=10, now=T0)
    old_ca = (tmp_path / "ca.pem").read_bytes()
    later = T0 + 20 * DAY

    with pytest.raises(CertificateError, match=r"has expired.*--force"):
        create_certificates(tmp_path, now=later)
    assert not (tmp_path / "server.pem").exists()

    bundle = create_certificates(tmp_path, now=later, force=True)
    assert bundle.ca_reused is False
    assert bundle.ca.cert_path.read_bytes() != old_ca


def test_half_a_ca_is_refused_unless_forced(tmp_path: Path) -> None:
    make_local_ca(tmp_path)
    (tmp_path / "ca-key.pem").unlink()

    with pytest.raises(CertificateError, match="ca-key.pem does not exist"):
        create_certificates(tmp_path)

    assert create_certificates(tmp_path, force=True).ca_reused is False


def test_server_certificate_does_not_outlive_its_ca(tmp_path: Path) -> None:
    ca = make_local_ca(tmp_path, days=30, now=T0)
    server = make_server_certificate(tmp_path, ca, now=T0)
    assert _cert(server.cert_path).not_valid_after_utc == T0 + 30 * DAY


def test_a_non_ca_certificate_cannot_sign(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path / "a")
    with pytest.raises(CertificateError, match="not a certificate authority"):
        make_server_certificate(tmp_path / "b", bundle.server)


# --- validity states ------------------------------------------------------------


@pytest.mark.parametrize(
    ("check_at", "state", "days_left"),
    [
        (T0 + 10 * DAY, "ok", 90),
        (T0 + 75 * DAY, "expiring", 25),
        (T0 + 100 * DAY, "expiring", 0),  # the last second is still valid
        (T0 + 101 * DAY, "expired", -1),
        (T0 - 2 * DAY, "not_yet_valid", 102),
    ],
)
def test_states(
    tmp_path: Path, check_at: dt.datetime, state: str, days_left: int
) -> None:
    server = _make_pair(tmp_path, days=100, now=T0)

    status = check_server_certificate(server.cert_path, server.key_path, now=check_at)

    assert status.state == state
    assert status.days_left == days_left
    assert status.not_after == T0 + 100 * DAY
    assert status.not_before == T0 - dt.timedelta(hours=1)  # allowance for clock skew
    assert status.hostnames == ("localhost",)
    assert status.addresses == ("127.0.0.1", "::1")
    assert str(server.cert_path) in status.describe()


def test_warn_days_sets_the_expiring_threshold(tmp_path: Path) -> None:
    server = _make_pair(tmp_path, days=100, now=T0)
    at = T0 + 50 * DAY
    assert (
        check_server_certificate(server.cert_path, server.key_path, now=at).state
        == "ok"
    )
    status = check_server_certificate(
        server.cert_path, server.key_path, now=at, warn_days=60
    )
    assert status.state == "expiring"
    assert "--force" in status.describe()


def test_fresh_certificate_is_ok_today(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    status = check_server_certificate(bundle.server.cert_path, bundle.server.key_path)
    assert status.state == "ok"
    assert status.days_left in (MAX_SERVER_DAYS - 1, MAX_SERVER_DAYS)


@pytest.fixture(scope="module")
def hundred_day_cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return _make_pair(tmp_path_factory.mktemp("hundred"), days=100, now=T0)


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(min_value=-10 * 86400, max_value=110 * 86400))
def test_state_agrees_with_validity_window(
    hundred_day_cert: CertFiles, offset: int
) -> None:
    at = T0 + dt.timedelta(seconds=offset)
    not_before, not_after = T0 - dt.timedelta(hours=1), T0 + 100 * DAY

    status = check_server_certificate(
        hundred_day_cert.cert_path, hundred_day_cert.key_path, now=at
    )

    if at < not_before:
        assert status.state == "not_yet_valid"
    elif at > not_after:
        assert status.state == "expired"
        assert status.days_left < 0
    elif not_after - at <= 30 * DAY:
        assert status.state == "expiring"
        assert 0 <= status.days_left <= 30
    else:
        assert status.state == "ok"
        assert status.days_left >= 30


# --- error messages -------------------------------------------------------------


SECRET = b"hunter2-do-not-print"


def _error(cert_path: Path, key_path: Path) -> str:
    with pytest.raises(CertificateError) as caught:
        check_server_certificate(cert_path, key_path)
    message = str(caught.value)
    assert SECRET.decode() not in message
    assert "PRIVATE KEY" not in message
    assert "\n" not in message  # one sentence
    assert "cris-connect cert --dir" in message
    return message


def test_error_missing_certificate(tmp_path: Path) -> None:
    message = _error(tmp_path / "server.pem", tmp_path / "server-key.pem")
    assert str(tmp_path / "server.pem") in message
    assert "does not exist" in message
    assert "--force" not in message  # nothing to replace yet


def test_error_missing_key(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    bundle.server.key_path.unlink()
    message = _error(bundle.server.cert_path, bundle.server.key_path)
    assert f"{bundle.server.key_path} does not exist" in message
    assert "--force" in message


def test_error_unreadable_certificate(tmp_path: Path) -> None:
    (tmp_path / "server.pem").mkdir()  # unreadable even for root
    message = _error(tmp_path / "server.pem", tmp_path / "server-key.pem")
    assert "cannot be read" in message


def test_error_garbage_certificate(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    bundle.server.cert_path.write_bytes(b"not a certificate " + SECRET)
    message = _error(bundle.server.cert_path, bundle.server.key_path)
    assert f"{bundle.server.cert_path} does not hold a PEM certificate" in message


def test_error_garbage_key(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    bundle.server.key_path.write_bytes(
        b"-----BEGIN PRIVATE KEY-----\n" + SECRET + b"\n-----END PRIVATE KEY-----\n"
    )
    message = _error(bundle.server.cert_path, bundle.server.key_path)
    assert f"{bundle.server.key_path} does not hold a PEM private key" in message


def test_error_password_protected_key(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    key = serialization.load_pem_private_key(
        bundle.server.key_path.read_bytes(), password=None
    )
    bundle.server.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(SECRET),
        )
    )
    message = _error(bundle.server.cert_path, bundle.server.key_path)
    assert "protected by a password" in message


def test_error_mismatched_key(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    # The CA key is a perfectly good key, just not this certificate's.
    message = _error(bundle.server.cert_path, bundle.ca.key_path)
    assert f"{bundle.ca.key_path} is not the private key of" in message
    assert str(bundle.server.cert_path) in message


def test_contexts_report_file_problems_as_certificate_errors(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    with pytest.raises(CertificateError, match="is not the private key"):
        server_ssl_context(bundle.server.cert_path, bundle.ca.key_path)
    with pytest.raises(CertificateError, match="does not exist"):
        client_ssl_context(tmp_path / "missing-ca.pem")


# --- TLS ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_handshake_with_the_local_ca(tmp_path: Path, host: str) -> None:
    bundle = create_certificates(tmp_path)
    server_ctx = server_ssl_context(bundle.server.cert_path, bundle.server.key_path)
    client_ctx = _strict(client_ssl_context(bundle.ca.cert_path))

    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_ctx.check_hostname and client_ctx.verify_mode == ssl.CERT_REQUIRED
    received = _handshake(server_ctx, client_ctx, connect_to=host, server_hostname=host)
    assert received == b"hello"


def test_tls_handshake_fails_with_another_ca(tmp_path: Path) -> None:
    ours = create_certificates(tmp_path / "ours")
    theirs = create_certificates(tmp_path / "theirs")
    server_ctx = server_ssl_context(ours.server.cert_path, ours.server.key_path)
    client_ctx = client_ssl_context(theirs.ca.cert_path)

    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(
            server_ctx, client_ctx, connect_to="localhost", server_hostname="localhost"
        )


def test_tls_handshake_fails_for_a_name_not_in_the_certificate(tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    server_ctx = server_ssl_context(bundle.server.cert_path, bundle.server.key_path)
    client_ctx = client_ssl_context(bundle.ca.cert_path)

    with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname"):
        _handshake(
            server_ctx,
            client_ctx,
            connect_to="127.0.0.1",
            server_hostname="pacs.example",
        )


def test_renewed_server_certificate_is_trusted_by_the_same_ca_file(
    tmp_path: Path,
) -> None:
    bundle = create_certificates(tmp_path)
    client_ctx = client_ssl_context(bundle.ca.cert_path)  # trusted once, before renewal
    create_certificates(tmp_path, force=True)
    server_ctx = server_ssl_context(bundle.server.cert_path, bundle.server.key_path)

    received = _handshake(
        server_ctx, client_ctx, connect_to="localhost", server_hostname="localhost"
    )
    assert received == b"hello"


# --- instructions ---------------------------------------------------------------


def test_trust_instructions_cover_each_platform(tmp_path: Path) -> None:
    ca_path = tmp_path / "ca.pem"
    text = trust_instructions(ca_path)

    assert str(ca_path.absolute()) in text
    for needle in (
        "Trusted Root Certification Authorities",
        "certutil -addstore -user Root",
        "Firefox",
        "Import",
        "/usr/local/share/ca-certificates",
        "update-ca-certificates",
        "https://localhost:9998",
    ):
        assert needle in text
