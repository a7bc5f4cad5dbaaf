"""The pytest plugin (entry point `pytest11`): fixtures for testing an adapter against a real bridge.

- `cris_bridge`: starts real bridges in-process on a free port, `await cris_bridge(MyAdapter())`,
  and stops them cleanly after the test.
- `cris_reporting`: a CRIS Reporting simulator connected to a bridge running `cris_plugins` with
  `cris_config` (override those two fixtures in your conftest.py); the bridge is
  `cris_reporting.bridge`.
- `hook_recorder`: every hook call the bridges made, and `await hook_recorder.wait_for(...)`.
- `pytest --cris-conformance NAME [--cris-conformance-config FILE]` runs the conformance kit
  against the installed adapter NAME, with the `[plugins.NAME]` section of FILE.
- `anyio_backend`: asyncio and trio, so every `@pytest.mark.anyio` test runs on both, as the
  bridge runs on both. A conftest.py fixture of the same name takes precedence.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cris_connect_sdk.bridges import ConfigLike, CrisBridges
from cris_connect_sdk.recorder import HookRecorder
from cris_connect_sdk.simulator import CrisReporting


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cris-connect", "cris-connect adapter conformance")
    group.addoption("--cris-conformance", metavar="NAME",
                    help="run the adapter conformance kit against the installed adapter NAME")
    group.addoption("--cris-conformance-config", metavar="FILE", type=Path,
                    help="a TOML config file whose [plugins.NAME] section is the adapter's example")


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--cris-conformance")
    if not name:
        return
    from cris_connect_sdk import conformance_suite

    suite = conformance_suite.TestAdapterConformance
    suite.plugin_name = name
    suite.example_config = config.getoption("--cris-conformance-config")
    config.args.append(str(Path(conformance_suite.__file__)))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hook_recorder() -> Iterator[HookRecorder]:
    """Records the hook calls of every bridge `cris_bridge` starts in this test."""
    recorder = HookRecorder()
    yield recorder
    recorder.detach()


@pytest.fixture
async def cris_bridge(anyio_backend: str, hook_recorder: HookRecorder) -> AsyncIterator[CrisBridges]:
    """`bridge = await cris_bridge(plugin, ..., config=..., enabled=[...], settings={...})`."""
    async with contextlib.AsyncExitStack() as stack:
        yield CrisBridges(stack, hook_recorder)


@pytest.fixture
def cris_plugins() -> list[object]:
    """The plugin objects `cris_reporting`'s bridge runs; override it to return your adapter."""
    return []


@pytest.fixture
def cris_config() -> ConfigLike:
    """`cris_reporting`'s bridge config (TOML text or a mapping); override it for your settings."""
    return None


@pytest.fixture
async def cris_reporting(cris_bridge: CrisBridges, cris_plugins: list[Any],
                         cris_config: ConfigLike) -> CrisReporting:
    """A CRIS Reporting simulator connected to a fresh bridge (`cris_reporting.bridge`)."""
    bridge = await cris_bridge.start(*cris_plugins, config=cris_config)
    return await cris_bridge.connect(bridge)
