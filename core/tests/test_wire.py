"""Bad input on the wire: each gets its specific logged reason, the session stays usable where the
protocol allows, and other sessions never notice."""

from __future__ import annotations

import base64
import json
import logging
import os

import anyio
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json, wait_until
from cris_connect import Display

pytestmark = pytest.mark.anyio

GOOD = {"command": "EVENT", "accession": ["RX1"]}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "frame refused: the frame is not valid JSON"),
        ("[1, 2]", "frame refused: the frame is an array, but a CRIS Connect message is a JSON object"),
        ('{"accession": ["RX1"]}', "frame refused: the message has no 'command' field"),
        ('{"command": "EVENT", "examCode": 12}', "frame refused: EVENT: field 'examCode': expected a string, got 12"),
        (b"\x00\x01binary", "frame refused: a binary frame; CRIS Connect messages are JSON text frames"),
    ],
    ids=["invalid-json", "not-an-object", "no-command", "wrong-type", "binary"],
)
async def test_refused_frame_is_logged_and_the_session_goes_on(start_bridge, logs, frame, reason) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws, cris(bridge.url) as other:
        await ws.send(frame)
        [refused] = await recorder.wait_for("on_refused")
        assert reason.removeprefix("frame refused: ") in refused["reason"]
        assert any(reason in line for line in logs.messages(logging.WARNING)), logs.text()
        await send_json(ws, GOOD)  # the same session still works
        await send_json(other, GOOD)  # and the other one never noticed
        calls = await recorder.wait_for("on_event", 2)
        assert {c["session"].id for c in calls} == {s.id for s in bridge.sessions}


async def test_unknown_command_is_delivered_and_logged(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, {"command": "PRIORITY", "level": 1})
        [call] = await recorder.wait_for("on_unknown_command")
        assert call["message"].raw["level"] == 1
        assert any("unknown command 'PRIORITY'" in m for m in logs.messages(logging.WARNING))


async def test_oversized_frame_closes_with_1009_and_others_go_on(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], max_message_size=1024) as bridge, cris(bridge.url) as other:
        async with cris(bridge.url, max_size=None) as ws:
            await ws.send(json.dumps({"command": "EVENT", "accession": ["X" * 2000]}))
            with pytest.raises(ConnectionClosed) as closed:
                with anyio.fail_after(5):
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        [gone] = await recorder.wait_for("session_closed")
        assert gone["reason"].startswith("closed by the bridge (1009")
        await send_json(other, GOOD)
        await recorder.wait_for("on_event")
        assert recorder.hooks("on_event")[0]["session"] is bridge.sessions[0]


