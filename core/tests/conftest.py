"""Fixtures for the core's tests: a real bridge on a free loopback port, captured logs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from core.tests.support import LogCapture, plain_config
from cris_connect import Bridge, Config


@pytest.fixture
def start_bridge() -> Callable[..., contextlib.AbstractAsyncContextManager[Bridge]]:
    """`async with start_bridge(plugins=[...], **server_options) as bridge:`."""

    @contextlib.asynccontextmanager
    async def start(plugins: list[object] | None = None, config: Config | None = None,
                    **server: Any) -> AsyncIterator[Bridge]:
        async with Bridge(config or plain_config(**server), plugins=plugins or []) as bridge:
            yield bridge

    return start


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(old_level)
