"""Certificates for the bridge's wss:// listener.

The browser connects to wss://localhost:9998/, so it must trust the bridge's
certificate. This module makes a small local certificate authority (CA) that a
site trusts once, and short-lived server certificates signed by it; renewing
the server certificate then needs no new trust step.

Files written by :func:`create_certificates` (the ``cris-connect cert`` command):

* ``ca.pem`` / ``ca-key.pem``: the local CA. Only ``ca.pem`` is given to browsers.
* ``server.pem`` / ``server-key.pem``: the bridge's certificate and key.
  ``server.pem`` holds the leaf certificate only: the CA is a trust anchor the
  browser already has, so sending it adds nothing. A site that brings its own
  certificate may put the leaf followed by intermediates in that file;
  :func:`server_ssl_context` sends the whole chain.

Keys are stored unencrypted because the bridge starts unattended; they are
protected by file mode 0600 in a 0700 directory instead. (On Windows the mode
bits are ignored and the user profile's access rules protect them.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_CERT_NAME",
    "CA_KEY_NAME",
    "SERVER_CERT_NAME",
    "SERVER_KEY_NAME",
    "CertBundle",
    "CertFiles",
    "CertificateError",
    "CertificateState",
    "CertificateStatus",
    "check_server_certificate",
    "client_ssl_context",
    "create_certificates",
    "make_local_ca",
    "make_server_certificate",
    "server_ssl_context",
    "trust_instructions",
]

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
SERVER_CERT_NAME = "server.pem"
SERVER_KEY_NAME = "server-key.pem"

# Browsers reject server certificates valid for more than 398 days.
MAX_SERVER_DAYS = 397
# Start validity slightly in the past so a clock a little behind still accepts it.
_BACKDATE = dt.timedelta(hours=1)
# X.509 upper bound for a common name.
_CN_MAX = 64

CertificateState = Literal["ok", "expiring", "expired", "not_yet_valid"]


class CertificateError(Exception):
    """A certificate or key file is missing, unreadable, malformed or mismatched.

    The message is one sentence naming the file and the fix, fit to show a user.
    It never contains key material or passwords.
    """


@attrs.frozen
class CertFiles:
    """A certificate file and the file holding its private key."""

    cert_path: Path
    key_path: Path


@attrs.frozen
class CertBundle:
    """What :func:`create_certificates` left in ``directory``."""

    directory: Path
    ca: CertFiles
    server: CertFiles
    ca_reused: bool  # False means the CA is new and browsers must trust it again.


@attrs.frozen
class CertificateStatus:
    """The result of :func:`check_server_certificate`."""

    cert_path: Path
    state: CertificateState
    not_before: dt.datetime
    not_after: dt.datetime
    days_left: int  # whole days until not_after; negative once expired
    hostnames: tuple[str, ...]  # DNS names in subjectAltName
    addresses: tuple[str, ...]  # IP addresses in subjectAltName

    def describe(self) -> str:
        """One sentence for logs and the ``cert`` command."""
        until = self.not_after.strftime("%Y-%m-%d %H:%M UTC")
        directory = self.cert_path.parent
        fix = f'run `cris-connect cert --dir "{directory}" --force` to renew it'
        if self.state == "ok":
            return (
                f"{self.cert_path} is valid until {until} ({self.days_left} days left)."
            )
        if self.state == "expiring":
            left = f"{self.days_left} days left"
            return f"{self.cert_path} expires on {until} ({left}); {fix}."
        if self.state == "expired":
            return f"{self.cert_path} expired on {until}; {fix}."
        since = self.not_before.strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"{self.cert_path} is not valid until {since}; "
            "check this computer's clock or " + fix + "."
        )


# --- making certificates -------------------------------------------------------


def make_local_ca(
    directory: Path,
    *,
    days: int = 3650,
    now: dt.datetime | None = None,
    force: bool = False,
) -> CertFiles:
    """Write a new local CA as ``ca.pem`` and ``ca-key.pem`` in ``directory``.

    ``now`` sets the start of validity (for tests and clock-skewed machines).
    Existing files are replaced only with ``force``.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    start = _utc(now)
    key = ec.generate_private_key(ec.SECP256R1())
    cn = f"cris-connect local CA {socket.gethostname()}"[:_CN_MAX]
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cris-connect"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + dt.timedelta(days=days))
        # pathlen 0: the CA may sign server certificates but no further CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        # Self-signed certs may omit it, but strict verifiers (Python 3.13) like it.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return _save(CertFiles(directory / CA_CERT_NAME, directory / CA_KEY_NAME), cert, key, force=force)


