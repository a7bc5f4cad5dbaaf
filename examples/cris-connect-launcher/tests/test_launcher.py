"""The launcher against a real bridge and a simulated CRIS Reporting, with a stand-in viewer."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from cris_connect_launcher import Launcher

from cris_connect import ConfigError
from cris_connect_sdk import CrisBridges, CrisReporting, HookRecorder

pytestmark = pytest.mark.anyio

#: A stand-in viewer: appends its arguments to a file, one line per run.
VIEWER = "import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "viewer-runs.txt"


@pytest.fixture
def cris_plugins() -> list[object]:
    return [Launcher()]


@pytest.fixture
def cris_config(runs: Path) -> dict[str, object]:
    return {"plugins": {"launcher": {
        "open": [sys.executable, "-c", VIEWER, str(runs), "open", "{accession}", "{exam_code}"],
        "close": [sys.executable, "-c", VIEWER, str(runs), "close", "{accession}"],
    }}}


async def test_opening_a_report_runs_the_viewer(cris_reporting: CrisReporting, hook_recorder: HookRecorder,
                                                runs: Path) -> None:
    await cris_reporting.open_report(["RX1", "RX2"], exam_code="CCHES", nhs="9434765919")
    await hook_recorder.wait_for("on_event", plugin="launcher", timeout=10)  # once the viewer has run
    assert runs.read_text() == "open RX1,RX2 CCHES\n"


async def test_historic_reports_and_leaving_them(cris_reporting: CrisReporting, hook_recorder: HookRecorder,
                                                 runs: Path) -> None:
    await cris_reporting.open_historic("RX0")
    await cris_reporting.skip_report("RX0")
    await hook_recorder.wait_for("on_release", plugin="launcher", timeout=10)
    assert runs.read_text() == "open RX0 \nclose RX0\n"


async def test_a_missing_viewer_is_logged_and_the_adapter_goes_on(
    cris_bridge: CrisBridges, hook_recorder: HookRecorder, runs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = await cris_bridge(Launcher(), config={"plugins": {"launcher": {
        "open": ["/nonexistent/myviewer", "{accession}"],
        "close": [sys.executable, "-c", VIEWER, str(runs), "x"],
    }}})
    cris = await cris_bridge.connect(bridge)
    await cris.open_report("RX1")
    await cris.skip_report("RX1")
    await hook_recorder.wait_for("on_release", plugin="launcher", timeout=10)
    assert "the open command /nonexistent/myviewer could not start" in caplog.text
    assert "check [plugins.launcher] open" in caplog.text
    assert runs.read_text() == "x\n"


async def test_a_hanging_viewer_is_stopped_after_the_timeout(
    cris_bridge: CrisBridges, hook_recorder: HookRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bridge = await cris_bridge(Launcher(), config={"plugins": {"launcher": {
        "open": [sys.executable, "-c", "import time; time.sleep(30)"], "timeout": 0.5,
    }}})
    cris = await cris_bridge.connect(bridge)
    await cris.open_report("RX1")
    await hook_recorder.wait_for("on_event", plugin="launcher", timeout=10)
    assert "did not finish within 0.5 s (plugins.launcher.timeout); stopped it" in caplog.text


@pytest.mark.parametrize(("section", "message"), [
    ({"open": []}, r"plugins.launcher.open: must name the viewer's program"),
    ({"open": ["v", "{nhs}"]}, r"plugins.launcher.open: '\{nhs\}' uses an unknown placeholder"),
    ({"timeout": "soon"}, r"plugins.launcher.timeout: expected a number"),
])
async def test_bad_settings_are_refused_before_start_up(cris_bridge: CrisBridges, section: dict[str, object],
                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        await cris_bridge(Launcher(), config={"plugins": {"launcher": section}})
