"""One WebSocket connection: websockets' sans-I/O `ServerProtocol` driven over an anyio byte stream.

Modelled on websockets' `trio/connection.py`, with its method names (`recv_events`, `send_data`,
`send_context`, `close_stream`) so a reader who knows websockets knows this: every receive is
followed by a send of whatever the protocol wants to write (pongs, close replies), one lock
serialises writers, and a closing connection is given `close_timeout` seconds before the stream is
aborted. Nothing here imports asyncio or trio.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

log = logging.getLogger("cris_connect.connection")

_READ_SIZE = 65536
#: Errors that mean the peer went away or broke the stream; not our fault, not worth a traceback.
STREAM_ERRORS = (
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)


class ConnectionClosed(Exception):
    """The WebSocket is closed or closing; nothing more can be sent on it."""


class Connection:
    """The I/O half of one connection. `recv_events` runs for as long as the connection lives."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        protocol: ServerProtocol,
        *,
        close_timeout: float,
        send_timeout: float,
    ) -> None:
        self.stream = stream
        self.protocol = protocol
        self.close_timeout = close_timeout
        self.send_timeout = send_timeout
        # fast_acquire: an uncontended send does not yield to the loop first (one pass per frame).
        self.send_lock = anyio.Lock(fast_acquire=True)
        self.closed = anyio.Event()
        self.pending_pong: tuple[bytes, anyio.Event] | None = None
        # Frames of a fragmented message, joined when the final fragment arrives.
        self._fragments: list[bytes] = []
        self._fragmented_opcode: Opcode | None = None

    @property
    def state(self) -> State:
        return self.protocol.state

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    # Handshake

    async def recv_request(self, timeout: float) -> Request | None:
        """Read the HTTP request that opens the connection; None when it never came or was bad."""
        with anyio.move_on_after(timeout):
            while True:
                try:
                    data = await self.stream.receive(_READ_SIZE)
                except STREAM_ERRORS:
                    return None
                self.protocol.receive_data(data)
                events = self.protocol.events_received()
                if events:
                    assert isinstance(events[0], Request), events[0]
                    return events[0]
                if self.protocol.handshake_exc is not None:
                    await self.send_data()  # websockets answers what it can (414, 431) or closes
                    return None
        return None

    # Receiving

    async def recv_events(self, on_message: Callable[[Opcode, bytes], Awaitable[None]]) -> None:
        """Feed received bytes to the protocol and hand each complete message to `on_message`.

        Returns when the connection is closed, cleanly or not; the stream is closed on the way out.
        """
        close_deadline: float | None = None
        try:
            while True:
                data = await self._receive(close_deadline)
                if data is None:
                    break
                self.protocol.receive_data(data)
                events = self.protocol.events_received()
                try:
                    # Under the send lock: a pong or close reply queued here must not be written
                    # while another task (keepalive ping, send_text) writes the same stream.
                    async with self.send_lock:
                        await self.send_data()
                except STREAM_ERRORS:
                    break
                if close_deadline is None and self.protocol.close_expected():
                    close_deadline = anyio.current_time() + self.close_timeout
                for event in events:
                    assert isinstance(event, Frame)
                    await self._process_frame(event, on_message)
            self.protocol.receive_eof()
            with contextlib.suppress(*STREAM_ERRORS):
                async with self.send_lock:
                    await self.send_data()
        finally:
            await self.close_stream()

    async def _receive(self, deadline: float | None) -> bytes | None:
        """The next bytes from the stream; None at its end, or once `deadline` has passed.

        No cancel scope without a deadline: this runs once per frame received, and on asyncio
        entering a scope costs about as much as parsing the frame.
        """
        try:
            if deadline is None:
                return await self.stream.receive(_READ_SIZE)
            with anyio.move_on_after(deadline - anyio.current_time()):
                return await self.stream.receive(_READ_SIZE)
            log.debug("closing handshake timed out; aborting the stream")
            return None
        except STREAM_ERRORS:
            return None

    async def _process_frame(
        self, frame: Frame, on_message: Callable[[Opcode, bytes], Awaitable[None]]
    ) -> None:
        if frame.opcode is Opcode.PONG:
            self._acknowledge_pong(bytes(frame.data))
            return
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            if frame.fin:
                await on_message(frame.opcode, bytes(frame.data))
                return
            self._fragmented_opcode, self._fragments = frame.opcode, [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT and self._fragmented_opcode is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                opcode, data = self._fragmented_opcode, b"".join(self._fragments)
                self._fragmented_opcode, self._fragments = None, []
                await on_message(opcode, data)
        # PING is answered by the protocol itself; CLOSE is handled by the protocol's state.

    # Sending

    async def send_data(self) -> None:
        """Write what the protocol has queued. An empty chunk means: end the stream (server side)."""
        for data in self.protocol.data_to_send():
            if data:
                await self.stream.send(data)
            else:
                await self.close_stream()

    @contextlib.asynccontextmanager
    async def send_context(self) -> AsyncIterator[None]:
        """Hold the send lock, let the caller queue frames, then write them within `send_timeout`."""
        async with self.send_lock:
            if self.protocol.state is not State.OPEN:
                raise ConnectionClosed(f"the connection is {self.protocol.state.name.lower()}")
            yield
            try:
                with anyio.fail_after(self.send_timeout):
                    await self.send_data()
            except TimeoutError:
                # A client that reads nothing for this long is gone; do not let it hold the lock.
                await self.close_stream()
                raise ConnectionClosed(
                    f"the client read nothing for {self.send_timeout:g} s; connection aborted"
                ) from None
            except STREAM_ERRORS as exc:
                await self.close_stream()
                raise ConnectionClosed(f"the connection broke ({exc!r})") from None

    async def send_text(self, text: str) -> None:
        async with self.send_context():
            self.protocol.send_text(text.encode())

    async def ping(self) -> anyio.Event:
        """Send a ping; the returned event is set when its pong arrives."""
        data = os.urandom(4)
        pong = anyio.Event()
        async with self.send_context():
            self.protocol.send_ping(data)
            self.pending_pong = (data, pong)
        return pong

    def _acknowledge_pong(self, data: bytes) -> None:
        if self.pending_pong is not None and self.pending_pong[0] == data:
            self.pending_pong[1].set()
            self.pending_pong = None

    async def send_response(self, response: object) -> None:
        """Send the HTTP answer to the opening request (101, or a page that ends the connection)."""
        async with self.send_lock:
            self.protocol.send_response(response)  # type: ignore[arg-type]
            with contextlib.suppress(*STREAM_ERRORS):
                with anyio.fail_after(self.send_timeout):
                    await self.send_data()

    # Closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake and wait up to `close_timeout` for it; safe to call twice."""
        with contextlib.suppress(ConnectionClosed):
            async with self.send_context():
                self.protocol.send_close(code, reason)
        with anyio.move_on_after(self.close_timeout):
            await self.closed.wait()
        await self.close_stream()

    async def fail(self, code: int, reason: str) -> None:
        """Close without waiting for the client (protocol errors, dead keepalive)."""
        async with self.send_lock:
            if self.protocol.state is State.OPEN:
                self.protocol.fail(code, reason)
                with contextlib.suppress(*STREAM_ERRORS), anyio.move_on_after(self.send_timeout):
                    await self.send_data()
        await self.close_stream()

    async def close_stream(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        # Forcefully: a TLS close_notify to a peer that stopped reading could wait forever.
        await anyio.aclose_forcefully(self.stream)
