"""Fixtures for the core's tests: a real bridge on a free loopback port, captured logs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from core.tests.support import logs, plain_config  # noqa: F401 - logs is a fixture
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