def make_server_certificate(
    directory: Path,
    ca: CertFiles,
    *,
    hostnames: Iterable[str] = ("localhost",),
    addresses: Iterable[str] = ("127.0.0.1", "::1"),
    days: int = MAX_SERVER_DAYS,
    now: dt.datetime | None = None,
    force: bool = False,
) -> CertFiles:
    """Write ``server.pem`` and ``server-key.pem`` signed by ``ca`` in ``directory``.

    IP literals given in ``hostnames`` are moved to the IP entries, because
    browsers match IP addresses only against IP entries. Validity is capped at
    397 days and at the CA's own end. Existing files are replaced only with
    ``force``. Raises ValueError for bad arguments, CertificateError for a bad CA.
    """
    _check_server_days(days)
    dns_names, ips = _split_names(hostnames, addresses)
    start = _utc(now)
    ca_cert, ca_key = _load_ca(ca, start)
    key = ec.generate_private_key(ec.SECP256R1())
    cn = (dns_names[0] if dns_names else str(ips[0]))[:_CN_MAX]
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_ski.value
        )
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    not_after = min(start + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    san += [x509.IPAddress(ip) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # digitalSignature is the usage ECDHE-ECDSA handshakes need.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        # Browsers ignore the common name; they match only subjectAltName.
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(aki, critical=False)
        .sign(ca_key, _signing_hash(ca_key))
    )
    return _save(CertFiles(directory / SERVER_CERT_NAME, directory / SERVER_KEY_NAME), cert, key, force=force)


def create_certificates(
    directory: Path,
    hostnames: Iterable[str] = ("localhost",),
    addresses: Iterable[str] = ("127.0.0.1", "::1"),
    *,
    force: bool = False,
    days: int = MAX_SERVER_DAYS,
    now: dt.datetime | None = None,
) -> CertBundle:
    """Make everything the bridge needs in ``directory`` (``cris-connect cert``).

    An existing, usable CA (``ca.pem`` + ``ca-key.pem``) is kept so that a new
    server certificate needs no new trust step. Existing server files are
    replaced only with ``force``; an unusable CA is replaced only with ``force``.
    Nothing is written when a refusal is raised.
    """
    # Argument errors must come before any file is touched.
    _check_server_days(days)
    dns_names, ips = _split_names(hostnames, addresses)
    start = _utc(now)
    ca = CertFiles(directory / CA_CERT_NAME, directory / CA_KEY_NAME)
    server = CertFiles(directory / SERVER_CERT_NAME, directory / SERVER_KEY_NAME)
    if not force:
        _refuse_existing(server.cert_path, server.key_path)

    reuse = False
    if ca.cert_path.exists() or ca.key_path.exists():
        try:
            _load_ca(ca, start)
            reuse = True
        except CertificateError:
            if not force:
                raise

    _ensure_directory(directory)
    if not reuse:
        make_local_ca(directory, now=start, force=True)
    make_server_certificate(
        directory,
        ca,
        hostnames=dns_names,
        addresses=[str(ip) for ip in ips],
        days=days,
        now=start,
        force=force,
    )
    return CertBundle(directory=directory, ca=ca, server=server, ca_reused=reuse)


# --- checking and using certificates ------------------------------------------


def check_server_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    now: dt.datetime | None = None,
    warn_days: int = 30,
) -> CertificateStatus:
    """Load a certificate and its key, check they belong together, report validity.

    Raises CertificateError when a file is missing, unreadable, not PEM, or the
    key does not match. Dates are reported, not raised: see ``state``.
    """
    cert, _ = _load_pair(cert_path, key_path, what="server")
    at = _utc(now)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    state: CertificateState
    if at < not_before:
        state = "not_yet_valid"
    elif at > not_after:
        state = "expired"
    elif not_after - at <= dt.timedelta(days=warn_days):
        state = "expiring"
    else:
        state = "ok"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hostnames = tuple(san.get_values_for_type(x509.DNSName))
        addresses = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        hostnames, addresses = (), ()
    return CertificateStatus(
        cert_path=cert_path,
        state=state,
        not_before=not_before,
        not_after=not_after,
        days_left=(not_after - at) // dt.timedelta(days=1),
        hostnames=hostnames,
        addresses=addresses,
    )


