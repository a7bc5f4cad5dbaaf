"""A real WebSocket client, as CRIS Reporting is one: websockets' own, for whichever loop runs.

Used by `cris-connect demo` and the SDK's simulator. websockets has an asyncio client and a trio
client with the same interface (`send`, `recv`, `close`); this picks the one for the running
backend so callers stay backend-neutral.
"""

from __future__ import annotations

import ssl
import sys
from typing import Any


def connect(url: str, *, ssl_context: ssl.SSLContext | None = None, origin: str | None = None,
            **kwargs: Any) -> Any:
    """`async with connect(url) as ws:` - websockets' client connection for the current backend.

    :param origin: the Origin header a browser would send (CRIS Reporting's page origin).
    """
    if url.startswith("wss:") and ssl_context is not None:
        kwargs["ssl"] = ssl_context
    if origin is not None:
        kwargs["origin"] = origin
    if running_trio():
        from websockets.trio.client import connect as trio_connect

        return trio_connect(url, **kwargs)
    from websockets.asyncio.client import connect as asyncio_connect

    return asyncio_connect(url, **kwargs)


def running_trio() -> bool:
    """True inside a trio run (anyio has no public call for this, and sniffio is trio's)."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
