"""Each plugin's mailbox and task: the isolation the bridge promises to adapters.

A plugin's hooks run one at a time in its own task, fed from a bounded, ordered mailbox, so a
plugin sees commands in arrival order and a slow, hanging or failing plugin delays nobody else.
Putting into a mailbox never waits: when one is full the overflow is logged and counted.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

import anyio
import anyio.abc
import attrs
import pluggy

#: A sync hook holding the event loop longer than this delays every plugin and CRIS session.
BLOCKING_THRESHOLD = 0.1


@attrs.frozen
class Delivery:
    """One mailbox item: the hooks to call for one thing that happened, with their arguments."""

    hooks: tuple[str, ...]
    kwargs: Mapping[str, Any]
    #: What happened, for log lines: "EVENT from session 3".
    what: str


class _Timed:
    """Awaits an awaitable step by step, timing each step: the stretch between two suspensions
    runs on the event loop, so a long one is an async hook blocking everything else.

    Works on asyncio and trio alike: whatever the awaitable yields to the loop is passed through.
    """

    def __init__(self, awaitable: Awaitable[Any], on_blocked: Callable[[float], None]) -> None:
        self.awaitable = awaitable
        self.on_blocked = on_blocked

    def __await__(self) -> Generator[Any, Any, Any]:
        steps = self.awaitable.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                yielded = steps.throw(error) if error is not None else steps.send(value)
            except StopIteration as done:
                self._measure(started)
                return done.value
            except BaseException:
                self._measure(started)
                raise
            self._measure(started)
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # cancellation and other exceptions thrown by the loop
                value, error = None, exc

    def _measure(self, started: float) -> None:
        step = time.perf_counter() - started
        if step > BLOCKING_THRESHOLD:
            self.on_blocked(step)


class PluginRunner:
    """Calls one plugin's hooks, in order, from its own task."""

    def __init__(
        self,
        name: str,
        plugin: object,
        callers: Mapping[str, pluggy.HookCaller],
        *,
        hook_timeout: float,
        mailbox_size: int,
    ) -> None:
        self.name = name
        self.plugin = plugin
        self.callers = callers
        self.hook_timeout = hook_timeout
        self.log = logging.getLogger(f"cris_connect.plugins.{name}")
        self._send, self._receive = anyio.create_memory_object_stream[Delivery](mailbox_size)
        self.delivered = 0
        self.overflowed = 0
        self.failures = 0
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()

    def implements(self, hook: str) -> bool:
        return hook in self.callers

    def deliver(self, delivery: Delivery) -> bool:
        """Queue without waiting; False (and a log line) when the mailbox is full or closed."""
        hooks = tuple(hook for hook in delivery.hooks if hook in self.callers)
        if not hooks:
            return True
        try:
            self._send.send_nowait(attrs.evolve(delivery, hooks=hooks))
        except anyio.WouldBlock:
            self.overflowed += 1
            self.log.error(
                "plugin %s: mailbox full (%d queued); %s not delivered to it (it has missed %d)",
                self.name,
                self._send.statistics().current_buffer_used,
                delivery.what,
                self.overflowed,
            )
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.log.warning("plugin %s is stopping; %s not delivered to it", self.name, delivery.what)
            return False
        return True

    @property
    def queued(self) -> int:
        return self._send.statistics().current_buffer_used

    def close_mailbox(self) -> None:
        """No more deliveries; the task finishes what is queued, then ends."""
        self._send.close()

    async def run(self, first: Delivery, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Call `first` (bridge_started), report ready, then serve the mailbox until it is closed."""
        try:
            with self.scope:
                await self.call(first)
                task_status.started()
                async with self._receive:
                    async for delivery in self._receive:
                        await self.call(delivery)
        finally:
            self.finished.set()

    async def call(self, delivery: Delivery) -> None:
        called = False
        for hook in delivery.hooks:
            caller = self.callers.get(hook)
            if caller is not None:
                await self._call_one(hook, caller, delivery)
                called = True
        if called:
            self.delivered += 1

    def _blocked(self, hook: str, seconds: float, delivery: Delivery) -> None:
        self.log.warning(
            "plugin %s: async %s blocked the event loop for %.2f s on %s without awaiting; move blocking "
            "work to anyio.to_thread.run_sync",
            self.name, hook, seconds, delivery.what,
        )

    async def _call_one(self, hook: str, caller: pluggy.HookCaller, delivery: Delivery) -> None:
        try:
            with anyio.fail_after(self.hook_timeout):
                started = time.perf_counter()
                results = caller(**delivery.kwargs)
                blocked = time.perf_counter() - started
                if blocked > BLOCKING_THRESHOLD:
                    self.log.warning(
                        "plugin %s: %s blocked the event loop for %.2f s on %s; move blocking work "
                        "to anyio.to_thread.run_sync",
                        self.name, hook, blocked, delivery.what,
                    )
                for result in results:
                    if inspect.isawaitable(result):
                        await _Timed(result, lambda step: self._blocked(hook, step, delivery))
        except TimeoutError:
            self.failures += 1
            self.log.error(
                "plugin %s: %s did not finish within %g s on %s; cancelled (plugins.hook_timeout)",
                self.name, hook, self.hook_timeout, delivery.what,
            )
        except Exception as exc:
            self.failures += 1
            self.log.error(
                "plugin %s: %s raised %s on %s",
                self.name, hook, type(exc).__name__, delivery.what, exc_info=exc,
            )