def server_ssl_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting ``cert_path`` (leaf plus any chain).

    Files are checked first so problems surface as CertificateError. Dates are
    not checked here; use :func:`check_server_certificate` to warn about them.
    """
    _load_pair(cert_path, key_path, what="server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(
            f"TLS could not use {cert_path} with {key_path} ({type(exc).__name__}); "
            f"{_remake_hint(cert_path, key_path)}."
        ) from None
    return context


def client_ssl_context(ca_path: Path) -> ssl.SSLContext:
    """A TLS 1.2+ client context that trusts only ``ca_path`` and checks hostnames."""
    _load_certificates(ca_path, what="CA")  # clear errors before OpenSSL's terse ones
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def trust_instructions(ca_path: Path) -> str:
    """Plain-text steps for making browsers trust the CA in ``ca_path``."""
    ca = Path(ca_path).absolute()
    return f"""\
To let the browser connect to the bridge, trust this certificate authority once
on each radiologist's computer:

    {ca}

Chrome and Edge on Windows (they use the Windows certificate store):
  - Run:  certutil -addstore -user Root "{ca}"
  - Or open certmgr.msc, right-click "Trusted Root Certification Authorities"
    > All Tasks > Import, and choose the file (select "All files" to see .pem).

Firefox:
  - Settings > Privacy & Security > Certificates > View Certificates >
    Authorities > Import, choose the file and tick "Trust this CA to identify
    websites".
  - For many computers, use the enterprise policy "Certificates" > "Install"
    (policies.json or Group Policy), or on Windows set
    security.enterprise_roots.enabled to true to use the Windows store.

Debian / Ubuntu:
  - sudo cp "{ca}" /usr/local/share/ca-certificates/cris-connect-ca.crt
  - sudo update-ca-certificates
  - Chrome and Firefox on Linux may keep their own store; import the file in
    their certificate settings as well if they still refuse the connection.

