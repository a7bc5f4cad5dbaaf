"""Helpers for the core's tests: config, real websockets clients, waiting with a deadline, logs."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest

from cris_connect import Bridge, Config, ServerConfig
from cris_connect.client import connect
from cris_connect.config import PluginsConfig
from tests.support.polling import await_until


def plain_config(**server: Any) -> Config:
    plugins = server.pop("plugins", PluginsConfig(enabled=[]))
    # Functional tests send bursts far beyond what CRIS sends; the limit has its own test.
    defaults = {"plain": True, "port": 0, "max_messages_per_second": 100_000.0}
    return Config(server=ServerConfig(**{**defaults, **server}), plugins=plugins)


def cris(url: str, **kwargs: Any) -> Any:
    """A real websockets client connected like CRIS Reporting."""
    return connect(url, **kwargs)


async def send_json(ws: Any, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def recv_json(ws: Any, timeout: float = 5) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def wait_until(condition: Callable[[], bool], timeout: float = 5, what: str = "condition") -> None:
    """Poll a condition with a deadline; the failure (an assertion) says what was awaited."""
    try:
        await await_until(condition, timeout=timeout, what=what, interval=0.005)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


class LogCapture(logging.Handler):
    """Collects log lines from every logger, for asserting on reasons (and on what never appears)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)

    def ours(self) -> str:
        """What the bridge logged (the tests' own websockets client logs frames at DEBUG)."""
        return "\n".join(r.getMessage() for r in self.records if r.name.startswith("cris_connect"))

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Every log record of the test, from every logger, at DEBUG."""
    capture = LogCapture()
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(old_level)


@pytest.fixture
def start_bridge() -> Callable[..., contextlib.AbstractAsyncContextManager[Bridge]]:
    """`async with start_bridge(plugins=[...], **server_options) as bridge:`."""

    @contextlib.asynccontextmanager
    async def start(plugins: list[object] | None = None, config: Config | None = None,
                    **server: Any) -> AsyncIterator[Bridge]:
        async with Bridge(config or plain_config(**server), plugins=plugins or []) as bridge:
            yield bridge

    return start
