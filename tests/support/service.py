"""One lifecycle protocol for every test service: sync and async context managers.

Services start and stop with blocking calls (subprocesses, threads). Async tests, on asyncio or
trio, use ``async with`` or ``await astop()``: the blocking work runs in a worker thread so the
event loop - and the bridge under test running on it - keeps going meanwhile.
"""

from __future__ import annotations

from typing import Any, TypeVar

import anyio
import anyio.to_thread

S = TypeVar("S", bound="Service")


class Service:
    """Base class: subclasses implement ``start()`` and ``stop()``; ``stop()`` must be idempotent."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()

    async def astart(self) -> None:
        await anyio.to_thread.run_sync(self.start)

    async def astop(self) -> None:
        # Shielded: a cancelled test must still stop its services.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)

    async def arestart(self) -> None:
        await self.astop()
        await self.astart()

    def __enter__(self: S) -> S:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def __aenter__(self: S) -> S:
        await self.astart()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.astop()
