"""Raw peers for the reliability suite: bytes on a socket, no WebSocket library in the way.

A hostile client does not follow the protocol, so these helpers build the opening request and the
frames by hand (websockets' `Frame.serialize` for well-formed frames) and read whatever the bridge
answers until it closes the connection.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
from websockets.frames import Frame, Opcode

from core.tests.recorder import Recorder
from core.tests.support import recv_json, send_json
from cris_connect import Bridge, Display

CRIS_ORIGIN = "https://cris.example.nhs.uk"


def upgrade_request(port: int, *, origin: str | None = None, headers: Mapping[str, str] | None = None,
                    path: str = "/") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}", "Sec-WebSocket-Version: 13"]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(opcode: Opcode, payload: bytes | str, *, fin: bool = True) -> bytes:
    """A well-formed, masked client frame."""
    data = payload.encode() if isinstance(payload, str) else payload
    return Frame(opcode, data, fin=fin).serialize(mask=True)


def text(message: Mapping[str, Any]) -> bytes:
    return frame(Opcode.TEXT, json.dumps(message))


def raw_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None,
              length: int | None = None) -> bytes:
    """Any frame at all, including ones the protocol forbids (bad opcode, reserved bits, no mask,
    a length that lies)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)])
    size = len(payload) if length is None else length
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


async def connect(port: int) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp("127.0.0.1", port)


def local_port(stream: anyio.abc.SocketStream) -> int:
    return int(stream.extra(anyio.abc.SocketAttribute.local_address)[1])


async def read_until_closed(stream: anyio.abc.ByteStream, timeout: float = 10, limit: int = 1 << 20) -> bytes:
    """Everything the bridge sends until it closes the connection (or resets it)."""
    received = bytearray()
    with anyio.fail_after(timeout):
        while len(received) < limit:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                break
    return bytes(received)


async def read_response_head(stream: anyio.abc.ByteStream, timeout: float = 5) -> tuple[int, bytes]:
    """The status code of the HTTP answer, and any bytes that came after its head."""
    received = b""
    with anyio.fail_after(timeout):
        while b"\r\n\r\n" not in received:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
    if not received:
        return 0, b""
    head, _, rest = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest


async def open_websocket(port: int, **kwargs: Any) -> anyio.abc.SocketStream:
    """A raw connection that completed the opening handshake (101)."""
    stream = await connect(port)
    await stream.send(upgrade_request(port, **kwargs))
    status, _ = await read_response_head(stream)
    assert status == 101, status
    return stream


def close_code(data: bytes) -> int | None:
    """The code of the first close frame the bridge sent (server frames are not masked)."""
    offset = 0
    while offset + 2 <= len(data):
        opcode, size = data[offset] & 0x0F, data[offset + 1] & 0x7F
        offset += 2
        if size == 126:
            size, offset = struct.unpack("!H", data[offset:offset + 2])[0], offset + 2
        elif size == 127:
            size, offset = struct.unpack("!Q", data[offset:offset + 8])[0], offset + 8
        if opcode == Opcode.CLOSE.value:
            return int(struct.unpack("!H", data[offset:offset + 2])[0]) if size >= 2 else 1005
        offset += size
    return None


class Canary:
    """A well-behaved CRIS session, checked after every attack: a command reaches the plugins and a
    DISPLAY comes back, each within a deadline."""

    def __init__(self, bridge: Bridge, recorder: Recorder, ws: Any) -> None:
        self.bridge, self.recorder, self.ws = bridge, recorder, ws
        self.round_trips = 0

    async def check(self, after: str = "") -> None:
        self.round_trips += 1
        accession = f"CANARY{self.round_trips}"
        await send_json(self.ws, {"command": "EVENT", "accession": [accession]})
        with anyio.fail_after(10):
            while not any(c["message"].accession == (accession,) for c in self.recorder.hooks("on_event")):
                await self.recorder.wait_for("on_event", len(self.recorder.hooks("on_event")) + 1, timeout=10)
        session = next(s for s in self.bridge.sessions if s.origin == CRIS_ORIGIN)
        await self.bridge.send(Display(accession=[accession]), to=session)
        answer = await recv_json(self.ws, timeout=10)
        assert answer == {"command": "DISPLAY", "accession": [accession]}, f"after {after}: {answer}"