Without installing the CA: open https://localhost:9998 in the browser once and
accept the warning (the page itself may then show an error; that is fine). This
lasts only for that browser profile and may need repeating, so trusting the CA
is the lasting fix. Renewing the server certificate keeps the same CA.
"""


# --- helpers -------------------------------------------------------------------

_ISSUER_KEY_TYPES = (
    ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        now = dt.datetime.now(dt.UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware (for example datetime.now(UTC))")
    # Certificates store whole seconds; dropping the rest keeps days exact.
    return now.astimezone(dt.UTC).replace(microsecond=0)


def _check_server_days(days: int) -> None:
    if not 1 <= days <= MAX_SERVER_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_SERVER_DAYS}, not {days}")


def _split_names(
    hostnames: Iterable[str], addresses: Iterable[str]
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    # A lone string would otherwise be split into one-letter names.
    if isinstance(hostnames, str):
        hostnames = (hostnames,)
    if isinstance(addresses, str):
        addresses = (addresses,)
    dns_names: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name in hostnames:
        try:
            ips.append(ipaddress.ip_address(name))
        except ValueError:
            name = name.strip().lower()
            if not name or not name.isascii() or any(c.isspace() for c in name):
                raise ValueError(
                    f"{name!r} is not a hostname; use ASCII names such as localhost"
                ) from None
            dns_names.append(name)
    for address in addresses:
        try:
            ips.append(ipaddress.ip_address(address))
        except ValueError:
            raise ValueError(f"{address!r} is not an IP address") from None
    if not dns_names and not ips:
        raise ValueError("a server certificate needs at least one hostname or address")
    # Keep order, drop duplicates: the first name becomes the common name.
    return list(dict.fromkeys(dns_names)), list(dict.fromkeys(ips))


def _signing_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # Ed25519/Ed448 hash internally and must be given no hash.
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def _ensure_directory(directory: Path) -> None:
    # 0700: the directory holds private keys. An existing directory is left as is.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _refuse_existing(*paths: Path) -> None:
    for path in paths:
        if path.exists() or path.is_symlink():
            raise CertificateError(
                f'{path} already exists; run `cris-connect cert --dir "{path.parent}" '
                "--force` to replace it."
            )


def _save(files: CertFiles, cert: x509.Certificate, key: PrivateKeyTypes, *, force: bool) -> CertFiles:
    """Refuse to overwrite (unless `force`), then write the certificate and its key."""
    if not force:
        _refuse_existing(files.key_path, files.cert_path)
    _write_pair(files, cert, key, force=force)
    return files


def _write_pair(
    files: CertFiles,
    cert: x509.Certificate,
    key: PrivateKeyTypes,
    *,
    force: bool,
) -> None:
    _ensure_directory(files.cert_path.parent)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first: a certificate without its key is useless, the reverse is harmless.
    _write_file(files.key_path, key_pem, mode=0o600, replace=force)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _write_file(files.cert_path, cert_pem, mode=0o644, replace=force)


def _write_file(path: Path, data: bytes, *, mode: int, replace: bool) -> None:
    """Create ``path`` with ``mode`` from the first byte: never a moment world-readable.

    Without ``replace`` an existing file is an error (O_EXCL, no race). With it
    the data goes to a new temporary file that then atomically takes the name.
    """
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0)
    target = (
        path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp") if replace else path
    )
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise CertificateError(
            f'{path} already exists; run `cris-connect cert --dir "{path.parent}" '
            "--force` to replace it."
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if replace:
            os.replace(target, path)
    except BaseException:
        if replace:
            target.unlink(missing_ok=True)
        raise


def _read(path: Path, what: str, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(
            f"The {what} file {path} does not exist; {hint}."
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CertificateError(
            f"The {what} file {path} cannot be read ({reason}); "
            f"check its permissions or {hint}."
        ) from None


def _load_certificates(path: Path, *, what: str) -> list[x509.Certificate]:
    hint = _remake_hint(path, None)
    data = _read(path, f"{what} certificate", hint)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise CertificateError(
            f"The {what} certificate file {path} does not hold a PEM certificate; "
            f"{hint}."
        )
    return certs


def _load_private_key(path: Path, cert_path: Path, *, what: str) -> PrivateKeyTypes:
    hint = _remake_hint(cert_path, path)
    data = _read(path, f"{what} key", hint)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        # cryptography raises TypeError when a password would be needed.
        raise CertificateError(
            f"The {what} key file {path} is protected by a password, which the bridge "
            f"cannot enter at start-up; {hint}."
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # The library's message is not shown: it could echo parts of the file.
        raise CertificateError(
            f"The {what} key file {path} does not hold a PEM private key; {hint}."
        ) from None


def _load_pair(
    cert_path: Path, key_path: Path, *, what: str
) -> tuple[x509.Certificate, PrivateKeyTypes]:
    cert = _load_certificates(cert_path, what=what)[0]
    key = _load_private_key(key_path, cert_path, what=what)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(
        der, spki
    ):
        raise CertificateError(
            f"The key file {key_path} is not the private key of {cert_path}; "
            f"{_remake_hint(cert_path, key_path)}."
        )
    return cert, key


def _load_ca(
    ca: CertFiles, start: dt.datetime
) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    """Load a CA and check it can still sign server certificates."""
    cert, key = _load_pair(ca.cert_path, ca.key_path, what="CA")
    hint = _remake_ca_hint(ca.cert_path.parent)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertificateError(
            f"{ca.cert_path} is not a certificate authority; {hint}."
        )
    if not isinstance(key, _ISSUER_KEY_TYPES):
        raise CertificateError(
            f"{ca.key_path} holds a kind of key that cannot sign certificates; {hint}."
        )
    # An hour's margin so the new server certificate is not born already dead.
    if cert.not_valid_after_utc <= start + _BACKDATE:
        raise CertificateError(f"The local CA {ca.cert_path} has expired; {hint}.")
    return cert, key


def _remake_hint(cert_path: Path, key_path: Path | None) -> str:
    directory = cert_path.parent
    exists = cert_path.exists() or (key_path is not None and key_path.exists())
    force = " --force" if exists else ""
    verb = "replace it" if exists else "make one"
    return f'run `cris-connect cert --dir "{directory}"{force}` to {verb}'


def _remake_ca_hint(directory: Path) -> str:
    return (
        f'run `cris-connect cert --dir "{directory}" --force` to make a new CA '
        "(browsers must then trust the new ca.pem)"
    )
