"""The listening socket and the opening handshake: who may connect, and how.

`Server.serve` accepts TCP (and TLS) connections; each one's first request is either a plain HTTP
GET (answered from `pages`) or a WebSocket handshake, which is checked - origin, session limit - and
then handed to the bridge as a `Connection`. Listener and connections live in separate task groups
so shutdown can stop accepting first and then drain the sessions.
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, cast

import anyio
import anyio.abc
from anyio.streams.tls import TLSListener
from websockets.http11 import Request
from websockets.server import ServerProtocol

from cris_connect import pages
from cris_connect.config import ServerConfig
from cris_connect.connection import STREAM_ERRORS, Connection
from cris_connect.masking import loggable

log = logging.getLogger("cris_connect.server")

#: Runs a session: the connection, its opening request, the peer's `host:port`, and whether the
#: transport is secure (TLS, or loopback where nothing crosses a network).
SessionHandler = Callable[[Connection, Request, str, bool], Awaitable[None]]


class StartupError(RuntimeError):
    """The bridge cannot start listening; the text says what to change."""


class _QuietTLSListener(TLSListener):
    @staticmethod
    async def handle_handshake_error(exc: BaseException, stream: anyio.abc.AnyByteStream) -> None:
        # One line, not a traceback: a browser refusing our certificate, or a ws:// client on
        # a wss:// port, is an everyday event on a ward.
        await anyio.aclose_forcefully(stream)
        if not isinstance(exc, Exception):
            raise exc
        log.warning(
            "TLS handshake failed (%s); a client using ws:// instead of wss://, or a browser that "
            "does not trust the certificate (open https://localhost:PORT once, or trust the CA)",
            exc.__class__.__name__ if not str(exc) else str(exc).splitlines()[0],
        )


async def open_listener(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    handshake_timeout: float,
    port_key: str,
    hint: str,
) -> tuple[anyio.abc.Listener[Any], int]:
    """A TCP (and TLS) listener and the port it got, or a `StartupError` naming the config key."""
    try:
        tcp = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is already in use ({hint}); stop it, or choose another "
                f"port with {'--port or ' if port_key == 'server.port' else ''}{port_key}"
            ) from None
        if exc.errno == errno.EACCES:
            raise StartupError(
                f"not allowed to listen on port {port}; use a port above 1024 ({port_key})"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port} ({port_key}): {exc.strerror or exc}") from None
    except anyio.BrokenResourceError as exc:
        raise StartupError(f"cannot listen on {host}:{port} ({port_key}): {exc}") from None
    bound = tcp.extra(anyio.abc.SocketAttribute.local_port)
    if ssl_context is None:
        return tcp, bound
    tls = _QuietTLSListener(tcp, ssl_context, standard_compatible=False, handshake_timeout=handshake_timeout)
    return tls, bound


def peer_name(stream: anyio.abc.AnyByteStream) -> tuple[str, bool]:
    """`host:port` of the client, and whether it is on loopback."""
    try:
        address = stream.extra(anyio.abc.SocketAttribute.remote_address)
    except anyio.TypedAttributeLookupError:
        return "unknown", False
    if isinstance(address, tuple):
        host = str(address[0])
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        return f"{host}:{address[1]}", loopback
    return str(address), False


SECRET_HEADER = "X-CRIS-Connect-Secret"  # noqa: S105 - a header name, not a secret


def refuse_secret(origin: str | None, offered: str | None, config: ServerConfig) -> str | None:
    """Why a non-browser client's shared secret is refused, or None (compared in constant time)."""
    if config.shared_secret is None or origin is not None:
        return None
    if offered is None:
        return f"no {SECRET_HEADER} header, and server.shared_secret is set"
    if not hmac.compare_digest(offered.encode(), config.shared_secret.encode()):
        return f"wrong {SECRET_HEADER}"
    return None


def refuse_origin(origin: str | None, loopback: bool, config: ServerConfig,
                  extra_origins: Collection[str] = ()) -> str | None:
    """Why this handshake's Origin is refused, or None to accept it.

    Any web page the radiologist visits can open `new WebSocket("ws://localhost:9998")`; the
    browser then sends that page's origin, which is how we tell CRIS Reporting from the rest.
    `extra_origins` are allowed at run time (the console's simulator page, when it is on).
    """
    if origin is None:
        if not config.allow_no_origin:
            return "no Origin header and server.allow_no_origin is false"
        if not loopback:
            return "no Origin header from a remote client; only loopback clients may omit it"
        return None
    if "*" in config.allowed_origins or origin in config.allowed_origins or origin in extra_origins:
        return None
    return (
        f"origin {origin} is not allowed; add it to server.allowed_origins "
        f"(allowed: {', '.join(config.allowed_origins) or 'none'})"
    )


