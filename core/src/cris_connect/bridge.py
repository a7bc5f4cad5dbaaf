"""The bridge: sessions and their context, plugins and their mailboxes, sending to CRIS.

    async with Bridge(config, plugins=[my_adapter]) as bridge:
        await bridge.send(Display(accession=["RX123"]))

runs under asyncio or trio. Shutdown (leaving the block, or `aclose()`) stops accepting, closes
every session with 1001, lets each plugin finish what is queued by `plugins.drain_timeout`, calls
`bridge_stopping`, and is safe to call twice.
"""

from __future__ import annotations

import itertools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from websockets.frames import Opcode
from websockets.http11 import Request

from cris_connect import codec
from cris_connect import config as config_module
from cris_connect import plugins as plugin_loading
from cris_connect.__about__ import __version__
from cris_connect.config import Config
from cris_connect.connection import Connection, ConnectionClosed
from cris_connect.console.activity import Activity
from cris_connect.dispatch import Delivery, PluginRunner
from cris_connect.masking import loggable
from cris_connect.messages import (
    Commit,
    Event,
    LoggedIn,
    LoggedOut,
    Login,
    PacsCommand,
    ReadOnly,
    Release,
    UnknownCommand,
)
from cris_connect.server import Server
from cris_connect.session import RateLimit, Session
from cris_connect.studies import StudyDirectory

if TYPE_CHECKING:
    from cris_connect.console.server import Console

log = logging.getLogger("cris_connect.bridge")

HOOKS = {
    Event: "on_event",
    ReadOnly: "on_readonly",
    Commit: "on_commit",
    Release: "on_release",
    LoggedIn: "on_login",
    LoggedOut: "on_logout",
    UnknownCommand: "on_unknown_command",
}


def close_reason(connection: Connection) -> str:
    """How a session ended, for logs and `session_closed`: who closed it, and why."""
    protocol = connection.protocol
    client_closed_first = protocol.close_rcvd_then_sent is not False  # None: only one side closed
    if protocol.close_rcvd is not None and client_closed_first:
        return f"close code {protocol.close_rcvd.code}"
    if protocol.close_sent is not None:
        sent = protocol.close_sent
        return f"closed by the bridge ({sent.code}{' ' + sent.reason if sent.reason else ''})"
    return "connection lost"


class NoSession(RuntimeError):
    """A command for CRIS when no CRIS Reporting session is connected (or the one named is gone)."""


