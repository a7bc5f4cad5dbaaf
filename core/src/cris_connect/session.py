"""A `Session` is one connected CRIS Reporting client and what it has told us (its `Context`)."""

from __future__ import annotations

import time

import attrs

from cris_connect.connection import Connection
from cris_connect.context import Context


@attrs.define(eq=False)
class Session:
    """One CRIS Reporting client. Read `context` at any time; it is replaced, never mutated."""

    id: int
    #: `host:port` of the client, for logs.
    peer: str
    #: The browser's Origin header, or None for a non-browser client.
    origin: str | None
    connection: Connection = attrs.field(repr=False)
    context: Context = Context()
    opened_at: float = attrs.field(factory=time.time, repr=False)

    @property
    def is_open(self) -> bool:
        return not self.connection.closed.is_set()

    def __str__(self) -> str:
        return f"session {self.id} ({self.peer})"
