"""`HookRecorder`: which hooks the bridge called, with which arguments - and a way to wait for one.

Built on pluggy's hook-call monitoring, as pytest's own `pytester.HookRecorder` is. The bridge calls
each plugin's hooks from that plugin's own task, so a test cannot know *when* a hook runs; it
waits for the call with a deadline instead of sleeping and hoping:

    call = await hook_recorder.wait_for("on_event", plugin="myviewer")
    assert call.kwargs["message"].accession == ("RX123",)

A call is recorded when the bridge makes it; for an `async def` hook that is when it starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs
import pluggy


@attrs.frozen
class HookCall:
    """One call of one hook: its name, its keyword arguments and the plugins it went to."""

    hook: str
    kwargs: Mapping[str, Any] = attrs.field(repr=False)
    plugins: tuple[str, ...]

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

    def _before(self, hook_name: str, hook_impls: Sequence[pluggy.HookImpl],
                kwargs: Mapping[str, Any]) -> None:
        self.calls.append(HookCall(hook_name, dict(kwargs), tuple(impl.plugin_name for impl in hook_impls)))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()

    def _after(self, outcome: Any, hook_name: str, hook_impls: Sequence[pluggy.HookImpl],
               kwargs: Mapping[str, Any]) -> None:
        pass  # for an async hook the outcome is only its coroutine; nothing useful to keep

    def calls_of(self, hook: str, *, plugin: str | None = None,
                 where: Callable[[HookCall], bool] | None = None) -> list[HookCall]:
        """The recorded calls of `hook` (to `plugin`, matching `where`), oldest first."""
        return [
            call for call in self.calls
            if call.hook == hook
            and (plugin is None or plugin in call.plugins)
            and (where is None or where(call))
        ]

    async def wait_for(self, hook: str, *, plugin: str | None = None, count: int = 1,
                       where: Callable[[HookCall], bool] | None = None,
                       timeout: float = 2.0) -> HookCall:  # noqa: ASYNC109 - a deadline per wait reads best
        """Wait until `hook` has been called `count` times (to `plugin`, matching `where`).

        Returns the `count`-th such call; raises `AssertionError` naming what was called instead
        when the deadline passes.
        """
        with anyio.move_on_after(timeout):
            while len(self.calls_of(hook, plugin=plugin, where=where)) < count:
                waiter = anyio.Event()
                self._waiters.append(waiter)
                await waiter.wait()
        matching = self.calls_of(hook, plugin=plugin, where=where)
        if len(matching) < count:
            target = f" to plugin {plugin!r}" if plugin else ""
            seen = ", ".join(f"{c.hook}({', '.join(c.plugins)})" for c in self.calls[-20:]) or "no hooks"
            raise AssertionError(
                f"{hook}{target} was called {len(matching)} time(s) within {timeout:g} s, "
                f"expected {count}; hooks called (latest last): {seen}. A hook is only called for "
                "plugins that implement it - check the name and the @hookimpl marker"
            )
        return matching[count - 1]

    def hooks_called(self, plugin: str | None = None) -> list[str]:
        """Names of the hooks called (to `plugin`), in order, for quick assertions."""
        return [call.hook for call in self.calls if plugin is None or plugin in call.plugins]

    def clear(self) -> None:
        self.calls.clear()
