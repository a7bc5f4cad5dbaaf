"""A Chrome DevTools Protocol client: websockets' sans-I/O `ClientProtocol` over an anyio stream.

One `CdpConnection` is one WebSocket to one DevTools target (the browser, or a tab) and is used by
one task at a time: `call` sends a command and reads frames until its answer, keeping the events
that arrive meanwhile for `next_event` / `wait_event`. No reader task, so nothing runs behind the
caller's back and cancellation is clean on asyncio and trio alike. Like the core's `Connection`,
every receive is followed by sending what the protocol queued (pongs, close replies).

No `Origin` header is sent: Chromium refuses DevTools clients that send one unless it was started
with `--remote-allow-origins`.

`DevTools` is the HTTP side (`/json/version`, `/json/list`, `PUT /json/new`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
import anyio.abc
import attrs
import httpx
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

_READ_SIZE = 65536
_STREAM_ERRORS = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)


class CdpUnavailable(ConnectionError):
    """The browser cannot be reached, or the DevTools connection was lost; the text says why."""


class CdpError(RuntimeError):
    """A DevTools command was answered with an error object."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.error_message = str(error.get("message", error))
        super().__init__(f"{method}: {self.error_message}")


@attrs.frozen
class CdpEvent:
    """A DevTools event: `Target.targetInfoChanged`, `Page.loadEventFired`, ..."""

    method: str
    params: dict[str, Any]
    session_id: str | None = None


class CdpConnection:
    """One DevTools WebSocket. `async with await CdpConnection.open(url) as cdp:`."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: ClientProtocol, url: str) -> None:
        self.stream = stream
        self.protocol = protocol
        self.url = url
        self._ids = itertools.count(1)
        self._events: deque[CdpEvent] = deque()
        self._messages: deque[str] = deque()  # complete text frames not yet parsed
        self._fragments: list[bytes] = []
        self.closed = False

    # Opening and closing

    @classmethod
    async def open(cls, url: str, *, timeout: float = 5.0) -> CdpConnection:
        """Connect and complete the WebSocket handshake within `timeout` seconds."""
        uri = parse_uri(url)
        protocol = ClientProtocol(uri, max_size=None)  # screenshots and DOM dumps are large
        stream: anyio.abc.ByteStream | None = None
        try:
            with anyio.fail_after(timeout):
                stream = await anyio.connect_tcp(uri.host, uri.port)
                connection = cls(stream, protocol, url)
                protocol.send_request(protocol.connect())
                await connection._send_data()
                while protocol.state is State.CONNECTING:
                    data = await stream.receive(_READ_SIZE)
                    protocol.receive_data(data)
                    events = protocol.events_received()
                    if protocol.handshake_exc is not None:
                        raise CdpUnavailable(f"DevTools refused the WebSocket at {url}: "
                                             f"{protocol.handshake_exc}")
                    if events:
                        assert isinstance(events[0], Response)
                        if events[1:]:
                            connection._take_frames(events[1:])
        except TimeoutError:
            await _close_quietly(stream)
            raise CdpUnavailable(f"no DevTools handshake from {url} within {timeout:g} s") from None
        except _STREAM_ERRORS as exc:
            await _close_quietly(stream)
            raise CdpUnavailable(f"cannot connect to DevTools at {url} ({describe(exc)})") from None
        except BaseException:
            await _close_quietly(stream)
            raise
        return connection

    async def __aenter__(self) -> CdpConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close at once: DevTools does not need the closing handshake, and we never wait on it."""
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                if self.protocol.state is State.OPEN:
                    self.protocol.send_close(1000)
                    with anyio.move_on_after(0.5):
                        await self._send_data()
            await anyio.aclose_forcefully(self.stream)

    # Commands and events

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send one command and return its `result`; raises `CdpError` for an error answer."""
        message_id = next(self._ids)
        command: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            command["sessionId"] = session_id
        await self._send_text(json.dumps(command))
        try:
            with anyio.fail_after(timeout):
                while True:
                    message = await self._receive_message()
                    if message.get("id") == message_id:
                        if "error" in message:
                            raise CdpError(method, message["error"])
                        result: dict[str, Any] = message.get("result", {})
                        return result
                    self._keep_event(message)
        except TimeoutError:
            raise TimeoutError(f"DevTools did not answer {method} within {timeout:g} s") from None

    async def next_event(self) -> CdpEvent:
        """The oldest event not yet taken, waiting for one if none is buffered."""
        while not self._events:
            self._keep_event(await self._receive_message())
        return self._events.popleft()

    async def wait_event(
        self, method: str, *, timeout: float,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> dict[str, Any]:
        """The params of the first event `method` (buffered or new) for which `where` holds."""
        for event in list(self._events):
            if event.method == method and where(event.params):
                self._events.remove(event)
                return event.params
        try:
            with anyio.fail_after(timeout):
                while True:
                    message = await self._receive_message()
                    if message.get("method") == method and where(message.get("params", {})):
                        params: dict[str, Any] = message.get("params", {})
                        return params
                    self._keep_event(message)
        except TimeoutError:
            raise TimeoutError(f"no {method} from DevTools within {timeout:g} s") from None

    def clear_events(self) -> None:
        self._events.clear()

    # Frames

    def _keep_event(self, message: dict[str, Any]) -> None:
        if "method" in message:
            self._events.append(CdpEvent(message["method"], message.get("params", {}),
                                         message.get("sessionId")))

    async def _receive_message(self) -> dict[str, Any]:
        while True:
            while not self._messages:
                await self._receive_data()
            try:
                message = json.loads(self._messages.popleft())
            except ValueError:
                continue  # DevTools only sends JSON objects; skip anything else rather than fail
            if isinstance(message, dict):
                return message

    async def _receive_data(self) -> None:
        """Read once from the stream and turn what arrived into messages."""
        if self.protocol.state is State.CLOSED:
            raise CdpUnavailable(f"the DevTools connection to {self.url} is closed")
        try:
            data = await self.stream.receive(_READ_SIZE)
        except _STREAM_ERRORS as exc:
            self.protocol.receive_eof()
            await self.aclose()
            raise CdpUnavailable(
                f"the DevTools connection to {self.url} was lost ({describe(exc)}); "
                "the browser or the tab was closed"
            ) from None
        self.protocol.receive_data(data)
        events = self.protocol.events_received()
        with contextlib.suppress(*_STREAM_ERRORS):
            await self._send_data()
        self._take_frames(events)
        if self.protocol.close_expected():  # the browser sent a close frame or dropped the TCP
            if not self._messages:
                await self.aclose()
                raise CdpUnavailable(f"DevTools closed the connection to {self.url} "
                                     "(the browser or the tab was closed)")

    def _take_frames(self, events: list[Any]) -> None:
        for frame in events:
            if not isinstance(frame, Frame):
                continue
            if frame.opcode is Opcode.TEXT:
                if frame.fin:
                    self._messages.append(bytes(frame.data).decode())
                else:
                    self._fragments = [bytes(frame.data)]
            elif frame.opcode is Opcode.CONT and self._fragments:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    self._messages.append(b"".join(self._fragments).decode())
                    self._fragments = []

    async def _send_text(self, text: str) -> None:
        if self.protocol.state is not State.OPEN:
            raise CdpUnavailable(f"the DevTools connection to {self.url} is closed")
        self.protocol.send_text(text.encode())
        try:
            await self._send_data()
        except _STREAM_ERRORS as exc:
            await self.aclose()
            raise CdpUnavailable(f"the DevTools connection to {self.url} was lost ({describe(exc)})") \
                from None

    async def _send_data(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self.stream.send(data)
            else:  # the protocol wants the TCP connection half-closed
                with contextlib.suppress(*_STREAM_ERRORS, AttributeError):
                    await self.stream.send_eof()


async def _close_quietly(stream: anyio.abc.ByteStream | None) -> None:
    if stream is not None:
        with anyio.CancelScope(shield=True):
            await anyio.aclose_forcefully(stream)


def describe(exc: BaseException) -> str:
    """A few words on why a connection failed: "connection refused", "closed by the browser"."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        if isinstance(cause, anyio.EndOfStream):
            return "closed by the browser"
        if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # trio: one error per address tried
            continue
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


