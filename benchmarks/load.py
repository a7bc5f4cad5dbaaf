"""The load client: CRIS Reporting sessions as a benchmark sees them, in their own process.

    python -m benchmarks.load roundtrip --port 9998 --sessions 50 --duration 1.5 [--server-pid PID]
    python -m benchmarks.load idle --port 9998 --sessions 1000       (then a line on stdin closes them)
    python -m benchmarks.load filedrop --port 9998 --outbox DIR --count 50

Every target (the bridge on either backend, websockets' server, Node's `ws`) gets exactly this
client, so the client's own cost is the same in every figure. It is a raw WebSocket client on
asyncio's `Protocol` with each session's EVENT frame built once: the cheaper the client, the more
of the machine's two cores are left to the server being measured. It answers pings (the bridge and
websockets ping every 20 s) and checks every answer is a DISPLAY for the accession it asked for.

One JSON object per line on stdout is the result; the harness reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

#: What CRIS sends when the radiologist opens a report (NHS number: a valid test number).
EVENT = {"command": "EVENT", "examCode": "CCHES", "nhs": "9434765919"}
DISPLAY_PREFIX = b'{"command":"DISPLAY"'


def raise_open_file_limit() -> None:
    """1,000 sessions need more descriptors than some systems' default soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked, unfragmented client frame (clients must mask; the key need not be secret here)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class Refused(Exception):
    """The server did not answer the opening handshake with 101."""


class CrisSession(asyncio.Protocol):
    """One WebSocket connection; `request(frame)` sends a frame and waits for the next text frame."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        loop = asyncio.get_running_loop()
        self.open: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.waiter: asyncio.Future[bytes] | None = None
        self.buffer = bytearray()
        self.handshaken = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshaken:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                self._fail(Refused(status.decode(errors="replace")))
                return
            self.handshaken = True
            self.open.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(payload)
                else:
                    self._fail(RuntimeError(f"unexpected frame {payload[:60]!r}"))
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(client_frame(payload, opcode=0xA))
            elif opcode == 0x8:
                self._fail(ConnectionError(f"server closed the connection ({payload[:2].hex()})"))
                if self.transport is not None:
                    self.transport.write(client_frame(payload[:2], opcode=0x8))
                    self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost ({exc})"))

    def _fail(self, exc: Exception) -> None:
        for future in (self.open, self.waiter, self.closed):
            if future is not None and not future.done():
                if future is self.closed:
                    future.set_result(None)
                else:
                    future.set_exception(exc)

    def request(self, frame: bytes) -> asyncio.Future[bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(frame)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame((1000).to_bytes(2, "big"), opcode=0x8))
            self.transport.close()


async def connect(host: str, port: int) -> CrisSession:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10):
        _, session = await loop.create_connection(lambda: CrisSession(host, port), host, port)
        await session.open
    return session


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def roundtrip(host: str, port: int, sessions: int, duration: float, warmup: float,
                    server_pid: int | None) -> dict[str, object]:
    """Each session sends an EVENT, waits for the DISPLAY, repeats; measured after `warmup`."""
    connections = await asyncio.gather(*(connect(host, port) for _ in range(sessions)))
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + duration
    cpu: dict[str, float | None] = {}
    loop.call_at(start, lambda: cpu.__setitem__("start", cpu_seconds(server_pid)))
    loop.call_at(end, lambda: cpu.__setitem__("end", cpu_seconds(server_pid)))
    clock = time.perf_counter

    async def run(index: int, session: CrisSession) -> None:
        accession = f"RX{index:06d}"
        frame = client_frame(json.dumps({**EVENT, "accession": [accession]},
                                        separators=(",", ":")).encode())
        first = await session.request(frame)
        answer = json.loads(first)
        if answer.get("command") != "DISPLAY" or answer.get("accession") != [accession]:
            raise RuntimeError(f"expected DISPLAY {accession}, got {first[:100]!r}")
        record = latencies.append
        while True:
            sent = clock()
            now = loop.time()
            if now >= end:
                return
            payload = await session.request(frame)
            elapsed = clock() - sent
            if not payload.startswith(DISPLAY_PREFIX):
                raise RuntimeError(f"expected DISPLAY, got {payload[:100]!r}")
            if now >= start and now + elapsed <= end:
                record(elapsed)

    try:
        # A server that stops answering (a frame refused, a rate limit) fails the run, not hangs it.
        async with asyncio.timeout(warmup + duration + 20):
            await asyncio.gather(*(run(i, s) for i, s in enumerate(connections)))
    finally:
        for session in connections:
            session.close()
    if not latencies:
        raise RuntimeError("no round trip completed inside the measured window")
    server_cpu = None
    if cpu.get("start") is not None and cpu.get("end") is not None:
        server_cpu = cpu["end"] - cpu["start"]  # type: ignore[operator]
    return {
        "sessions": sessions,
        "messages": len(latencies),
        "duration_s": duration,
        "msgs_per_s": len(latencies) / duration,
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
        "mean_us": statistics.fmean(latencies) * 1e6,
        "server_cpu_us_per_msg": server_cpu / len(latencies) * 1e6 if server_cpu is not None else None,
    }


async def idle(host: str, port: int, sessions: int, concurrency: int) -> None:
    """Open `sessions` connections (`concurrency` handshakes in flight), report, hold them idle."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> CrisSession:
        async with slots:
            return await connect(host, port)

    started = time.perf_counter()
    connections = await asyncio.gather(*(one() for _ in range(sessions)))
    elapsed = time.perf_counter() - started
    print(json.dumps({"connected": len(connections), "handshakes_per_s": sessions / elapsed}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    still_open = sum(1 for session in connections if not session.closed.done())
    for session in connections:
        session.close()
    print(json.dumps({"still_open": still_open}), flush=True)


def _finished_files(folder: Path) -> set[str]:
    # Files being written are hidden (`.name.tmp`, `.part`) until renamed: what a viewer would skip.
    return {name for name in os.listdir(folder)
            if not name.startswith(".") and not name.endswith((".tmp", ".part"))}


async def filedrop(host: str, port: int, outbox: Path, count: int) -> dict[str, object]:
    """EVENT -> a new, finished file visible in the file-drop adapter's outbox (polled every 0.2 ms)."""
    session = await connect(host, port)
    assert session.transport is not None
    latencies = []
    try:
        for index in range(count):
            before = _finished_files(outbox)
            frame = client_frame(json.dumps({**EVENT, "accession": [f"FD{index:06d}"]}).encode())
            sent = time.perf_counter()
            session.transport.write(frame)
            deadline = sent + 5.0
            while not (_finished_files(outbox) - before):
                if time.perf_counter() > deadline:
                    raise RuntimeError("no outbox file within 5 s of the EVENT")
                await asyncio.sleep(0.0002)
            latencies.append(time.perf_counter() - sent)
    finally:
        session.close()
    return {"count": count, "p50_us": percentile(latencies, 0.5) * 1e6,
            "p99_us": percentile(latencies, 0.99) * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("roundtrip", "idle", "filedrop"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--outbox", type=Path)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args(argv)
    raise_open_file_limit()
    if args.mode == "roundtrip":
        result = asyncio.run(roundtrip(args.host, args.port, args.sessions, args.duration, args.warmup,
                                       args.server_pid))
        print(json.dumps(result), flush=True)
    elif args.mode == "idle":
        asyncio.run(idle(args.host, args.port, args.sessions, args.concurrency))
    else:
        print(json.dumps(asyncio.run(filedrop(args.host, args.port, args.outbox, args.count))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
