"""A `Session` is one connected CRIS Reporting client and what it has told us (its `Context`)."""

from __future__ import annotations

import time

import attrs

from cris_connect.connection import Connection
from cris_connect.context import Context


@attrs.define
class RateLimit:
    """A token bucket: `rate` frames per second on average, bursts of up to `rate` frames."""

    rate: float
    tokens: float = attrs.field(init=False)
    updated: float | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.tokens = self.rate

    def allow(self, now: float) -> bool:
        if self.updated is not None:
            self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@attrs.define(eq=False)
class Session:
    """One CRIS Reporting client. Read `context` at any time; it is replaced, never mutated."""

    id: int
    #: `host:port` of the client, for logs.
    peer: str
    #: The browser's Origin header, or None for a non-browser client.
    origin: str | None
    connection: Connection = attrs.field(repr=False)
    #: TLS, or loopback: what may carry a password (LOGIN to CRIS).
    secure: bool = True
    rate: RateLimit = attrs.field(factory=lambda: RateLimit(100.0), repr=False)
    context: Context = Context()
    opened_at: float = attrs.field(factory=time.time, repr=False)
    #: anyio clock time of the last frame from this client (for the idle timeout).
    last_received: float = attrs.field(default=0.0, repr=False)

    @property
    def is_open(self) -> bool:
        return not self.connection.closed.is_set()

    def __str__(self) -> str:
        return f"session {self.id} ({self.peer})"
