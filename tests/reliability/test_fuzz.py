"""Fuzz: hypothesis drives random JSON and random frames at a live bridge over real sockets. The
bridge never dies, never hits an internal error, and every refusal is logged with its reason.

The bridge runs in its own thread (an anyio blocking portal, on asyncio and on trio) so hypothesis
can drive it from ordinary blocking sockets. Examples are derandomized so CI runs the same ones
every time; set FUZZ_EXAMPLES to run more locally.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.tests.support import LogCapture, plain_config
from cris_connect import Bridge, hookimpl
from tests.reliability import figures
from tests.reliability.peers import CRIS_ORIGIN, raw_frame, upgrade_request

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
MASK = b"\x11\x22\x33\x44"


class Tally:
    """What the bridge did with each client's frames, by peer address (thread-safe: hooks run in
    the bridge's thread, the test waits in its own)."""

    name = "tally"

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.commands: dict[str, int] = defaultdict(int)
        self.refused: dict[str, list[str]] = defaultdict(list)
        self.closed: dict[str, str] = {}

    @hookimpl
    def on_command(self, session: Any) -> None:
        with self.changed:
            self.commands[session.peer] += 1

    @hookimpl
    def on_refused(self, session: Any, reason: str) -> None:
        with self.changed:
            self.refused[session.peer].append(reason)

    @hookimpl
    def session_closed(self, session: Any, reason: str) -> None:
        with self.changed:
            self.closed[session.peer] = reason
            self.changed.notify_all()

    def wait_closed(self, peer: str) -> tuple[str, int, list[str]]:
        """How the session from `peer` ended, its commands delivered and its frames refused.

        The entries are removed: the operating system reuses ports, so a later client may have
        the same peer name."""
        with self.changed:
            assert self.changed.wait_for(lambda: peer in self.closed, timeout=10), f"{peer} never closed"
            return self.closed.pop(peer), self.commands.pop(peer, 0), self.refused.pop(peer, [])


@contextlib.contextmanager
def live_bridge(backend: str) -> Iterator[tuple[Bridge, Tally, LogCapture]]:
    tally = Tally()
    capture = LogCapture()
    ours = logging.getLogger("cris_connect")
    old_level = ours.level
    ours.addHandler(capture)
    ours.setLevel(logging.DEBUG)
    try:
        with start_blocking_portal(backend) as portal:
            config = plain_config(allowed_origins=(CRIS_ORIGIN,), max_message_size=4096, handshake_timeout=5.0)
            bridge = portal.call(lambda: Bridge(config, plugins=[tally]))
            with portal.wrap_async_context_manager(bridge):
                yield bridge, tally, capture
    finally:
        ours.removeHandler(capture)
        ours.setLevel(old_level)


def websocket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(upgrade_request(port, origin=CRIS_ORIGIN))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the bridge closed the connection during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    return sock


def exchange(port: int, data: bytes) -> str:
    """Send `data` after the handshake, then a close frame, then FIN; return the client's peer name."""
    sock = websocket(port)
    peer = f"127.0.0.1:{sock.getsockname()[1]}"
    try:
        with contextlib.suppress(OSError):  # the bridge may have closed already: that is an answer
            sock.sendall(data + raw_frame(0x8, b"\x03\xe8", mask=MASK))
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass
    finally:
        sock.close()
    return peer


def messages_since(capture: LogCapture, start: int) -> list[str]:
    return [record.getMessage() for record in capture.records[start:]]


def no_internal_errors(capture: LogCapture) -> None:
    errors = [r.getMessage() for r in capture.records
              if r.levelno >= logging.ERROR or "internal error" in r.getMessage()]
    assert errors == []


def check_alive(port: int) -> None:
    sock = websocket(port)
    sock.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
commands = st.sampled_from(["EVENT", "READONLY", "COMMIT", "RELEASE", "LOGIN", "LOGOUT", "event", " Event ",
                            "DISPLAY", "CLEAR", ""]) | st.text(max_size=10) | json_values
