"""Wait for a condition with a deadline instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

DEFAULT_INTERVAL = 0.02


def wait_until(
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = DEFAULT_INTERVAL
) -> T:
    """Call ``condition`` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def await_until(
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = DEFAULT_INTERVAL
) -> T:
    """Async twin of :func:`wait_until` for async tests (works on asyncio and trio)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await anyio.sleep(interval)