class Server:
    """Listens on `config.host:config.port` and turns each handshake into a session."""

    def __init__(
        self,
        config: ServerConfig,
        handler: SessionHandler,
        *,
        ssl_context: ssl.SSLContext | None,
        health: Callable[[], Mapping[str, Any]],
        session_count: Callable[[], int],
        version: str,
    ) -> None:
        self.config = config
        self.handler = handler
        self.ssl_context = ssl_context
        self.health = health
        self.session_count = session_count
        self.version = version
        self.port: int | None = None
        #: Origins allowed besides `config.allowed_origins`, added at run time (the console).
        self.extra_origins: frozenset[str] = frozenset()
        self._accepting = anyio.CancelScope()
        self._pending = 0  # connections still sending their opening request
        self._overloaded = False

    async def serve(
        self,
        listener: anyio.abc.Listener[Any],
        connections: anyio.abc.TaskGroup,
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        """Accept until `stop_accepting`; connections run in `connections`, not here."""
        with self._accepting:
            async with listener:
                task_status.started()
                await listener.serve(self._handle, task_group=connections)

    def stop_accepting(self) -> None:
        self._accepting.cancel()

    async def listen(self) -> anyio.abc.Listener[Any]:
        """Open the listening socket, or raise `StartupError` saying what to change."""
        listener, self.port = await open_listener(
            self.config.host, self.config.port, self.ssl_context,
            handshake_timeout=self.config.handshake_timeout,
            port_key="server.port", hint="another cris-connect or CRIS Connect program?",
        )
        return listener

    async def _handle(self, stream: anyio.abc.AnyByteStream) -> None:
        peer, loopback = peer_name(stream)
        config = self.config
        if self._pending >= config.max_pending_handshakes:
            # Connections that never finish their request would otherwise hold descriptors until
            # the process runs out; the handshake timeout alone bounds each, not how many.
            if not self._overloaded:
                log.warning("refusing connections: %d have not finished their opening request "
                            "(server.max_pending_handshakes)", self._pending)
                self._overloaded = True
            await anyio.aclose_forcefully(stream)
            return
        self._overloaded = False
        protocol = ServerProtocol(max_size=config.max_message_size, logger=_websockets_log)
        connection = Connection(
            cast(anyio.abc.ByteStream, stream),  # TCP or TLS: both are byte streams
            protocol,
            close_timeout=config.close_timeout,
            send_timeout=config.send_timeout,
        )
        try:
            self._pending += 1
            try:
                request = await connection.recv_request(config.handshake_timeout)
            finally:
                self._pending -= 1
            if request is None:
                self._log_bad_request(peer, protocol)
                return
            if request.headers.get("Upgrade", "").lower() != "websocket":
                await connection.send_response(
                    pages.answer(request.path, version=self.version, health=self.health())
                )
                return
            origin = request.headers.get("Origin")
            reason = refuse_origin(origin, loopback, config, self.extra_origins) or refuse_secret(
                origin, request.headers.get(SECRET_HEADER), config
            )
            if reason is not None:
                log.warning("refused a connection from %s: %s", peer, reason)
                await connection.send_response(protocol.reject(403, f"Forbidden: {reason}.\n"))
                return
            if self.session_count() >= config.max_sessions:
                log.warning(
                    "refused a connection from %s: %d sessions already (server.max_sessions)",
                    peer, config.max_sessions,
                )
                await connection.send_response(protocol.reject(503, "Too many CRIS sessions.\n"))
                return
            response = protocol.accept(request)
            await connection.send_response(response)
            if response.status_code != 101:
                log.warning(
                    "refused a handshake from %s: %s", peer, protocol.handshake_exc or response.reason_phrase
                )
                return
            await self.handler(connection, request, peer, self.ssl_context is not None or loopback)
        except STREAM_ERRORS:
            pass  # the peer went away during the handshake
        except Exception:
            # Never let one connection's bug take the server down: log it, close with 1011.
            log.exception("internal error on the connection from %s; closing it (1011)", peer)
            with anyio.CancelScope(shield=True):
                await connection.fail(1011, "internal error")
        finally:
            with anyio.CancelScope(shield=True):
                await connection.close_stream()

    @staticmethod
    def _log_bad_request(peer: str, protocol: ServerProtocol) -> None:
        exc = protocol.handshake_exc
        if exc is None:
            log.info("connection from %s closed before a complete request (or timed out)", peer)
        else:
            cause = exc.__cause__ or exc
            # The cause may quote what the client sent: shown escaped and cut short.
            log.warning("refused a connection from %s: not a valid HTTP request (%s)", peer,
                        loggable(str(cause)))


# websockets logs every handshake at INFO; our own lines say the same with more context.
_websockets_log = logging.getLogger("cris_connect.websockets")
_websockets_log.setLevel(logging.WARNING)
