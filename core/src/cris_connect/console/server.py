"""The console's own HTTP(S) port: the page, its live status, the send panel and `/metrics`.

Started by the bridge when `[console] enabled = true`, on `console.port` (default 9997), with the
same certificate as the WebSocket. It answers only requests addressed to this machine by name
(`Host: localhost:PORT` or `127.0.0.1:PORT`), so a web page on another site that rebinds its DNS
name to 127.0.0.1 gets nothing. The send panel, which makes CRIS act, also needs the console's own
`Origin` and the token that is in the page (new at every start): another site's page can neither
read that token nor forge the origin. The page live-updates by long polling `/api/status?after=N`,
which answers as soon as something changes (or every 20 s).
"""

from __future__ import annotations

import hmac
import importlib.resources
import json
import logging
import secrets
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc

from cris_connect import certs, codec
from cris_connect.config import ConsoleConfig
from cris_connect.connection import STREAM_ERRORS
from cris_connect.console import http, metrics, status
from cris_connect.console.http import BadRequest, Request, Response
from cris_connect.masking import describe
from cris_connect.messages import Clear, Display
from cris_connect.server import open_listener, peer_name

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge

log = logging.getLogger("cris_connect.console")

#: How long `/api/status?after=N` waits for a change before answering anyway.
LONG_POLL = 20.0
TOKEN_HEADER = "X-Console-Token"  # noqa: S105 - a header name, not a secret
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_STATIC = {
    "/console.css": ("console.css", "text/css; charset=utf-8"),
    "/console.js": ("console.js", "text/javascript; charset=utf-8"),
}


def _static(name: str) -> bytes:
    return importlib.resources.files(__package__).joinpath("static", name).read_bytes()


def _json(status_code: int, value: Any) -> Response:
    return Response(status_code, json.dumps(value).encode(), "application/json")