@attrs.frozen
class Tab:
    """A page target as `/json/list` describes it."""

    id: str
    url: str
    title: str
    websocket_url: str

    @classmethod
    def from_json(cls, target: dict[str, Any]) -> Tab:
        return cls(target["id"], target.get("url", ""), target.get("title", ""),
                   target.get("webSocketDebuggerUrl", ""))


class DevTools:
    """The browser's DevTools HTTP endpoint, e.g. `http://127.0.0.1:9222`."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _client(self) -> httpx.AsyncClient:
        # Loopback (or a named workstation) never goes through an HTTP(S)_PROXY from the environment.
        return httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, trust_env=False)

    async def _request(self, method: str, path: str) -> Any:
        try:
            async with self._client() as client:
                response = await client.request(method, path)
        except httpx.TimeoutException:
            raise CdpUnavailable(f"the browser's DevTools at {self.base_url} did not answer within "
                                 f"{self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise CdpUnavailable(f"no browser answers DevTools at {self.base_url} ({describe(exc)})") \
                from None
        if response.status_code != 200:
            raise CdpUnavailable(f"{self.base_url}{path} answered HTTP {response.status_code}; is that "
                                 "a browser's --remote-debugging-port?")
        try:
            return response.json()
        except ValueError:
            raise CdpUnavailable(f"{self.base_url}{path} did not answer JSON; is that a browser's "
                                 "--remote-debugging-port?") from None

    async def version(self) -> dict[str, Any]:
        """`/json/version`: Browser, Protocol-Version, webSocketDebuggerUrl."""
        result: dict[str, Any] = await self._request("GET", "/json/version")
        return result

    async def browser_websocket_url(self) -> str:
        version = await self.version()
        url = version.get("webSocketDebuggerUrl")
        if not isinstance(url, str):
            raise CdpUnavailable(f"{self.base_url}/json/version names no webSocketDebuggerUrl")
        return url

    async def tabs(self) -> list[Tab]:
        """The open tabs (page targets), in the browser's order (most recently active first)."""
        targets = await self._request("GET", "/json/list")
        return [Tab.from_json(t) for t in targets if isinstance(t, dict) and t.get("type") == "page"]

    async def new_tab(self, url: str = "about:blank") -> Tab:
        """Open a tab (`PUT /json/new`; GET answers 405 on current Chromium)."""
        target = await self._request("PUT", f"/json/new?{quote(url, safe=':/?&=,%')}")
        return Tab.from_json(target)
