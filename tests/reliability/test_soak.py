"""Soak: 100 CRIS sessions that disconnect and reconnect at random (seeded) send 20,000 valid
commands; every one reaches every enabled plugin exactly once, in order per session, and the
process's memory at the end is within 10% of its memory after the first 1,000."""

from __future__ import annotations

import gc
import logging
import random
import re
import struct
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.frames import Opcode

from cris_connect import Bridge, hookimpl
from cris_connect.builtin import journal
from cris_connect.config import Config, PluginsConfig, ServerConfig
from tests.reliability import figures
from tests.reliability.peers import CRIS_ORIGIN, frame, open_websocket, read_until_closed, text

pytestmark = pytest.mark.anyio

SLOTS = 100  # CRIS clients, each reconnecting many times
TOTAL = 20_000  # commands, all valid
WINDOW = 20  # commands a client may have in flight before it waits for the plugins to catch up
SEED = 7
COMMANDS = ("EVENT", "READONLY", "COMMIT", "RELEASE")
ACCESSION = re.compile(r"S(\d+)-(\d+)")


class Pacer:
    """Lets a client wait until every counting plugin has seen its commands up to a number."""

    def __init__(self) -> None:
        self.counters: list[Counter] = []
        self.waiting: dict[int, tuple[int, anyio.Event]] = {}
        self.first_thousand = anyio.Event()

    def seen(self, slot: int) -> int:
        return min(counter.next[slot] for counter in self.counters)

    def counted(self, slot: int) -> None:
        waiter = self.waiting.get(slot)
        if waiter is not None and self.seen(slot) >= waiter[0]:
            waiter[1].set()
        if not self.first_thousand.is_set() and min(c.count for c in self.counters) >= 1000:
            self.first_thousand.set()

    async def wait(self, slot: int, upto: int) -> None:
        if self.seen(slot) >= upto:
            return
        event = anyio.Event()
        self.waiting[slot] = (upto, event)
        with anyio.fail_after(30):
            await event.wait()
        del self.waiting[slot]


class Counter:
    """Counts each client's commands and checks they arrive in the order they were sent."""

    def __init__(self, name: str, pacer: Pacer) -> None:
        self.name = name
        self.pacer = pacer
        self.next = [0] * SLOTS
        self.count = 0
        self.out_of_order: list[str] = []
        pacer.counters.append(self)

    def seen(self, accession: str) -> None:
        match = ACCESSION.fullmatch(accession)
        assert match, accession
        slot, number = int(match.group(1)), int(match.group(2))
        if number != self.next[slot] and len(self.out_of_order) < 10:
            self.out_of_order.append(f"client {slot}: got {number}, expected {self.next[slot]}")
        self.next[slot] = number + 1
        self.count += 1
        self.pacer.counted(slot)


class SyncCounter(Counter):
    @hookimpl
    def on_command(self, message: Any) -> None:
        self.seen(message.accession[0])


class AsyncCounter(Counter):
    @hookimpl
    async def on_command(self, message: Any) -> None:
        await anyio.sleep(0)
        self.seen(message.accession[0])


class LogCounter(logging.Handler):
    """The built-in `log` plugin, counted from the lines it logs."""

    def __init__(self, pacer: Pacer) -> None:
        super().__init__(logging.INFO)
        self.counter = Counter("log", pacer)

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if " <- " in line:
            self.counter.seen(line.split("accession=", 1)[1].split()[0])