class Console:
    """The console of one bridge. `run` serves until `stop`."""

    def __init__(self, bridge: Bridge, config: ConsoleConfig, ssl_context: ssl.SSLContext | None) -> None:
        self.bridge = bridge
        self.config = config
        self.ssl_context = ssl_context
        #: Proves a send-panel request came from the page this console served.
        self.token = secrets.token_urlsafe(32)
        self.port: int | None = None
        self.certificate: dict[str, Any] | None = None
        self._scope = anyio.CancelScope()
        if config.metrics:
            metrics.check_available()

    @property
    def scheme(self) -> str:
        return "http" if self.ssl_context is None else "https"

    @property
    def _names(self) -> tuple[str, ...]:
        host = self.config.host
        return _LOOPBACK_NAMES if host in ("127.0.0.1", "localhost", "::1") else (*_LOOPBACK_NAMES, host)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the console is not listening yet")
        host = self.config.host
        shown = "localhost" if host in ("127.0.0.1", "localhost", "::1") else host
        return f"{self.scheme}://{shown}:{self.port}/"

    @property
    def origins(self) -> frozenset[str]:
        """The origins a browser gives pages of this console (what may open the CRIS WebSocket)."""
        return frozenset(f"{self.scheme}://{name}:{self.port}" for name in self._names)

    @property
    def _hosts(self) -> frozenset[str]:
        return frozenset(f"{name}:{self.port}" for name in self._names)

    # Serving

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await self.listen()  # before any task group: its StartupError stays unwrapped
        server = self.bridge.config.server
        if server.cert is not None and server.key is not None and self.ssl_context is not None:
            state = certs.check_server_certificate(server.cert, server.key)
            self.certificate = {"path": str(state.cert_path), "state": state.state,
                                "not_after": state.not_after.isoformat(), "days_left": state.days_left}
        with self._scope:
            async with listener, anyio.create_task_group() as requests:
                log.info("console on %s (simulator %s, send panel %s, metrics %s)", self.url,
                         *("on" if flag else "off" for flag in
                           (self.config.simulator, self.config.send_panel, self.config.metrics)))
                task_status.started()
                await listener.serve(self._handle, task_group=requests)

    def stop(self) -> None:
        """Stop accepting and drop requests in flight (long polls); safe to call twice."""
        self._scope.cancel()

    async def listen(self) -> anyio.abc.Listener[Any]:
        listener, self.port = await open_listener(
            self.config.host, self.config.port, self.ssl_context,
            handshake_timeout=self.bridge.config.server.handshake_timeout,
            port_key="console.port", hint="another program, or the bridge itself?",
        )
        return listener

    async def _handle(self, stream: anyio.abc.AnyByteStream) -> None:
        byte_stream = cast(anyio.abc.ByteStream, stream)
        peer, _ = peer_name(stream)
        try:
            try:
                request = await http.read_request(byte_stream, self.bridge.config.server.handshake_timeout)
            except BadRequest as exc:
                response = http.text(exc.status, str(exc))
            except TimeoutError:
                return
            else:
                response = await self._answer(request, peer)
            await byte_stream.send(response.encode(self._headers()))
        except STREAM_ERRORS:
            pass  # the browser went away (a long poll abandoned by a closed tab)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.aclose_forcefully(stream)

    def _headers(self) -> Mapping[str, str]:
        """On every answer: no caching, no framing (clickjacking), nothing loaded from elsewhere."""
        connect = ["'self'"]
        if self.config.simulator:
            server = self.bridge.config.server
            connect += [f"{server.scheme}://{name}:{self.bridge.port}" for name in ("localhost", "127.0.0.1")]
        return {
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Content-Security-Policy": (
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                f"connect-src {' '.join(connect)}; frame-ancestors 'none'; base-uri 'none'; "
                "form-action 'none'"
            ),
        }

    # Routes

    async def _answer(self, request: Request, peer: str) -> Response:
        if request.headers.get("host") not in self._hosts:
            log.warning("console: refused a request from %s for Host %r; it answers to %s only",
                        peer, request.headers.get("host"), ", ".join(sorted(self._hosts)))
            return http.text(421, "This console answers only to localhost and 127.0.0.1.")
        try:
            if request.path == "/api/send":
                if request.method != "POST":
                    return Response(405, b"POST only\n", headers={"Allow": "POST"})
                return await self._send(request, peer)
            if request.method != "GET":
                return Response(405, b"GET only\n", headers={"Allow": "GET"})
            return await self._get(request)
        except Exception:
            log.exception("console: internal error answering %s %s", request.method, request.path)
            return http.text(500, "Internal error; see the bridge's log.")

    async def _get(self, request: Request) -> Response:
        path = request.path
        if path == "/":
            page = _static("index.html").decode()
            token = self.token if self.config.send_panel else ""
            return Response(200, page.replace("{{token}}", token).encode(), "text/html; charset=utf-8")
        if path in _STATIC:
            name, content_type = _STATIC[path]
            return Response(200, _static(name), content_type)
        if path == "/api/status":
            try:
                after = int(request.query.get("after", "-1"))
            except ValueError:
                return http.text(400, "after: expected the seq of the last status seen")
            if after >= self.bridge.activity.seq:
                await self.bridge.activity.wait_changed(after, LONG_POLL)
            return _json(200, status.snapshot(self.bridge, self))
        if path == "/healthz":
            return _json(200, self.bridge.health())
        if path == "/metrics" and self.config.metrics:
            body, content_type = metrics.render(self.bridge)
            return Response(200, body, content_type)
        return http.text(404, "Not found.")

    async def _send(self, request: Request, peer: str) -> Response:
        from cris_connect.bridge import NoSession

        if not self.config.send_panel:
            return http.text(404, "The send panel is off; set console.send_panel = true.")
        origin = request.headers.get("origin")
        if origin not in self.origins:
            log.warning("console: refused a send from %s: origin %s is not the console's own", peer, origin)
            return http.text(403, "Only the console's own page may send to CRIS.")
        offered = request.headers.get(TOKEN_HEADER.lower(), "")
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            log.warning("console: refused a send from %s: missing or stale %s (reload the page)",
                        peer, TOKEN_HEADER)
            return http.text(403, "The page is out of date (the bridge restarted); reload it.")
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return http.text(415, "Send a JSON message (Content-Type: application/json).")
        try:
            message = codec.decode_for_cris(request.body)
        except codec.DecodeError as exc:
            return _json(400, {"error": str(exc)})
        if not isinstance(message, (Display, Clear)):
            return _json(400, {"error": f"the send panel sends DISPLAY and CLEAR, not {message.command}"})
        try:
            reached = await self.bridge.send(message)
        except codec.InvalidMessage as exc:
            return _json(400, {"error": str(exc)})
        except NoSession as exc:
            return _json(409, {"error": str(exc)})
        log.info("console: %s sent to %d session(s) from the send panel", describe(message), reached)
        return _json(200, {"reached": reached, "sent": describe(message)})


__all__ = ["Console"]
