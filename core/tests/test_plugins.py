"""Plugins: isolation (raising, sleeping, hanging, blocking), ordering, overflow, config sections,
discovery through entry points, and the built-in `log` plugin."""

from __future__ import annotations

import importlib.metadata
import logging
import time
from pathlib import Path

import anyio
import attrs
import pytest

from core.tests.recorder import Recorder
from core.tests.support import cris, plain_config, send_json, wait_until
from cris_connect import Bridge, Config, ConfigError, Login, hookimpl
from cris_connect import plugins as plugin_loading
from cris_connect.config import PluginsConfig, ServerConfig
from cris_connect.plugins import PluginError

pytestmark = pytest.mark.anyio


def event(n: int) -> dict[str, object]:
    return {"command": "EVENT", "accession": [f"RX{n}"]}


class Raising:
    name = "raising"

    @hookimpl
    def on_event(self, message):
        raise RuntimeError("viewer exploded")


class Sleeping:
    name = "sleeping"

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0

    @hookimpl
    async def on_event(self, message):
        self.started += 1
        await anyio.sleep(10)
        self.finished += 1


class Blocking:
    name = "blocking"

    @hookimpl
    def on_event(self, message):
        time.sleep(0.3)  # a sync hook doing blocking I/O on the event loop


async def test_a_raising_plugin_is_logged_and_others_go_on(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[Raising(), recorder]) as bridge, cris(bridge.url) as ws:
        for n in range(3):
            await send_json(ws, event(n))
        await recorder.wait_for("on_event", 3)
        await wait_until(lambda: bridge.runners["raising"].failures == 3, what="three logged failures")
        errors = logs.messages(logging.ERROR)
        assert any("plugin raising: on_event raised RuntimeError on EVENT from session 1" in e for e in errors)


async def test_a_sleeping_plugin_delays_nobody(start_bridge) -> None:
    sleeping, recorder = Sleeping(), Recorder()
    config = plain_config(plugins=PluginsConfig(enabled=[], drain_timeout=0.1))
    async with start_bridge(plugins=[sleeping, recorder], config=config) as bridge, cris(bridge.url) as ws:
        for n in range(50):
            await send_json(ws, event(n))
        await recorder.wait_for("on_event", 50)
        # All 50 reached the fast plugin while the slow one is still inside its first call.
        assert sleeping.started == 1 and sleeping.finished == 0
        assert bridge.runners["sleeping"].queued == 49


async def test_a_hanging_hook_is_cancelled_after_the_timeout(start_bridge, logs) -> None:
    sleeping, recorder = Sleeping(), Recorder()
    config = plain_config(plugins=PluginsConfig(enabled=[], hook_timeout=0.2))
    async with start_bridge(plugins=[sleeping, recorder], config=config) as bridge, cris(bridge.url) as ws:
        await send_json(ws, event(1))
        await send_json(ws, event(2))
        await wait_until(lambda: sleeping.started == 2, what="the second EVENT to reach the hung plugin")
        assert sleeping.finished == 0
        assert any("plugin sleeping: on_event did not finish within 0.2 s on EVENT from session 1" in m
                   for m in logs.messages(logging.ERROR))


async def test_a_plugin_blocking_the_loop_is_named(start_bridge, logs) -> None:
    async with start_bridge(plugins=[Blocking()]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, event(1))
        await wait_until(lambda: bridge.runners["blocking"].delivered == 1, what="the blocking hook to return")
        assert any("plugin blocking: on_event blocked the event loop for" in m for m in logs.messages()), [m for m in logs.messages() if "block" in m]


async def test_each_plugin_sees_commands_in_arrival_order(start_bridge) -> None:
    first, second = Recorder("first"), Recorder("second")
    async with start_bridge(plugins=[first, second]) as bridge, cris(bridge.url) as ws:
        for n in range(300):
            await send_json(ws, event(n))
        for recorder in (first, second):
            calls = await recorder.wait_for("on_event", 300)
            assert [c["message"].accession[0] for c in calls] == [f"RX{n}" for n in range(300)]


async def test_a_full_mailbox_is_reported_not_silently_dropped(start_bridge, logs) -> None:
    sleeping = Sleeping()
    config = plain_config(plugins=PluginsConfig(enabled=[], mailbox_size=2, drain_timeout=0.1))
    async with start_bridge(plugins=[sleeping], config=config) as bridge, cris(bridge.url) as ws:
        for n in range(6):
            await send_json(ws, event(n))
        await wait_until(lambda: bridge.runners["sleeping"].overflowed == 3, what="3 overflows")
        lines = [m for m in logs.messages(logging.ERROR) if "mailbox full" in m]
        assert "plugin sleeping: mailbox full (2 queued); EVENT from session 1" in lines[0]
        assert lines[-1].endswith("not delivered to it (it has missed 3)")
        assert bridge.health()["plugins"]["sleeping"]["overflowed"] == 3


async def test_shutdown_drains_queued_commands_then_calls_bridge_stopping(start_bridge) -> None:
    class Slowish(Recorder):
        @hookimpl
        async def on_event(self, message, context, session):
            await anyio.sleep(0.01)
            self._record("on_event", message=message, context=context, session=session)

    slowish = Slowish()
    async with start_bridge(plugins=[slowish]) as bridge:
        async with cris(bridge.url) as ws:
            for n in range(20):
                await send_json(ws, event(n))
            await slowish.wait_for("on_command", 20)  # all received (on_command is instant)
    hooks = [hook for hook, _ in slowish.calls]
    assert hooks.count("on_event") == 20
    assert hooks[-1] == "bridge_stopping"


