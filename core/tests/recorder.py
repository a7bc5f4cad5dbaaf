"""A test plugin that records every hook call and lets a test wait for one, with a deadline."""

from __future__ import annotations

from typing import Any

import anyio

from cris_connect import hookimpl


class Recorder:
    """Implements every session and command hook; `calls` holds (hook, kwargs) in call order."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.bridge: Any = None
        self._changed = anyio.Event()

    def _record(self, hook: str, **kwargs: Any) -> None:
        self.calls.append((hook, kwargs))
        self._changed.set()
        self._changed = anyio.Event()

    def hooks(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for hook, kwargs in self.calls if hook == name]

    def commands(self) -> list[str]:
        return [kwargs["message"].command for hook, kwargs in self.calls if hook == "on_command"]

    async def wait_for(self, hook: str, count: int = 1, timeout: float = 5) -> list[dict[str, Any]]:
        with anyio.move_on_after(timeout):
            while len(self.hooks(hook)) < count:
                await self._changed.wait()
            return self.hooks(hook)
        raise AssertionError(
            f"{self.name}: expected {count} call(s) of {hook} within {timeout} s; "
            f"got {[h for h, _ in self.calls]}"
        )

    @hookimpl
    def bridge_started(self, bridge: Any, config: Any) -> None:
        self.bridge = bridge
        self._record("bridge_started", bridge=bridge, config=config)

    @hookimpl
    def bridge_stopping(self, bridge: Any) -> None:
        self._record("bridge_stopping", bridge=bridge)

    @hookimpl
    def session_opened(self, session: Any) -> None:
        self._record("session_opened", session=session)

    @hookimpl
    def session_closed(self, session: Any, reason: str) -> None:
        self._record("session_closed", session=session, reason=reason)

    @hookimpl
    def on_command(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_command", message=message, context=context, session=session)

    @hookimpl
    def on_event(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_event", message=message, context=context, session=session)

    @hookimpl
    def on_readonly(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_readonly", message=message, context=context, session=session)

    @hookimpl
    def on_commit(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_commit", message=message, context=context, session=session)

    @hookimpl
    def on_release(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_release", message=message, context=context, session=session)

    @hookimpl
    def on_login(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_login", message=message, context=context, session=session)

    @hookimpl
    def on_logout(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_logout", message=message, context=context, session=session)

    @hookimpl
    def on_unknown_command(self, message: Any, context: Any, session: Any) -> None:
        self._record("on_unknown_command", message=message, context=context, session=session)

    @hookimpl
    def on_refused(self, session: Any, reason: str) -> None:
        self._record("on_refused", session=session, reason=reason)

    @hookimpl
    def on_sent(self, message: Any, sessions: Any) -> None:
        self._record("on_sent", message=message, sessions=sessions)