messages = st.fixed_dictionaries({}, optional={
    "command": commands,
    "accession": st.lists(st.text(max_size=12), max_size=3) | json_values,
    "examCode": st.text(max_size=8) | json_values,
    "nhs": st.from_regex(r"\d{10}", fullmatch=True) | json_values,
    "chi": st.from_regex(r"\d{10}", fullmatch=True) | json_values,
    "password": st.text(max_size=12) | json_values,
    "extra": json_values,
})
json_frames = st.one_of(
    messages.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=300),  # mostly not JSON at all
    st.integers(min_value=1, max_value=200).map(lambda depth: "[" * depth + "]" * depth),
    st.just("[" * 2000),  # nested past the JSON decoder's recursion limit, within max_message_size
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_random_json_is_delivered_or_refused_with_a_reason(backend: str) -> None:
    runs = 0
    with live_bridge(backend) as (bridge, tally, capture):

        @FUZZ
        @given(frames=st.lists(json_frames, min_size=1, max_size=8))
        def one_client(frames: list[str]) -> None:
            nonlocal runs
            runs += 1
            data = b"".join(raw_frame(0x1, text.encode(), mask=MASK) for text in frames)
            start = len(capture.records)
            peer = exchange(bridge.port, data)
            reason, delivered, refused = tally.wait_closed(peer)
            # Nothing dropped silently: each frame reached the plugins or was refused, with a reason.
            assert delivered + len(refused) == len(frames), (frames, delivered, refused, reason)
            assert all(refused)
            logged = [m for m in messages_since(capture, start) if f"({peer}): frame refused: " in m]
            assert len(logged) == len(refused)
            assert reason == "close code 1000"

        one_client()
        no_internal_errors(capture)
        check_alive(bridge.port)
    figures.record("fuzz_json", backend=backend, examples=runs)


frame_specs = st.lists(
    st.tuples(
        st.sampled_from([0x0, 0x1, 0x1, 0x1, 0x2, 0x8, 0x9, 0xA]) | st.integers(0, 15),  # and reserved ones
        st.booleans(),  # FIN
        st.sampled_from([0, 0, 0, 1, 2, 4]),  # RSV bits (no extension was negotiated)
        st.binary(max_size=150),
        st.sampled_from([MASK, MASK, MASK, None]),  # a client must mask
        st.sampled_from([None, None, None, 0, 5, 126, 70_000, 1 << 40]),  # a length that lies
    ),
    min_size=1, max_size=5,
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_random_frames_never_take_the_bridge_down(backend: str) -> None:
    runs = 0
    outcomes: dict[str, int] = defaultdict(int)
    with live_bridge(backend) as (bridge, tally, capture):

        @FUZZ
        @given(specs=frame_specs)
        def one_client(specs: list[tuple[int, bool, int, bytes, bytes | None, int | None]]) -> None:
            nonlocal runs
            runs += 1
            data = b"".join(raw_frame(opcode, payload, fin=fin, rsv=rsv, mask=mask, length=length)
                            for opcode, fin, rsv, payload, mask, length in specs)
            start = len(capture.records)
            peer = exchange(bridge.port, data)
            reason, _, refused = tally.wait_closed(peer)
            outcomes[reason.split(" (")[0] if "closed by the bridge" not in reason else reason[:40]] += 1
            assert reason  # how it ended is always said...
            lines = [m for m in messages_since(capture, start) if f"({peer}) disconnected ({reason})" in m]
            assert lines, f"no log line for {peer}: {reason}"  # ...and logged
            if reason.startswith("closed by the bridge (10"):
                code_and_reason = reason.removeprefix("closed by the bridge (")
                assert len(code_and_reason) > len("1002)"), reason  # a code and the protocol error, not just a code
            logged = [m for m in messages_since(capture, start) if f"({peer}): frame refused: " in m]
            assert len(logged) == len(refused) and all(refused)

        one_client()
        no_internal_errors(capture)
        check_alive(bridge.port)
    figures.record("fuzz_frames", backend=backend, examples=runs, outcomes=dict(outcomes))