async def test_a_stuck_plugin_does_not_stop_shutdown(logs) -> None:
    sleeping = Sleeping()
    config = attrs.evolve(plain_config(), plugins=PluginsConfig(enabled=[], drain_timeout=0.2))
    async with Bridge(config, plugins=[sleeping]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, event(1))
        await wait_until(lambda: sleeping.started == 1, what="the plugin to start sleeping")
    assert any("plugin sleeping did not finish within 0.2 s" in m for m in logs.messages(logging.WARNING))


# Config sections


def _known_format(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("json", "keyvalue"):
        raise ValueError(f"must be json or keyvalue, got {value!r}")


@attrs.frozen
class FolderConfig:
    outbox: Path
    format: str = attrs.field(default="json", validator=_known_format)


class WithConfig(Recorder):
    @hookimpl
    def register_config_class(self):
        return FolderConfig


def config_with(settings: dict[str, dict[str, object]]) -> Config:
    return Config(server=ServerConfig(plain=True, port=0),
                  plugins=PluginsConfig(enabled=[], settings=settings))


async def test_a_plugin_section_is_structured_into_its_class() -> None:
    plugin = WithConfig("folders")
    async with Bridge(config_with({"folders": {"outbox": "/tmp/out"}}), plugins=[plugin]):
        [started] = plugin.hooks("bridge_started")
        assert started["config"] == FolderConfig(outbox=Path("/tmp/out"))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"outbox": 3}, "plugins.folders.outbox: expected a path as a string, got 3"),
        ({}, "plugins.folders.outbox: required key 'outbox' is missing"),
        ({"outbox": "/x", "fromat": "json"}, "plugins.folders: unknown key fromat (known keys: outbox, format)"),
        # A validator's error gets its key path too, found by the core.
        ({"outbox": "/x", "format": "xml"}, "plugins.folders.format: must be json or keyvalue, got 'xml'"),
    ],
)
async def test_a_bad_plugin_section_stops_start_up_with_the_key_path(section, message) -> None:
    with pytest.raises(ConfigError) as caught:
        async with Bridge(config_with({"folders": section}), plugins=[WithConfig("folders")]):
            pass
    assert message in str(caught.value)


async def test_settings_for_a_plugin_without_config_class_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"plugins.recorder: this plugin takes no settings"):
        async with Bridge(config_with({"recorder": {"x": 1}}), plugins=[Recorder()]):
            pass


async def test_a_section_for_a_plugin_that_is_not_enabled_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"plugins.filedorp: section for a plugin that is not enabled"):
        async with Bridge(config_with({"filedorp": {"x": 1}})):
            pass


# Discovery


async def test_an_uninstalled_plugin_is_named_with_the_installed_ones() -> None:
    config = Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=["nosuch"]))
    with pytest.raises(PluginError) as caught:
        async with Bridge(config):
            pass
    assert "no plugin named 'nosuch' is installed (installed: " in str(caught.value)
    assert "log" in str(caught.value) and "pip install cris-connect-nosuch" in str(caught.value)


async def test_a_plugin_that_fails_to_import_is_named(monkeypatch) -> None:
    broken = importlib.metadata.EntryPoint(name="broken", value="no_such_module_xyz", group="cris_connect")
    monkeypatch.setattr(plugin_loading, "installed", lambda: {"broken": broken})
    config = Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=["broken"]))
    with pytest.raises(PluginError, match=r"plugin 'broken' \(no_such_module_xyz\) failed to import: "
                                          r"ModuleNotFoundError"):
        async with Bridge(config):
            pass


async def test_a_misspelt_hook_is_refused() -> None:
    class Typo:
        name = "typo"

        @hookimpl
        def on_evnt(self, message):
            pass

    with pytest.raises(PluginError, match="on_evnt"):
        async with Bridge(plain_config(), plugins=[Typo()]):
            pass


async def test_the_log_plugin_masks_identifiers_and_never_shows_passwords(logs) -> None:
    config = Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=["log"]))
    async with Bridge(config) as bridge, cris(bridge.url) as ws:
        await send_json(ws, {"command": "EVENT", "accession": ["RX1"], "nhs": "9434765919",
                             "chi": "0101011234", "password": "hunter2"})
        await wait_until(lambda: any("<- EVENT" in m for m in logs.messages()), what="the EVENT log line")
        await bridge.send(Login(username="jsmith", password="hunter2"))
        await wait_until(lambda: any("-> LOGIN" in m for m in logs.messages()), what="the LOGIN log line")
    text = logs.ours()
    assert "EVENT accession=RX1 nhs=*******919 chi=*******234 password=***" in text
    assert "LOGIN username=jsmith password=***" in text
    assert "hunter2" not in text and "9434765919" not in text and "0101011234" not in text


async def test_a_plugin_that_fails_to_start_stops_start_up_with_its_name() -> None:
    from cris_connect.dispatch import StartupFailed

    class NoFolder:
        name = "nofolder"

        @hookimpl
        def bridge_started(self, bridge):
            raise OSError("outbox C:/PACS/in is not writable")

    with pytest.raises(StartupFailed, match="plugin nofolder failed to start: OSError: outbox C:/PACS/in"):
        async with Bridge(plain_config(), plugins=[Recorder(), NoFolder()]):
            pass


async def test_an_entry_point_naming_a_class_gets_an_instance_per_bridge(monkeypatch) -> None:
    entry_point = importlib.metadata.EntryPoint(name="rec", value="core.tests.recorder:Recorder",
                                                group="cris_connect")
    monkeypatch.setattr(plugin_loading, "installed", lambda: {"rec": entry_point})
    config = Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=["rec"]))
    async with Bridge(config) as first, Bridge(config) as second:
        one, two = first.runners["rec"].plugin, second.runners["rec"].plugin
        assert isinstance(one, Recorder) and isinstance(two, Recorder) and one is not two
        assert one.bridge is first and two.bridge is second
