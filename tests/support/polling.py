"""Wait for a condition with a deadline instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio

T = TypeVar("T")

DEFAULT_INTERVAL = 0.02


def _attempts(condition: Callable[[], T | None], timeout: float, what: str) -> Iterator[T | None]:
    """Call `condition` once per step; the caller sleeps between steps its own way."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        yield result
        if result:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


def wait_until(
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = DEFAULT_INTERVAL
) -> T:
    """Call ``condition`` until it returns something truthy; return that, or raise TimeoutError."""
    for result in _attempts(condition, timeout, what):
        if result:
            return result
        time.sleep(interval)
    raise AssertionError("unreachable")


async def await_until(
    condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = DEFAULT_INTERVAL
) -> T:
    """Async twin of :func:`wait_until` for async tests (works on asyncio and trio)."""
    for result in _attempts(condition, timeout, what):
        if result:
            return result
        await anyio.sleep(interval)
    raise AssertionError("unreachable")
