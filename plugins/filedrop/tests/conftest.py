"""Fixtures for the file-drop tests: real folders, a real bridge on a free loopback port, and a
real WebSocket client playing CRIS Reporting (websockets' own client for the running backend).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from cris_connect import Bridge, Config, ServerConfig
from cris_connect.client import connect
from cris_connect.config import LoggingConfig, PluginsConfig
from cris_connect_filedrop import FileDrop

Condition = Callable[[], object]


async def wait_for(condition: Condition, what: str, timeout: float = 15.0) -> Any:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` s."""
    with anyio.move_on_after(timeout):
        while True:
            result = condition()
            if result:
                return result
            await anyio.sleep(0.01)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def files_in(folder: Path) -> list[str]:
    """Names of the regular files a folder-polling reader would look at, sorted."""
    try:
        with os.scandir(folder) as entries:  # scandir: no stat per file, cheap to poll
            return sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "inbox"


def bridge_config(settings: Mapping[str, Any], *, enabled: tuple[str, ...] = (),
                  show_identifiers: bool = False) -> Config:
    return Config(
        # The core refuses more than 100 frames/s from one session (a page flooding the bridge is
        # not CRIS); the burst tests are exactly such a flood, so they lift the limit.
        server=ServerConfig(plain=True, port=0, ping_interval=None, max_messages_per_second=1e6),
        logging=LoggingConfig(show_identifiers=show_identifiers),
        plugins=PluginsConfig(enabled=enabled, settings={"filedrop": dict(settings)}),
    )


@asynccontextmanager
async def running(settings: Mapping[str, Any], *, enabled: tuple[str, ...] = ()
                  ) -> AsyncIterator[tuple[Bridge, FileDrop]]:
    """A bridge with its own FileDrop (plus any entry-point plugins in `enabled`)."""
    plugin = FileDrop()
    async with Bridge(bridge_config(settings, enabled=enabled), plugins=[plugin]) as bridge:
        yield bridge, plugin


class Cris:
    """CRIS Reporting, as far as these tests need it: send commands, receive what the PACS sends."""

    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    async def send(self, command: str, **fields: Any) -> None:
        await self.websocket.send(json.dumps({"command": command, **fields}))

    async def receive(self, timeout: float = 15.0) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return json.loads(await self.websocket.recv())  # type: ignore[no-any-return]


@asynccontextmanager
async def cris_connected(bridge: Bridge) -> AsyncIterator[Cris]:
    async with connect(bridge.url) as websocket:
        # The handshake answer can reach the client just before the bridge lists the session.
        await wait_for(lambda: bridge.sessions, "the bridge to register the CRIS session")
        yield Cris(websocket)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record, DEBUG included, from every logger."""
    caplog.set_level(logging.DEBUG)
    return caplog


# Test files reach the helpers through fixtures: with --import-mode=importlib, test modules
# cannot import conftest.


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(name="files_in")
def files_in_fixture() -> Callable[[Path], list[str]]:
    return files_in


@pytest.fixture(name="run_filedrop")
def run_filedrop_fixture() -> Callable[..., Any]:
    return running


@pytest.fixture(name="connect_cris")
def connect_cris_fixture() -> Callable[[Bridge], Any]:
    return cris_connected
