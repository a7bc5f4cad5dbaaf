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

from cris_connect.config import ConfigError


class StartupFailed(RuntimeError):
    """A plugin's `bridge_started` raised or hung; the text names the plugin."""


#: A sync hook holding the event loop longer than this delays every plugin and CRIS session.
BLOCKING_THRESHOLD = 0.25  # above scheduling noise on a busy 2-core workstation


@attrs.frozen
class Delivery:
    """One mailbox item: the hooks to call for one thing that happened, with their arguments."""

    hooks: tuple[str, ...]
    kwargs: Mapping[str, Any]
    #: What happened, for log lines: "EVENT from session 3".
    what: str
    #: `time.perf_counter()` when it happened: dispatch latency is measured from here.
    created: float = attrs.field(factory=time.perf_counter, eq=False)


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
        #: Told (plugin name, delivery, seconds since it happened) after each delivery's hooks ran.
        self.on_handled: Callable[[str, Delivery, float], None] | None = None

    def implements(self, hook: str) -> bool:
        return hook in self.callers

    def deliver(self, delivery: Delivery) -> bool:
        """Queue without waiting; False (and a log line) when the mailbox is full or closed."""
        if not any(hook in self.callers for hook in delivery.hooks):
            return True
        try:
            self._send.send_nowait(delivery)  # shared by every runner: `call` skips what it lacks
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
            # Only at shutdown, after bridge_stopping: late news (a lookup finishing) is expected.
            self.log.debug("plugin %s has stopped; %s not delivered to it", self.name, delivery.what)
            return False
        return True

    @property
    def queued(self) -> int:
        return self._send.statistics().current_buffer_used

    def close_mailbox(self) -> None:
        """No more deliveries; the task finishes what is queued, then ends."""
        self._send.close()

    async def run(self, first: Delivery, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Call `first` (bridge_started), report ready, then serve the mailbox until it is closed.

        A plugin whose start-up hook fails would run half-initialised: its error stops the
        bridge's start-up instead (`StartupFailed`, naming the plugin).
        """
        try:
            with self.scope:
                await self.start(first)
                task_status.started()
                async with self._receive:
                    async for delivery in self._receive:
                        await self.call(delivery)
        finally:
            self.finished.set()

    async def start(self, delivery: Delivery) -> None:
        for hook in delivery.hooks:
            caller = self.callers.get(hook)
            if caller is None:
                continue
            try:
                await self._invoke(hook, caller, delivery)
            except ConfigError:
                raise  # already names the key and the fix
            except TimeoutError:
                raise StartupFailed(
                    f"plugin {self.name}: {hook} did not finish within {self.hook_timeout:g} s "
                    "(plugins.hook_timeout)"
                ) from None
            except Exception as exc:
                raise StartupFailed(
                    f"plugin {self.name} failed to start: {type(exc).__name__}: {exc}"
                ) from exc

    async def call(self, delivery: Delivery) -> None:
        called = False
        for hook in delivery.hooks:
            caller = self.callers.get(hook)
            if caller is not None:
                await self._call_one(hook, caller, delivery)
                called = True
        if called:
            self.delivered += 1
            if self.on_handled is not None:
                self.on_handled(self.name, delivery, time.perf_counter() - delivery.created)

    def _blocked(self, hook: str, seconds: float, delivery: Delivery) -> None:
        self.log.warning(
            "plugin %s: async %s blocked the event loop for %.2f s on %s without awaiting; move blocking "
            "work to anyio.to_thread.run_sync",
            self.name, hook, seconds, delivery.what,
        )

    async def _call_one(self, hook: str, caller: pluggy.HookCaller, delivery: Delivery) -> None:
        try:
            await self._invoke(hook, caller, delivery)
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

    async def _invoke(self, hook: str, caller: pluggy.HookCaller, delivery: Delivery) -> None:
        """Call one hook: time its synchronous part, await what it returns within `hook_timeout`."""
        started = time.perf_counter()
        results = caller(**delivery.kwargs)
        blocked = time.perf_counter() - started
        if blocked > BLOCKING_THRESHOLD:
            self.log.warning(
                "plugin %s: %s blocked the event loop for %.2f s on %s; move blocking work "
                "to anyio.to_thread.run_sync",
                self.name, hook, blocked, delivery.what,
            )
        awaitables = [result for result in results if inspect.isawaitable(result)]
        if awaitables:  # a sync hook cannot be cancelled: only async ones get the deadline
            with anyio.fail_after(self.hook_timeout):
                for awaitable in awaitables:
                    await _Timed(awaitable, lambda step: self._blocked(hook, step, delivery))