async def client(port: int, slot: int, quota: int, pacer: Pacer, stats: dict[str, int]) -> None:
    rng = random.Random(SEED * 1000 + slot)
    number = 0
    while number < quota:
        stream = await open_websocket(port, origin=CRIS_ORIGIN)
        stats["connections"] += 1
        for _ in range(rng.randint(1, 4)):  # a few bursts per connection
            burst = min(rng.randint(1, 60), quota - number)
            for start in range(number, number + burst, WINDOW):
                end = min(start + WINDOW, number + burst)
                await stream.send(b"".join(
                    text({"command": COMMANDS[n % 4], "accession": [f"S{slot}-{n}"], "examCode": "CCHES",
                          "nhs": "9434765919"})
                    for n in range(start, end)))
                await pacer.wait(slot, start)  # at most WINDOW ahead of the slowest plugin
            number += burst
            if number >= quota:
                break
        if rng.random() < 0.5:  # a clean close
            await stream.send(frame(Opcode.CLOSE, struct.pack("!H", 1000)))
            stats["closed"] += 1
        else:  # the client just goes (TCP FIN, no close frame)
            await stream.send_eof()
            stats["dropped"] += 1
        await read_until_closed(stream)
        await stream.aclose()


async def test_soak(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    config = Config(
        server=ServerConfig(plain=True, port=0, allowed_origins=(CRIS_ORIGIN,), max_sessions=SLOTS + 10,
                            max_messages_per_second=100_000.0),
        plugins=PluginsConfig(enabled=["log", "journal"], mailbox_size=TOTAL + 1000,
                              settings={"journal": {"path": str(path), "fsync": "never",
                                                    "max_bytes": 100 * 1024 * 1024}}),
    )
    pacer = Pacer()
    counters = [SyncCounter("sync-counter", pacer), AsyncCounter("async-counter", pacer)]
    log_counter = LogCounter(pacer)
    plugin_log = logging.getLogger("cris_connect.log")
    old_level, old_propagate = plugin_log.level, plugin_log.propagate
    plugin_log.addHandler(log_counter)
    plugin_log.setLevel(logging.INFO)
    plugin_log.propagate = False  # pytest keeps every record that reaches the root: 20,000 of them
    stats = {"connections": 0, "closed": 0, "dropped": 0}
    try:
        async with Bridge(config, plugins=counters) as bridge:
            async with anyio.create_task_group() as tg:
                for slot in range(SLOTS):
                    tg.start_soon(client, bridge.port, slot, TOTAL // SLOTS, pacer, stats)
                with anyio.fail_after(60):
                    await pacer.first_thousand.wait()
                gc.collect()
                rss_first = figures.rss_kib()
            with anyio.fail_after(30):
                while bridge.sessions or min(c.count for c in pacer.counters) < TOTAL:
                    await anyio.sleep(0.01)
            gc.collect()
            rss_end = figures.rss_kib()
            overflowed = {name: runner.overflowed for name, runner in bridge.runners.items()}
            failures = {name: runner.failures for name, runner in bridge.runners.items()}
    finally:
        plugin_log.removeHandler(log_counter)
        plugin_log.setLevel(old_level)
        plugin_log.propagate = old_propagate

    for counter in pacer.counters:
        assert counter.out_of_order == [], counter.name
        assert counter.count == TOTAL, counter.name
        assert counter.next == [TOTAL // SLOTS] * SLOTS, counter.name
    assert set(overflowed.values()) == {0} and set(failures.values()) == {0}

    # The journal: each command once, in order per client, plus one line per session opened and closed.
    journal_counter = Counter("journal", Pacer())
    problems: list[journal.Problem] = []
    lines = list(journal.read(path, problems))
    assert problems == []
    for line in lines:
        if line["event"] == "command":
            journal_counter.seen(line["accession"][0])
    assert journal_counter.out_of_order == [] and journal_counter.count == TOTAL
    events = [line["event"] for line in lines]
    assert events.count("session_opened") == events.count("session_closed") == stats["connections"]

    assert stats["connections"] >= 3 * SLOTS  # every client reconnected, at random
    assert rss_end <= rss_first * 1.10, f"RSS grew from {rss_first} KiB to {rss_end} KiB"
    figures.record("soak", clients=SLOTS, connections=stats["connections"], clean_closes=stats["closed"],
                   dropped=stats["dropped"], commands=TOTAL, plugins=len(pacer.counters) + 1,
                   deliveries_counted=sum(c.count for c in pacer.counters) + journal_counter.count,
                   rss_after_first_1000_kib=rss_first, rss_end_kib=rss_end)
