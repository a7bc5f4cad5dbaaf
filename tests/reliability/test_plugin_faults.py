"""Plugin faults: an adapter that fails to import, raises, hangs or blocks the event loop is named
in the log, and the bridge, the CRIS session and every other plugin go on."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json, wait_until
from cris_connect import Bridge, Display, hookimpl
from cris_connect.config import Config, PluginsConfig, ServerConfig
from cris_connect.plugins import PluginError

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[2]


def broken_distribution(folder: Path, error: str) -> None:
    """An installed adapter (a real entry point, found by importlib.metadata) that fails to import."""
    (folder / "broken_adapter.py").write_text(f"{error}\n")
    info = folder / "cris_connect_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cris-connect-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cris_connect]\nbroken = broken_adapter\n")


async def test_an_adapter_that_fails_to_import_is_named(tmp_path: Path, monkeypatch) -> None:
    broken_distribution(tmp_path, "import pydicom_nonexistent_dependency")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=["log", "broken"]))
    with pytest.raises(PluginError) as refused:
        async with Bridge(config):
            pass
    assert str(refused.value).startswith(
        "plugin 'broken' (broken_adapter) failed to import: ModuleNotFoundError: "
        "No module named 'pydicom_nonexistent_dependency'")


def test_serve_with_a_broken_adapter_says_which_in_one_line(tmp_path: Path) -> None:
    broken_distribution(tmp_path, "raise RuntimeError('licence file missing')")
    config = tmp_path / "site.toml"
    config.write_text('[server]\nplain = true\nport = 0\n[plugins]\nenabled = ["broken"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "cris_connect", "serve", "--config", str(config)], capture_output=True,
        text=True, timeout=60, cwd=ROOT, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == ("cris-connect: plugin 'broken' (broken_adapter) failed to import: "
                                     "RuntimeError: licence file missing")


class Faulty:
    """One fault per command: raise on EVENT, hang on READONLY, block the loop on COMMIT."""

    name = "faulty"

    @hookimpl
    async def on_event(self, message):
        raise ValueError("adapter bug")

    @hookimpl
    async def on_readonly(self, message):
        await anyio.sleep_forever()

    @hookimpl
    def on_commit(self, message):
        time.sleep(1)  # a sync hook holding the loop

    @hookimpl
    async def on_release(self, message):
        time.sleep(1)  # an async hook that blocks without awaiting
        await anyio.sleep(0)


async def test_raising_hanging_and_blocking_plugins_are_named_and_isolated(start_bridge, logs) -> None:
    recorder = Recorder()
    config = Config(server=ServerConfig(plain=True, port=0),
                    plugins=PluginsConfig(enabled=[], hook_timeout=2.0))
    async with start_bridge(plugins=[Faulty(), recorder], config=config) as bridge, cris(bridge.url) as ws:
        for n, command in enumerate(("EVENT", "READONLY", "COMMIT", "RELEASE")):
            await send_json(ws, {"command": command, "accession": [f"RX{n}"]})
            await recorder.wait_for("on_command", n + 1)  # the other plugin is never held up
            # and CRIS is still served: a round trip after every fault
            await bridge.send(Display(accession=[f"RX{n}"]))
            assert (await recv_json(ws))["accession"] == [f"RX{n}"]
        expected = [
            "plugin faulty: on_event raised ValueError on EVENT from session 1 (",
            "plugin faulty: on_readonly did not finish within 2 s on READONLY from session 1 (",
            "plugin faulty: on_commit blocked the event loop for 1.0",
            "plugin faulty: async on_release blocked the event loop for 1.0",
        ]
        for line in expected:
            await wait_until(lambda line=line: any(line in m for m in logs.messages(logging.WARNING)),
                             timeout=10, what=line)
        assert bridge.runners["faulty"].failures == 2  # raised, hung; blocking is reported, not a failure
        assert recorder.commands() == ["EVENT", "READONLY", "COMMIT", "RELEASE"]


class Patient:
    """An async hook that takes long but awaits: not blocking, nothing to report."""

    name = "patient"

    @hookimpl
    async def on_event(self, message):
        for _ in range(5):
            await anyio.sleep(0.05)


async def test_an_async_hook_that_awaits_is_not_reported_as_blocking(start_bridge, logs) -> None:
    patient = Patient()
    recorder = Recorder()
    async with start_bridge(plugins=[patient, recorder]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, {"command": "EVENT", "accession": ["RX1"]})
        await send_json(ws, {"command": "RELEASE", "accession": ["RX1"]})
        await recorder.wait_for("on_release")
        await wait_until(lambda: bridge.runners["patient"].delivered == 1, what="the patient hook to finish")
    assert not [m for m in logs.messages(logging.WARNING) if "blocked the event loop" in m]
