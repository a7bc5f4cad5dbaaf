"""The fixtures as an adapter author uses them: `cris_reporting`, `cris_bridge`, `hook_recorder`."""

from __future__ import annotations

import anyio
import attrs
import pytest

from cris_connect import Bridge, Display, hookimpl
from cris_connect.messages import Event, Release
from cris_connect_sdk import CrisBridges, CrisReporting, HookRecorder

pytestmark = pytest.mark.anyio


@attrs.frozen
class EchoSettings:
    prefix: str = ""


class Echo:
    """Answers every EVENT with a DISPLAY of the same accessions (after a pause, being async)."""

    name = "echo"

    def __init__(self) -> None:
        self.bridge: Bridge | None = None
        self.prefix = ""
        self.released: list[tuple[str, ...]] = []

    @hookimpl
    def register_config_class(self) -> type:
        return EchoSettings

    @hookimpl
    def bridge_started(self, bridge: Bridge, config: EchoSettings) -> None:
        self.bridge, self.prefix = bridge, config.prefix

    @hookimpl
    async def on_event(self, message: Event) -> None:
        await anyio.sleep(0.01)
        assert self.bridge is not None
        await self.bridge.send(Display(accession=[self.prefix + a for a in message.accession]))

    @hookimpl
    async def on_release(self, message: Release) -> None:
        await anyio.sleep(0.01)
        self.released.append(message.accession)


@pytest.fixture
def cris_plugins() -> list[object]:
    return [Echo()]


@pytest.fixture
def cris_config() -> str:
    return '[plugins.echo]\nprefix = "X-"\n'


async def test_cris_reporting_is_connected_to_a_bridge_running_the_plugins(
    cris_reporting: CrisReporting, hook_recorder: HookRecorder
) -> None:
    assert cris_reporting.bridge is not None
    assert list(cris_reporting.bridge.runners) == ["echo"]
    assert len(cris_reporting.bridge.sessions) == 1
    await cris_reporting.open_report("RX1")
    await cris_reporting.expect(Display, accession="X-RX1")
    started = await hook_recorder.wait_for("bridge_started", plugin="echo")
    assert started["config"] == EchoSettings(prefix="X-")


async def test_wait_for_returns_once_an_async_hook_has_finished(
    cris_reporting: CrisReporting, hook_recorder: HookRecorder
) -> None:
    echo = cris_reporting.bridge.runners["echo"].plugin  # type: ignore[union-attr]
    await cris_reporting.skip_report("RX1")
    call = await hook_recorder.wait_for("on_release", plugin="echo")
    assert call.finished and call.error is None
    assert echo.released == [("RX1",)]
    assert call["message"].accession == ("RX1",)
    assert hook_recorder.hooks_called("echo") == ["register_config_class", "bridge_started", "on_release"]


async def test_wait_for_says_what_was_called_instead(cris_bridge: CrisBridges,
                                                     hook_recorder: HookRecorder) -> None:
    bridge = await cris_bridge(Echo(), config={"plugins": {"echo": {}}})
    cris = await cris_bridge.connect(bridge)
    await cris.skip_report("RX1")
    with pytest.raises(AssertionError, match=r"on_event was called 0 time\(s\) within 0.1 s, expected 1; "
                                             r"hooks called \(latest last\): .*on_release\(echo\)"):
        await hook_recorder.wait_for("on_event", timeout=0.1)


async def test_one_recorder_sees_several_bridges(cris_bridge: CrisBridges,
                                                 hook_recorder: HookRecorder) -> None:
    first = await cris_bridge(Echo())
    second = await cris_bridge(Echo())
    assert first.port != second.port
    for bridge in (first, second):
        cris = await cris_bridge.connect(bridge)
        await cris.open_report("RX9")
        await cris.expect(Display, accession="RX9")
    await hook_recorder.wait_for("on_event", count=2)


async def test_a_hook_that_raises_is_recorded_with_its_error(cris_bridge: CrisBridges,
                                                             hook_recorder: HookRecorder) -> None:
    class Fails:
        name = "fails"

        @hookimpl
        async def on_event(self) -> None:
            raise LookupError("no such study")

    bridge = await cris_bridge(Fails())
    cris = await cris_bridge.connect(bridge)
    await cris.open_report("RX1")
    call = await hook_recorder.wait_for("on_event")
    assert isinstance(call.error, LookupError)
