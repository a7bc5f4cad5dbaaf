"""`HookRecorder`: which hooks the bridge called, with which arguments - and a way to wait for one.

Built on pluggy's hook-call monitoring, as pytest's own `pytester.HookRecorder` is. The bridge calls
each plugin's hooks from that plugin's own task, so a test cannot know *when* a hook runs; it
waits for the call with a deadline instead of sleeping and hoping:

    call = await hook_recorder.wait_for("on_event", plugin="myviewer")
    assert call["message"].accession == ("RX123",)

By default `wait_for` returns once the hook has *finished* - for an `async def` hook, once the
bridge has awaited it - so what the hook did can be checked right away. `finished=False` returns
as soon as the call is made.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs
import pluggy


@attrs.define(eq=False)
class HookCall:
    """One call of one hook: its name, its keyword arguments, the plugins it went to, how it ended."""

    hook: str
    kwargs: Mapping[str, Any] = attrs.field(repr=False)
    plugins: tuple[str, ...]
    #: True once the hook returned (an async hook: once its coroutine was awaited to the end).
    finished: bool = False
    #: What it raised (or `Cancelled`/timeout), if anything.
    error: BaseException | None = None

    def __getitem__(self, argument: str) -> Any:
        """`call["message"]` is the `message` argument."""
        return self.kwargs[argument]


class HookRecorder:
    """Records hook calls of every plugin manager it is attached to (one bridge, or several)."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []
        self._waiters: list[anyio.Event] = []
        self._undo: list[Callable[[], None]] = []

    def attach(self, manager: pluggy.PluginManager) -> None:
        """Start recording the hooks called through `manager` (a bridge's `bridge.manager`)."""
        self._undo.append(manager.add_hookcall_monitoring(self._before, self._after))

    def detach(self) -> None:
        """Stop recording everywhere."""
        while self._undo:
            self._undo.pop()()

    # pluggy's monitoring callbacks

    def _before(self, hook_name: str, hook_impls: Sequence[pluggy.HookImpl],
                kwargs: Mapping[str, Any]) -> None:
        self.calls.append(HookCall(hook_name, dict(kwargs), tuple(impl.plugin_name for impl in hook_impls)))
        self._notify()

    def _after(self, outcome: pluggy.Result[Any], hook_name: str, hook_impls: Sequence[pluggy.HookImpl],
               kwargs: Mapping[str, Any]) -> None:
        call = next(c for c in reversed(self.calls) if c.hook == hook_name and not c.finished)
        if outcome.exception is not None:
            self._finish(call, outcome.exception)
            return
        results = outcome.get_result()
        awaitables = [r for r in results if inspect.isawaitable(r)] if isinstance(results, list) else []
        if not awaitables:
            self._finish(call, None)
            return
        # An async hook has only produced its coroutine: finished is when the bridge has awaited it.
        pending = [len(awaitables)]

        async def watched(awaitable: Awaitable[Any]) -> Any:
            error: BaseException | None = None
            try:
                return await awaitable
            except BaseException as exc:
                error = exc
                raise
            finally:
                pending[0] -= 1
                if pending[0] == 0 or error is not None:
                    self._finish(call, error)

        outcome.force_result([watched(r) if inspect.isawaitable(r) else r for r in results])

    def _finish(self, call: HookCall, error: BaseException | None) -> None:
        if not call.finished:
            call.finished, call.error = True, error
            self._notify()

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()

    # For tests

    def calls_of(self, hook: str, *, plugin: str | None = None,
                 where: Callable[[HookCall], bool] | None = None) -> list[HookCall]:
        """The recorded calls of `hook` (to `plugin`, matching `where`), oldest first."""
        return [
            call for call in self.calls
            if call.hook == hook
            and (plugin is None or plugin in call.plugins)
            and (where is None or where(call))
        ]

    async def wait_for(
        self,
        hook: str,
        *,
        plugin: str | None = None,
        count: int = 1,
        where: Callable[[HookCall], bool] | None = None,
        finished: bool = True,
        timeout: float = 2.0,
    ) -> HookCall:
        """Wait until `hook` has been called `count` times (to `plugin`, matching `where`).

        Returns the `count`-th such call once it has finished (or, with `finished=False`, once it
        was made); raises `AssertionError` naming what was called instead when the deadline passes.
        """

        def ready() -> bool:
            matching = self.calls_of(hook, plugin=plugin, where=where)
            return len(matching) >= count and (not finished or matching[count - 1].finished)

        with anyio.move_on_after(timeout):
            while not ready():
                waiter = anyio.Event()
                self._waiters.append(waiter)
                await waiter.wait()
        matching = self.calls_of(hook, plugin=plugin, where=where)
        target = f" to plugin {plugin!r}" if plugin else ""
        if len(matching) < count:
            seen = ", ".join(f"{c.hook}({', '.join(c.plugins)})" for c in self.calls[-20:]) or "no hooks"
            raise AssertionError(
                f"{hook}{target} was called {len(matching)} time(s) within {timeout:g} s, "
                f"expected {count}; hooks called (latest last): {seen}. A hook is only called for "
                "plugins that implement it - check the name and the @hookimpl marker"
            )
        if finished and not matching[count - 1].finished:
            raise AssertionError(f"{hook}{target} was called but had not finished within {timeout:g} s")
        return matching[count - 1]

    def hooks_called(self, plugin: str | None = None) -> list[str]:
        """Names of the hooks called (to `plugin`), in order, for quick assertions."""
        return [call.hook for call in self.calls if plugin is None or plugin in call.plugins]

    def clear(self) -> None:
        self.calls.clear()
