"""`CrisReporting`: a stand-in for the CRIS Reporting web app, driven by a test or a script.

It connects the way CRIS Reporting does (ws:// or wss://, trusting a CA file you give it, sending the
page's Origin header) and offers the radiologist's actions as methods that send exactly what the
CRIS Connect specification says CRIS sends. Everything the PACS side sends back is recorded, in
order, and can be awaited with `expect` / `expect_nothing`:

    async with CrisReporting(bridge.url) as cris:
        await cris.open_report("RX123", exam_code="CCHES", nhs="9434765919")
        display = await cris.expect(Display, timeout=2)

Works under asyncio and trio (websockets' own client for the running backend). Passwords are never
logged; NHS and CHI numbers are masked in log lines.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar

import anyio
import attrs
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from cris_connect import codec
from cris_connect.certs import client_ssl_context
from cris_connect.client import connect
from cris_connect.masking import describe
from cris_connect.messages import (
    Commit,
    CrisCommand,
    Event,
    LoggedIn,
    LoggedOut,
    Message,
    PacsCommand,
    ReadOnly,
    Release,
    UnknownCommand,
)

if TYPE_CHECKING:
    from cris_connect import Bridge

log = logging.getLogger("cris_connect_sdk.simulator")

#: The header a non-browser client sends when the server has `server.shared_secret`.
SECRET_HEADER = "X-CRIS-Connect-Secret"  # noqa: S105 - a header name, not a secret

# websockets logs every frame, password included, at DEBUG: keep its logger above that.
_websockets_log = logging.getLogger("cris_connect_sdk.websockets")
_websockets_log.setLevel(logging.INFO)

T = TypeVar("T")


class SimulatorError(RuntimeError):
    """The simulator could not do what was asked (connect, send); the text says why and what to try."""


class ExpectationFailed(AssertionError):
    """What CRIS Reporting expected from the PACS side did not happen; the text says what did."""


@attrs.frozen
class BadFrame:
    """A frame from the PACS side that CRIS Reporting could not read (not JSON, binary, ...)."""

    command: ClassVar[str] = "(unreadable frame)"
    data: str | bytes = attrs.field(repr=lambda data: f"<{len(data)} characters>")
    reason: str = ""


#: What the simulator records: a command for CRIS, a command it does not know, or an unreadable frame.
Received: TypeAlias = PacsCommand | UnknownCommand | BadFrame


def show(message: Message | BadFrame, *, identifiers: bool = True) -> str:
    """One line for a message: `DISPLAY accession=RX1`. Passwords never appear."""
    if isinstance(message, BadFrame):
        return f"an unreadable frame ({message.reason})"
    return describe(message, show_identifiers=identifiers)


def _accessions(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _matches(message: Received, kind: type[Any], fields: Mapping[str, Any]) -> bool:
    if not isinstance(message, kind):
        return False
    for name, wanted in fields.items():
        if name == "accession" and not isinstance(wanted, tuple):
            wanted = _accessions(wanted)
        if getattr(message, name, None) != wanted:
            return False
    return True


def _wanted(kind: type[Any], fields: Mapping[str, Any]) -> str:
    name = getattr(kind, "command", "") or kind.__name__
    if kind is PacsCommand:
        name = "any command"
    details = " ".join(
        f"{key}={','.join(value) if isinstance(value, list | tuple) else value}"
        for key, value in fields.items() if key != "password"
    )
    return f"{name} {details}".strip()


class CrisReporting:
    """One CRIS Reporting client. Use as `async with CrisReporting(url) as cris:`.

    :param url: the PACS-side server, `wss://localhost:9998/` by default in CRIS.
    :param ca: a CA certificate file to trust for wss:// (the one `cris-connect cert` made);
        without it the system's trust store is used.
    :param origin: the Origin header to send, as the browser would (CRIS Reporting's page origin).
    :param secret: for a server with `server.shared_secret`: sent in the `X-CRIS-Connect-Secret`
        header, as a non-browser client must (never logged).
    """

    def __init__(
        self,
        url: str = "wss://localhost:9998/",
        *,
        ca: str | Path | None = None,
        origin: str | None = None,
        secret: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.origin = origin
        self._headers = {SECRET_HEADER: secret} if secret is not None else {}
        self.open_timeout = open_timeout
        if ssl_context is None and ca is not None:
            ssl_context = client_ssl_context(Path(ca))
        self.ssl_context = ssl_context
        #: Every message the PACS side sent, in arrival order.
        self.received: list[Received] = []
        #: Every frame this simulator sent, in order (for transcripts; may hold passwords: not logged).
        self.sent: list[str] = []
        #: The close code the PACS side sent, once the connection is closed.
        self.close_code: int | None = None
        self.close_reason: str = ""
        self._next = 0  # index in `received` of the first message no `expect` has consumed
        self._connection: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._changed: anyio.Event | None = None
        self._closed = False
        self._listeners: list[Callable[[Received], None]] = []
        #: The in-process bridge this simulator is connected to, when a fixture started one.
        self.bridge: Bridge | None = None

    # Connecting

    async def __aenter__(self) -> CrisReporting:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Open the WebSocket; raises `SimulatorError` with the reason and a hint when it cannot."""
        self._changed = anyio.Event()
        stack = contextlib.AsyncExitStack()
        try:
            # websockets' own open_timeout: a cancel scope around it would misnest with the
            # nursery trio's client keeps open for the connection's lifetime.
            self._connection = await stack.enter_async_context(
                connect(self.url, ssl_context=self.ssl_context, origin=self.origin,
                        open_timeout=self.open_timeout, logger=_websockets_log,
                        additional_headers=self._headers)
            )
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, Exception):
                raise SimulatorError(self._explain_connect_failure(exc)) from exc
            raise
        tasks = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tasks.cancel_scope.cancel)  # runs first on close: stop reading, then close
        tasks.start_soon(self._read)
        self._stack = stack
        log.info("CRIS Reporting connected to %s%s", self.url,
                 f" (origin {self.origin})" if self.origin else "")

    def _explain_connect_failure(self, exc: Exception) -> str:
        where = f"could not connect to {self.url}"
        if isinstance(exc, TimeoutError):
            return f"{where}: no WebSocket handshake within {self.open_timeout:g} s; is the server running?"
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
            hint = ""
            if status == 403:
                hint = (" (is the origin in server.allowed_origins? with no origin, does the server "
                        "want its shared secret?)")
            return f"{where}: the server answered HTTP {status}{hint} {body}".strip()
        if isinstance(exc, ssl.SSLError):
            return (f"{where}: TLS failed ({exc.reason or exc}); give the CA that signed the server's "
                    "certificate with --ca (or ca=...), as CRIS's browser must trust it")
        if isinstance(exc, InvalidHandshake):
            return f"{where}: not a WebSocket server ({exc})"
        if isinstance(exc, OSError):
            return f"{where}: {exc.strerror or exc}; is the PACS-side server running on that port?"
        return f"{where}: {type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        """Close the connection (code 1000), as closing the CRIS tab does. Safe to call twice."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            # Shielded: a test being cancelled must still leave the bridge a clean close.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5), contextlib.suppress(Exception):
                await self._connection.close()
        finally:
            await stack.aclose()  # not inside the shield: it exits the reader's task group
        self._closed = True
        self._notify()

    @property
    def closed(self) -> bool:
        return self._closed

    async def _read(self) -> None:
        try:
            while True:
                data = await self._connection.recv()
                self._record(data)
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                self.close_code, self.close_reason = exc.rcvd.code, exc.rcvd.reason
            log.info("the PACS side closed the connection (%s)",
                     f"code {self.close_code}" if self.close_code is not None else "no close frame")
        finally:
            self._closed = True
            self._notify()

    def _record(self, data: str | bytes) -> None:
        message: Received
        if isinstance(data, bytes):
            message = BadFrame(data, "a binary frame; CRIS Connect messages are JSON text frames")
        else:
            try:
                message = codec.decode_for_cris(data)
            except codec.DecodeError as exc:
                message = BadFrame(data, str(exc))
        log.info("PACS -> CRIS %s", show(message, identifiers=False))
        self.received.append(message)
        for listener in self._listeners:
            listener(message)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    def on_receive(self, listener: Callable[[Received], None]) -> None:
        """Call `listener(message)` for each message as it arrives (the interactive console uses it)."""
        self._listeners.append(listener)

    # The radiologist's actions (CRIS -> PACS, as the specification says)

    async def login(self, username: str | None = None, password: str | None = None) -> None:
        """The radiologist logs in: LOGIN (the specification sends no other fields)."""
        await self.send(LoggedIn(username=username, password=password))

    async def logout(self) -> None:
        """The radiologist logs out: LOGOUT."""
        await self.send(LoggedOut())

    async def open_report(self, accession: str | Iterable[str], *, exam_code: str | None = None,
                          nhs: str | None = None, chi: str | None = None) -> None:
        """A report is opened: EVENT with the accession(s) and whatever else CRIS knows."""
        await self.send(Event(accession=_accessions(accession), exam_code=exam_code, nhs=nhs, chi=chi))

    async def select_exam(self, accession: str | Iterable[str], *, exam_code: str | None = None,
                          nhs: str | None = None, chi: str | None = None) -> None:
        """A single exam's report is selected: EVENT, as for opening a report."""
        await self.send(Event(accession=_accessions(accession), exam_code=exam_code, nhs=nhs, chi=chi))

    async def open_historic(self, accession: str | Iterable[str], *, exam_code: str | None = None,
                            nhs: str | None = None, chi: str | None = None) -> None:
        """A historic report is opened for reading: READONLY."""
        await self.send(ReadOnly(accession=_accessions(accession), exam_code=exam_code, nhs=nhs, chi=chi))

    async def save_report(self, accession: str | Iterable[str]) -> None:
        """The report is saved (verified or finished): COMMIT, then RELEASE."""
        await self.send(Commit(accession=_accessions(accession)))
        await self.send(Release(accession=_accessions(accession)))

    async def skip_report(self, accession: str | Iterable[str]) -> None:
        """The report is skipped, cancelled or exited: RELEASE."""
        await self.send(Release(accession=_accessions(accession)))

    async def send(self, message: CrisCommand | UnknownCommand) -> None:
        """Send one command as CRIS would encode it (absent fields omitted)."""
        log.info("CRIS -> PACS %s", show(message, identifiers=False))
        await self._send_frame(codec.encode(message))

    async def send_text(self, text: str) -> None:
        """Send a raw text frame: an unknown command, a malformed field, not JSON at all."""
        log.info("CRIS -> PACS a raw frame of %d characters", len(text))  # may hold anything: not shown
        await self._send_frame(text)

    async def _send_frame(self, text: str) -> None:
        if self._stack is None:
            raise SimulatorError("the simulator is not connected; use `async with CrisReporting(url)`")
        try:
            await self._connection.send(text)
        except ConnectionClosed as exc:
            raise SimulatorError(f"the PACS side has closed the connection ({exc}); nothing sent") from None
        self.sent.append(text)

    # What the PACS side sent

    @property
    def pending(self) -> list[Received]:
        """Messages received that no `expect` has consumed yet."""
        return self.received[self._next:]

    # `expect(Display, timeout=2)` reads as a test means it, hence a timeout parameter.
    async def expect(
        self,
        kind: type[T] = PacsCommand,  # type: ignore[assignment]
        *,
        timeout: float = 2.0,
        **fields: Any,
    ) -> T:
        """Wait for the next message from the PACS side and check it is `kind` (with these fields).

        Returns it, or raises `ExpectationFailed` saying what arrived instead (or that nothing did).
        Messages are consumed in order: each `expect` looks at the next one not yet expected.
        """
        wanted = _wanted(kind, fields)
        with anyio.move_on_after(timeout):
            while not self.pending and not self._closed:
                await self._wait_for_change()
        if not self.pending:
            if self._closed:
                code = f"code {self.close_code}" if self.close_code is not None else "no close frame"
                raise ExpectationFailed(
                    f"expected {wanted}, but the connection closed ({code}) before it arrived"
                    + self._history()
                )
            raise ExpectationFailed(f"expected {wanted} within {timeout:g} s, but nothing arrived"
                                    + self._history())
        message = self.received[self._next]
        self._next += 1
        if not _matches(message, kind, fields):
            raise ExpectationFailed(f"expected {wanted}, but received {show(message)}" + self._history())
        return message  # type: ignore[return-value]

    def mark_seen(self) -> None:
        """Treat everything received so far as expected: the next `expect` looks at what comes next."""
        self._next = len(self.received)

    async def expect_nothing(self, for_: float = 0.5) -> None:
        """Check the PACS side sends nothing (more) for `for_` seconds."""
        with anyio.move_on_after(for_):
            while not self.pending:
                await self._wait_for_change()
        if self.pending:
            unexpected = ", ".join(show(message) for message in self.pending)
            self._next = len(self.received)
            raise ExpectationFailed(f"expected nothing for {for_:g} s, but received {unexpected}")

    async def wait_closed(self) -> None:
        """Return once the connection is closed (by either side)."""
        while not self._closed:
            await self._wait_for_change()

    async def _wait_for_change(self) -> None:
        assert self._changed is not None
        await self._changed.wait()

    def _history(self) -> str:
        if not self.received:
            return " (nothing was received on this connection)"
        return " (received so far: " + "; ".join(show(message) for message in self.received) + ")"