async def test_fragmented_message_is_reassembled(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        text = json.dumps(GOOD)
        await ws.send([text[:5], text[5:12], text[12:]])  # websockets sends an iterable as fragments
        [call] = await recorder.wait_for("on_event")
        assert call["message"].accession == ("RX1",)


# Raw TCP: what no well-behaved client library will send.


async def handshake(port: int) -> anyio.abc.SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send(
        (f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )
    response = b""
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in response:
            response += await stream.receive()
    assert response.startswith(b"HTTP/1.1 101"), response
    return stream


def masked(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


async def test_frame_split_byte_by_byte(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge:
        stream = await handshake(bridge.port)
        for byte in masked(Opcode.TEXT, json.dumps(GOOD).encode()):
            await stream.send(bytes([byte]))
        [call] = await recorder.wait_for("on_event")
        assert call["message"].accession == ("RX1",)
        await stream.aclose()


async def test_client_killed_mid_frame(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as other:
        stream = await handshake(bridge.port)
        await recorder.wait_for("session_opened", 2)
        await stream.send(masked(Opcode.TEXT, json.dumps(GOOD).encode())[:9])
        await stream.aclose()  # abrupt: no close frame, half a frame sent
        [closed] = await recorder.wait_for("session_closed")
        assert closed["reason"] in ("connection lost", "close code 1006")
        assert recorder.hooks("on_event") == []  # half a frame is not a command
        assert await bridge.send(Display(accession=["RX2"])) == 1
        assert (await recv_json(other))["accession"] == ["RX2"]


@pytest.mark.parametrize(
    ("request_text", "status", "body_has"),
    [
        ("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", b"200", b"cris-connect is running"),
        ("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", b"200", b'"status": "ok"'),
        ("GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n", b"404", b"Not found"),
        ("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n", b"426", b"Upgrade"),
    ],
    ids=["page", "healthz", "404", "bad-handshake"],
)
async def test_plain_http_requests(start_bridge, request_text, status, body_has) -> None:
    async with start_bridge() as bridge:
        stream = await anyio.connect_tcp("127.0.0.1", bridge.port)
        await stream.send(request_text.encode())
        answer = b""
        with anyio.fail_after(5):
            try:
                while chunk := await stream.receive():
                    answer += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        assert answer.split(b" ")[1] == status, answer
        assert body_has in answer
        await stream.aclose()


async def test_garbage_instead_of_http_is_dropped_and_logged(start_bridge, logs) -> None:
    async with start_bridge() as bridge:
        stream = await anyio.connect_tcp("127.0.0.1", bridge.port)
        await stream.send(b"\x16\x03\x01garbage that is not HTTP\r\n\r\n")
        with anyio.fail_after(5):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                while True:
                    await stream.receive()
        await wait_until(lambda: any("not a valid HTTP request" in m for m in logs.messages()),
                         what="the refusal to be logged")


async def test_slow_handshake_is_cut_off(start_bridge, logs) -> None:
    async with start_bridge(handshake_timeout=0.3) as bridge:
        stream = await anyio.connect_tcp("127.0.0.1", bridge.port)
        await stream.send(b"GET / HTTP/1.1\r\n")  # and then nothing: slow-loris
        with anyio.fail_after(5):
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stream.receive()


async def test_unanswered_pings_close_the_session(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], ping_interval=0.05, ping_timeout=0.2) as bridge:
        stream = await handshake(bridge.port)  # a raw client never answers pings
        [closed] = await recorder.wait_for("session_closed")
        assert closed["reason"] == "closed by the bridge (1011 keepalive ping timeout)"
        assert any("did not answer a ping" in m for m in logs.messages())
        await stream.aclose()


async def test_answered_pings_keep_the_session(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], ping_interval=0.02, ping_timeout=1) as bridge:
        async with cris(bridge.url) as ws:
            await recorder.wait_for("session_opened")
            with anyio.move_on_after(0.3):
                await ws.recv()  # websockets answers pings while waiting
            assert recorder.hooks("session_closed") == []
            await send_json(ws, GOOD)
            await recorder.wait_for("on_event")


async def test_client_pings_crossing_server_writes_never_collide(start_bridge) -> None:
    """The reader answers pings while other tasks write: all writes share one lock.

    Before that, a pong written by the receive loop while `bridge.send` (or the keepalive ping)
    was writing the same stream failed with BusyResourceError and closed the session with 1011.
    """
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], ping_interval=0.005, ping_timeout=5) as bridge:
        async with cris(bridge.url) as ws:
            await recorder.wait_for("session_opened")

            async def ping_a_lot() -> None:
                for _ in range(200):
                    pong = await ws.ping()
                    with anyio.fail_after(5):  # an asyncio future, or a trio event
                        await (pong.wait() if hasattr(pong, "wait") else pong)

            received: list[str] = []

            async def read_all() -> None:  # keep reading, as CRIS does, so pongs get through
                for _ in range(200):
                    received.append((await recv_json(ws))["accession"][0])

            async with anyio.create_task_group() as tg:
                tg.start_soon(ping_a_lot)
                tg.start_soon(read_all)
                for n in range(200):
                    await bridge.send(Display(accession=[f"RX{n}"]))
            assert received == [f"RX{n}" for n in range(200)]
        [closed] = await recorder.wait_for("session_closed")
        assert closed["reason"] == "close code 1000"


async def test_too_many_unfinished_handshakes_are_closed_and_cris_still_connects(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], max_pending_handshakes=5) as bridge:
        slow = [await anyio.connect_tcp("127.0.0.1", bridge.port) for _ in range(5)]
        for stream in slow:
            await stream.send(b"GET / HTTP/1.1\r\n")  # and never the rest
        await wait_until(lambda: bridge._server is not None and bridge._server._pending == 5,
                         what="five pending handshakes")
        extra = await anyio.connect_tcp("127.0.0.1", bridge.port)
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await extra.receive()  # closed at once
        assert any("server.max_pending_handshakes" in m for m in logs.messages(logging.WARNING))
        for stream in slow:
            await stream.aclose()
        await wait_until(lambda: bridge._server._pending == 0, what="the slow ones to go")
        async with cris(bridge.url) as ws:  # a real CRIS gets in again
            await send_json(ws, GOOD)
            await recorder.wait_for("on_event")


async def test_unknown_command_names_are_escaped_in_logs(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, {"command": "EVIL\n2026-12-04 INFO forged line" + "x" * 200})
        await recorder.wait_for("on_unknown_command")
        [line] = [m for m in logs.messages(logging.WARNING) if "unknown command" in m]
        assert "\n" not in line and "EVIL\\n2026" in line and "..." in line
