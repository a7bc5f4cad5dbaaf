"""Starting real bridges in a test: a free loopback port, plain ws://, only the plugins you name.

`CrisBridges` is what the `cris_bridge` fixture gives a test; it can also be used without pytest:

    async with contextlib.AsyncExitStack() as stack:
        bridges = CrisBridges(stack)
        bridge = await bridges.start(MyAdapter(), config={"plugins": {"myviewer": {...}}})
        cris = await bridges.connect(bridge)
"""

from __future__ import annotations

import contextlib
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import anyio

from cris_connect import Bridge, Config
from cris_connect import config as config_module
from cris_connect_sdk.recorder import HookRecorder
from cris_connect_sdk.simulator import CrisReporting

#: What a test may give as config: a Config, a mapping shaped like the TOML file, or TOML text.
ConfigLike: TypeAlias = Config | Mapping[str, Any] | str | None


def test_config(config: ConfigLike = None, *, enabled: tuple[str, ...] | list[str] = (),
                settings: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """A config for a bridge under test: plain ws:// on 127.0.0.1, a free port, no `log` plugin.

    `config` may override any of it (TOML text or a mapping of the same shape); `enabled` names
    entry-point plugins to load and `settings` gives their `[plugins.<name>]` sections.
    """
    if isinstance(config, Config):
        return config
    data: dict[str, Any] = dict(tomllib.loads(config) if isinstance(config, str) else (config or {}))
    server = {"host": "127.0.0.1", "port": 0, "plain": True, **data.get("server", {})}
    plugins = {"enabled": list(enabled), **data.get("plugins", {})}
    for name, section in (settings or {}).items():
        plugins[name] = dict(section)
    return config_module.from_mapping({**data, "server": server, "plugins": plugins})


test_config.__test__ = False  # type: ignore[attr-defined]  # pytest: a helper, not a test


async def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `condition` until true, or fail with `what` after `timeout` s.

    For state that offers nothing to await (the bridge's session table); events are better when
    there is one.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        await anyio.sleep(0.005)


class CrisBridges:
    """Starts bridges and simulators that are all stopped when `stack` closes."""

    def __init__(self, stack: contextlib.AsyncExitStack, recorder: HookRecorder | None = None) -> None:
        self._stack = stack
        self.recorder = recorder
        self.started: list[Bridge] = []

    async def start(self, *plugins: object, config: ConfigLike = None,
                    enabled: tuple[str, ...] | list[str] = (),
                    settings: Mapping[str, Mapping[str, Any]] | None = None) -> Bridge:
        """Start a real bridge with these plugin objects (and entry-point plugins in `enabled`)."""
        bridge = Bridge(test_config(config, enabled=enabled, settings=settings), plugins=plugins)
        if self.recorder is not None:
            self.recorder.attach(bridge.manager)  # before start-up, to see bridge_started too
        await self._stack.enter_async_context(bridge)
        self.started.append(bridge)
        return bridge

    __call__ = start

    async def connect(self, bridge: Bridge, *, origin: str | None = None, ca: str | Path | None = None,
                      timeout: float = 5.0) -> CrisReporting:
        """A simulator connected to `bridge`, returned once the bridge has its session.

        Waiting for the session means `bridge.send(...)` right after reaches this client.
        """
        before = {session.id for session in bridge.sessions}
        cris = CrisReporting(bridge.url, origin=origin, ca=ca)
        await self._stack.enter_async_context(cris)
        cris.bridge = bridge
        await wait_until(lambda: any(s.id not in before for s in bridge.sessions), timeout=timeout,
                         what="the bridge did not register the simulator's session")
        return cris
