"""What went through the bridge lately: the last commands both ways, counters, dispatch latency.

The bridge tells `Activity` about every command received, refused and sent. Entries hold a log-safe
summary (`masking.describe`, identifiers always masked, passwords never) rather than the message,
so the console cannot show more than a log line would. `seq` grows on every change, and
`wait_changed` lets the console's status endpoint answer as soon as something happens.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Literal

import anyio
import attrs

from cris_connect.masking import describe, mask_identifier

Direction = Literal["in", "out", "refused"]

#: Seconds; from the bridge receiving a command to a plugin having handled it.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@attrs.frozen
class Entry:
    """One command in the console's list."""

    seq: int
    #: Wall-clock time (`time.time()`).
    at: float
    direction: Direction
    command: str
    #: `EVENT accession=RX1 examCode=CT nhs=*******919`; for a refused frame, why it was refused.
    summary: str
    sessions: tuple[int, ...]


@attrs.define
class Histogram:
    """Cumulative-bucket histogram, as Prometheus wants it, without needing prometheus-client."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = attrs.field(init=False)
    total: float = 0.0
    count: int = 0

    def __attrs_post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """`[("0.001", n), ..., ("+Inf", count)]`."""
        running, result = 0, []
        for bound, count in zip(self.buckets, self.counts, strict=True):
            running += count
            result.append((repr(bound), running))
        result.append(("+Inf", self.count))
        return result


# Digits long enough to be an NHS/CHI number, in a refusal reason that quotes the bad value.
_LONG_NUMBER = re.compile(r"\d{7,}")


def mask_numbers(text: str) -> str:
    return _LONG_NUMBER.sub(lambda match: mask_identifier(match.group()), text)


class Activity:
    """The last `size` commands both ways, and counters since start."""

    def __init__(self, size: int = 50) -> None:
        self.entries: deque[Entry] = deque(maxlen=size)
        #: (direction, command) -> count
        self.counts: Counter[tuple[str, str]] = Counter()
        #: plugin name -> latency of the commands it handled
        self.latency: dict[str, Histogram] = {}
        self.seq = 0
        self._changed = anyio.Event()

    # Told by the bridge

    def received(self, session_id: int, message: object) -> None:
        self._add("in", message, (session_id,))

    def sent(self, message: object, session_ids: Iterable[int]) -> None:
        self._add("out", message, tuple(session_ids))

    def refused(self, session_id: int, reason: str) -> None:
        self._add("refused", None, (session_id,), summary=mask_numbers(reason))

    def handled(self, plugin: str, seconds: float, *, command: bool) -> None:
        """A plugin finished with something; only commands from CRIS count towards latency."""
        if command:
            self.latency.setdefault(plugin, Histogram()).observe(seconds)
        self.changed()

    def changed(self) -> None:
        """Something the console shows changed (a session came or went, a plugin's counters)."""
        self.seq += 1
        event, self._changed = self._changed, anyio.Event()
        event.set()

    # Read by the console

    async def wait_changed(self, after: int, timeout: float) -> None:
        """Return once `seq` is beyond `after`, or after `timeout` seconds."""
        with anyio.move_on_after(timeout):
            while self.seq <= after:
                await self._changed.wait()

    def _add(self, direction: Direction, message: object, sessions: tuple[int, ...],
             summary: str | None = None) -> None:
        command = str(getattr(message, "command", "")) if message is not None else "(refused)"
        self.counts[(direction, command)] += 1
        self.changed()
        self.entries.append(Entry(
            seq=self.seq, at=time.time(), direction=direction, command=command,
            # Always masked: the console is a screen on a ward, whatever the logs are allowed.
            summary=summary if summary is not None else describe(message),
            sessions=sessions,
        ))