class Bridge:
    """The PACS side of CRIS Connect. Use as `async with Bridge(config) as bridge:`."""

    def __init__(self, config: Config | None = None, *, plugins: Sequence[object] = ()) -> None:
        self.config = config if config is not None else Config()
        self._extra_plugins = plugins
        self.manager = plugin_loading.make_plugin_manager()
        self.runners: dict[str, PluginRunner] = {}
        self._sessions: dict[int, Session] = {}
        self._session_ids = itertools.count(1)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._connections: anyio.abc.TaskGroup | None = None
        self._background: set[anyio.CancelScope] = set()
        self._served = anyio.Event()
        self._server: Server | None = None
        self._closing = False
        self._closed = anyio.Event()
        self.started_at: float | None = None
        #: The last commands both ways and counters, for the console and /metrics.
        self.activity = Activity()
        self.console: Console | None = None
        #: accession -> studies, published by archive adapters for viewer adapters.
        self.studies = StudyDirectory(
            on_publish=lambda lookup: self._deliver(
                ("on_studies_found",), {"lookup": lookup}, f"studies for an accession ({lookup.status})"
            )
        )

    # Public API

    @property
    def sessions(self) -> tuple[Session, ...]:
        """The connected CRIS Reporting sessions, oldest first."""
        return tuple(self._sessions.values())

    @property
    def stopping(self) -> bool:
        """True once shutdown has begun: background work should wind down, not start anew."""
        return self._closing

    @property
    def port(self) -> int:
        """The port actually listened on (useful with `port = 0`)."""
        if self._server is None or self._server.port is None:
            raise RuntimeError("the bridge is not listening yet")
        return self._server.port

    @property
    def url(self) -> str:
        """Where CRIS Reporting connects: `wss://localhost:9998/`."""
        host = self.config.server.host
        host = "localhost" if host in ("127.0.0.1", "localhost") else host
        return f"{self.config.server.scheme}://{host}:{self.port}/"

    async def send(self, message: PacsCommand, to: Session | None = None) -> int:
        """Send a command to every CRIS session (the reference behaviour), or to one.

        Returns how many sessions it reached. Raises `InvalidMessage` for a message CRIS could
        not act on and `NoSession` when no CRIS session is connected (or `to` is closed).
        """
        text = codec.encode(message)  # validates: a bad message is the caller's error, not CRIS's
        targets = [to] if to is not None else list(self._sessions.values())
        targets = [session for session in targets if session.is_open]
        if isinstance(message, Login):
            insecure = [session for session in targets if not session.secure]
            for session in insecure:  # a password never crosses a network in clear text
                log.warning("LOGIN not sent to %s: only over wss:// or loopback", session)
            targets = [session for session in targets if session.secure]
        if not targets:
            raise NoSession(
                f"no CRIS Reporting session is connected; {message.command} not sent"
                if to is None
                else f"{to} is closed; {message.command} not sent"
            )
        reached: list[Session] = []

        async def send_one(session: Session) -> None:
            try:
                await session.connection.send_text(text)
            except ConnectionClosed as exc:
                log.warning("%s not sent to %s: %s", message.command, session, exc)
            else:
                reached.append(session)

        if len(targets) == 1:
            await send_one(targets[0])
        else:
            async with anyio.create_task_group() as tg:  # one slow client must not delay the rest
                for session in targets:
                    tg.start_soon(send_one, session)
        if reached:
            self.activity.sent(message, (session.id for session in reached))
            self._deliver(("on_sent",), {"message": message, "sessions": tuple(reached)},
                          f"{message.command} to {len(reached)} session(s)")
        else:  # targets was not empty: every one of them failed
            raise NoSession(f"{message.command} reached no CRIS session (all were closing)")
        return len(reached)

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any, name: str) -> None:
        """Run a plugin's background task until the bridge stops; its failure is logged."""
        if self._task_group is None or self._closing:
            raise RuntimeError("the bridge is not running")
        scope = anyio.CancelScope()
        self._background.add(scope)

        async def guarded() -> None:
            try:
                with scope:
                    await func(*args)
            except Exception:
                log.exception("background task %s failed", name)
            finally:
                self._background.discard(scope)

        self._task_group.start_soon(guarded, name=name)

    def health(self) -> dict[str, Any]:
        """What `/healthz` answers: enough to monitor, nothing about patients."""
        return {
            "status": "stopping" if self._closing else "ok",
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started_at, 1) if self.started_at else 0,
            "sessions": len(self._sessions),
            "plugins": {
                name: {"queued": r.queued, "failures": r.failures, "overflowed": r.overflowed}
                for name, r in self.runners.items()
            },
        }

    # Lifecycle

    async def __aenter__(self) -> Bridge:
        config_module.check(self.config)
        plugin_objects = plugin_loading.register(self.manager, self.config.plugins, self._extra_plugins)
        plugin_loading.check_sections(self.config.plugins, plugin_objects)
        configs = {}
        for name, plugin in plugin_objects.items():
            callers = plugin_loading.callers_for(self.manager, plugin)
            configs[name] = plugin_loading.plugin_config(
                name, callers, self.config.plugins.settings.get(name, {})
            )
            self.runners[name] = PluginRunner(
                name, plugin, callers,
                hook_timeout=self.config.plugins.hook_timeout,
                mailbox_size=self.config.plugins.mailbox_size,
            )
            self.runners[name].on_handled = self._handled
        ssl_context = None
        if not self.config.server.plain:
            # Imported here: certificate checks load `cryptography` (~10 MB, ~25 ms), which a
            # plain ws:// bridge (tests, embedding, the demo) never needs.
            from cris_connect.tls import server_context

            ssl_context = server_context(self.config.server)
        self._server = Server(
            self.config.server, self._run_session, ssl_context=ssl_context, health=self.health,
            session_count=lambda: len(self._sessions), version=__version__,
        )
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        try:
            for name, runner in self.runners.items():
                started = Delivery(("bridge_started",), {"bridge": self, "config": configs[name]},
                                   "bridge start-up")
                await self._task_group.start(runner.run, started, name=f"plugin {name}")
            await self._task_group.start(self._serve)
            if self.config.console.enabled:
                await self._start_console(ssl_context)
        except BaseException as exc:
            await self._abort(exc)
            raise
        self.started_at = time.monotonic()
        log.info("listening on %s (plugins: %s)", self.url, ", ".join(self.runners) or "none")
        return self

    async def _start_console(self, ssl_context: ssl.SSLContext | None) -> None:
        from cris_connect.console.server import Console

        assert self._task_group is not None and self._server is not None
        self.console = Console(self, self.config.console, ssl_context)
        await self._task_group.start(self.console.run, name="console")
        if self.config.console.simulator:  # its page is a CRIS client: let its origin connect
            self._server.extra_origins |= self.console.origins

    def _handled(self, plugin: str, delivery: Delivery, seconds: float) -> None:
        # A command from CRIS comes with the session's context; other deliveries do not.
        self.activity.handled(plugin, seconds, command="context" in delivery.kwargs)

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Accept until shutdown, then wait for every session's handler to end."""
        assert self._server is not None
        try:
            listener = await self._server.listen()  # outside the group: its error stays unwrapped
            async with anyio.create_task_group() as connections:
                self._connections = connections
                await self._server.serve(listener, connections, task_status=task_status)
        finally:
            self._served.set()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        with anyio.CancelScope(shield=True):
            await self.aclose()
        assert self._task_group is not None
        return await self._task_group.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop: no new sessions, close sessions with 1001, drain plugins. Safe to call twice."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._server is not None:
                self._server.stop_accepting()
            if self.console is not None:
                self.console.stop()
            async with anyio.create_task_group() as tg:
                for session in self.sessions:
                    tg.start_soon(session.connection.close, 1001, "cris-connect is shutting down")
            with anyio.move_on_after(self.config.server.close_timeout):
                await self._served.wait()
            if self._connections is not None and not self._served.is_set():
                self._connections.cancel_scope.cancel()
                await self._served.wait()
            await self._drain_plugins()
        finally:
            for scope in list(self._background):
                scope.cancel()
            self._closed.set()
            log.info("stopped")

    async def _drain_plugins(self) -> None:
        stopping = Delivery(("bridge_stopping",), {"bridge": self}, "bridge shutdown")
        with anyio.move_on_after(self.config.plugins.drain_timeout) as scope:
            for runner in self.runners.values():
                runner.deliver(stopping)
                runner.close_mailbox()
            for runner in self.runners.values():
                await runner.finished.wait()
        if scope.cancelled_caught:
            for name, runner in self.runners.items():
                if not runner.finished.is_set():
                    log.warning(
                        "plugin %s did not finish within %g s (plugins.drain_timeout); %d queued "
                        "command(s) abandoned", name, self.config.plugins.drain_timeout, runner.queued,
                    )
                    runner.scope.cancel()

    async def _abort(self, exc: BaseException) -> None:
        """Start-up failed: stop what started; the caller re-raises the original error."""
        self._closing = True
        self._closed.set()
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        except BaseException:  # noqa: S110 - the children's cancellation, or `exc` wrapped in a group
            pass

    # Sessions

    async def _run_session(self, connection: Connection, request: Request, peer: str, secure: bool) -> None:
        session = Session(next(self._session_ids), peer, request.headers.get("Origin"), connection,
                          secure=secure, rate=RateLimit(self.config.server.max_messages_per_second))
        session.last_received = anyio.current_time()
        self._sessions[session.id] = session
        self.activity.changed()
        log.info("%s connected%s", session, f" from origin {session.origin}" if session.origin else "")
        self._deliver(("session_opened",), {"session": session}, f"{session} opened")
        reason = "closed"
        try:
            async with anyio.create_task_group() as tg:
                if self.config.server.ping_interval:
                    tg.start_soon(self._keepalive, session)
                if self.config.server.idle_timeout:
                    tg.start_soon(self._close_when_idle, session, self.config.server.idle_timeout)

                async def on_message(opcode: Opcode, data: bytes) -> None:
                    self._received(session, opcode, data)

                await connection.recv_events(on_message)
                tg.cancel_scope.cancel()
            reason = close_reason(connection)
        finally:
            del self._sessions[session.id]
            self.activity.changed()
            log.info("%s disconnected (%s)", session, reason)
            self._deliver(("session_closed",), {"session": session, "reason": reason},
                          f"{session} closed")

    async def _close_when_idle(self, session: Session, timeout: float) -> None:
        while True:
            idle = anyio.current_time() - session.last_received
            if idle >= timeout:
                log.info("%s sent nothing for %g s (server.idle_timeout); closing it", session, timeout)
                await session.connection.close(1001, "idle timeout")
                return
            await anyio.sleep(timeout - idle)

    async def _keepalive(self, session: Session) -> None:
        interval = self.config.server.ping_interval
        timeout = self.config.server.ping_timeout
        assert interval
        while True:
            await anyio.sleep(interval)
            try:
                pong = await session.connection.ping()
            except ConnectionClosed:
                return
            if timeout:
                with anyio.move_on_after(timeout) as scope:
                    await pong.wait()
                if scope.cancelled_caught:
                    log.warning("%s did not answer a ping within %g s; closing it", session, timeout)
                    await session.connection.fail(1011, "keepalive ping timeout")
                    return

    def _received(self, session: Session, opcode: Opcode, data: bytes) -> None:
        session.last_received = anyio.current_time()
        if not session.rate.allow(session.last_received):
            self._refuse(session, f"more than {self.config.server.max_messages_per_second:g} messages per "
                                  "second (server.max_messages_per_second); frame dropped")
            return
        if opcode is not Opcode.TEXT:
            self._refuse(session, "a binary frame; CRIS Connect messages are JSON text frames")
            return
        try:
            message = codec.decode(data)
        except codec.DecodeError as exc:
            self._refuse(session, str(exc))
            return
        session.context = session.context.after(message)
        self.activity.received(session.id, message)
        if isinstance(message, (Event, ReadOnly)) and self.studies.providers:
            self.studies.begin(message.accession)
        hook = HOOKS[type(message)]
        if isinstance(message, UnknownCommand):
            log.warning("%s sent an unknown command '%s'; passed to plugins as UnknownCommand",
                        session, loggable(message.command, 40))
        self._deliver(
            ("on_command", hook),
            {"message": message, "context": session.context, "session": session},
            f"{message.command} from {session}",
        )

    def _refuse(self, session: Session, reason: str) -> None:
        log.warning("%s: frame refused: %s", session, reason)
        self.activity.refused(session.id, reason)
        self._deliver(("on_refused",), {"session": session, "reason": reason},
                      f"refused frame from {session}")

    def _deliver(self, hooks: tuple[str, ...], kwargs: dict[str, Any], what: str) -> None:
        delivery = Delivery(hooks, kwargs, what)
        for runner in self.runners.values():
            runner.deliver(delivery)
