"""The server side of `wss://`: the certificate and key named in `[server]`, checked at start-up."""

from __future__ import annotations

import logging
import ssl

from cris_connect import certs
from cris_connect.config import ServerConfig
from cris_connect.server import StartupError

log = logging.getLogger("cris_connect.tls")


def server_context(config: ServerConfig) -> ssl.SSLContext:
    """An SSL context for the listener, or a `StartupError` that says which file to fix.

    An expired certificate is refused (browsers would refuse it anyway, with a less helpful
    message); one that expires within 30 days is logged as a warning at every start.
    """
    if config.cert is None or config.key is None:
        raise StartupError("server.cert and server.key are needed for wss://; run `cris-connect cert`")
    try:
        status = certs.check_server_certificate(config.cert, config.key)
        if status.state in ("expired", "not_yet_valid"):
            raise StartupError(status.describe())
        if status.state == "expiring":
            log.warning("%s", status.describe())
        return certs.server_ssl_context(config.cert, config.key)
    except certs.CertificateError as exc:
        raise StartupError(str(exc)) from None
