"""The outbox: each CRIS command becomes one file, in arrival order, and none is lost.

A command is named when it arrives (UTC time to the microsecond + a sequence number, so names
sort in arrival order) and queued; one task writes the queue head first. When a write fails
(disk full, folder replaced, permissions changed) the head and everything behind it stay queued
in order and the task retries with backoff, logging once per failure streak. At shutdown, one
last attempt is made and whatever is still queued is reported.
"""

from __future__ import annotations

import collections
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import attrs

from cris_connect_filedrop.atomic import write_new_file

log = logging.getLogger("cris_connect_filedrop.outbox")

#: At shutdown, the longest the last attempt to write what is queued may take.
FINAL_ATTEMPT_TIMEOUT = 2.0


@attrs.frozen
class OutboxFile:
    name: str
    content: bytes = attrs.field(repr=False)
    #: Log-safe (masked identifiers, no password): `EVENT accession=RX1 nhs=*******919`.
    what: str


class OutboxWriter:
    """Writes queued `OutboxFile`s into `folder`, head first, retrying with backoff."""

    def __init__(self, folder: Path, *, extension: str, retry_initial: float, retry_max: float) -> None:
        self.folder = folder
        self.extension = extension
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.pending: collections.deque[OutboxFile] = collections.deque()
        self.written = 0
        self._sequence = 0
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._wake = anyio.Event()
        # The retry task and the shutdown attempt must not both write the queue head.
        self._lock = anyio.Lock()
        self._failing_since: float | None = None

    def next_name(self, command: str, now: datetime | None = None) -> tuple[str, datetime, int]:
        """A file name that sorts after every earlier one, even if the clock steps back."""
        now = now or datetime.now(UTC)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        self._sequence += 1
        name = f"{now:%Y%m%dT%H%M%S.%fZ}-{self._sequence:08d}-{command}{self.extension}"
        return name, now, self._sequence

    def put(self, file: OutboxFile) -> None:
        """Queue a file; never waits, so the plugin's mailbox keeps up with a burst from CRIS."""
        self.pending.append(file)
        self._wake.set()

    async def run(self) -> None:
        """The writer task: until cancelled, write what is queued, retrying after failures."""
        delay = self.retry_initial
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self.pending:
                if await self._write_head():
                    delay = self.retry_initial
                else:
                    await anyio.sleep(delay)
                    delay = min(delay * 2, self.retry_max)

    async def _write_head(self) -> bool:
        """Write the oldest queued file; False when the write failed (it stays queued)."""
        async with self._lock:
            if not self.pending:
                return True
            file = self.pending[0]
            try:
                path = await anyio.to_thread.run_sync(write_new_file, self.folder, file.name, file.content)
            except OSError as exc:
                self._failed(file, exc)
                return False
            self.pending.popleft()
            self.written += 1
            if self._failing_since is not None:
                log.warning("outbox %s is writable again after %.0f s; writing the %d queued command(s)",
                            self.folder, anyio.current_time() - self._failing_since, len(self.pending) + 1)
                self._failing_since = None
            log.debug("outbox: wrote %s (%s)", path.name, file.what)
            return True

    def _failed(self, file: OutboxFile, exc: OSError) -> None:
        if self._failing_since is None:  # once per streak, not once per retry
            self._failing_since = anyio.current_time()
            log.error(
                "outbox %s: cannot write %s (%s); keeping it and every later command queued in "
                "order, retrying every %g..%g s", self.folder, file.name, _reason(exc),
                self.retry_initial, self.retry_max,
            )
        else:
            log.debug("outbox %s: still cannot write %s (%s)", self.folder, file.name, _reason(exc))

    async def close(self) -> list[OutboxFile]:
        """Shutdown: one last attempt to write what is queued; report and return what is left."""
        with anyio.move_on_after(FINAL_ATTEMPT_TIMEOUT):
            while self.pending and await self._write_head():
                pass
        left = list(self.pending)
        if left:
            shown = 20
            log.error(
                "outbox %s: %d command(s) were never written and are lost at shutdown: %s%s",
                self.folder, len(left), "; ".join(f"{f.name} ({f.what})" for f in left[:shown]),
                f"; and {len(left) - shown} more" if len(left) > shown else "",
            )
        return left

    @property
    def failing(self) -> bool:
        return self._failing_since is not None


def _reason(exc: OSError) -> str:
    detail = exc.strerror or str(exc)
    return f"{detail}: {exc.filename}" if exc.filename else detail

