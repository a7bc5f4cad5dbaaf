"""The conformance kit catches broken adapters, each with a message that says what to fix.

The adapters below are installed the way a real one is - an entry point in group `cris_connect`,
here from a hand-made .dist-info directory - and the kit runs in a separate pytest, as it would in
the adapter's own CI (on asyncio and trio).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ADAPTERS = '''
import logging
import time

from cris_connect import hookimpl
from cris_connect.masking import describe

log = logging.getLogger("adapters")


class RaisesOnRelease:
    @hookimpl
    def on_release(self, message):
        raise ValueError("the viewer window is gone")


class BlocksTheLoop:
    @hookimpl
    def on_event(self, message):
        time.sleep(0.6)  # a blocking HTTP call, say


class LogsThePassword:
    @hookimpl
    def on_login(self, message):
        log.info("LOGIN %s/%s", message.username, message.password)


class Good:
    @hookimpl
    def on_command(self, message):
        log.info("%s", describe(message))


raises, blocks, leaks, good = RaisesOnRelease(), BlocksTheLoop(), LogsThePassword(), Good()
'''

ENTRY_POINTS = """
[cris_connect]
raises = adapters:raises
blocks = adapters:blocks
leaks = adapters:leaks
good = adapters:good
"""

TESTS = '''
from cris_connect_sdk.conformance import AdapterConformance

class TestRaises(AdapterConformance):
    plugin_name = "raises"

class TestBlocks(AdapterConformance):
    plugin_name = "blocks"

class TestLeaks(AdapterConformance):
    plugin_name = "leaks"

class TestGood(AdapterConformance):
    plugin_name = "good"
'''


@pytest.fixture(scope="module")
def installed_adapters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adapters")
    (root / "adapters.py").write_text(ADAPTERS)
    dist_info = root / "broken_adapters-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-adapters\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def run_pytest(directory: Path, adapters: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(adapters)}
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rf", "--tb=short", *args],
        cwd=directory, env=env, capture_output=True, text=True, timeout=240,
    )


def failed_tests(output: str) -> set[str]:
    return set(re.findall(r"^FAILED \S+::(\w+::\w+)\[\w+\]", output, flags=re.MULTILINE))


def test_the_kit_names_what_each_broken_adapter_does_wrong(
    installed_adapters: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_adapters.py").write_text(textwrap.dedent(TESTS))
    result = run_pytest(tmp_path, installed_adapters, "test_adapters.py")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert failed_tests(output) == {
        "TestRaises::test_every_command_reaches_it_without_an_exception",
        "TestBlocks::test_does_not_block_another_plugin",
        "TestLeaks::test_never_logs_a_password",
    }, output
    # 4 adapters x (1 sync check + 6 async checks x 2 backends) = 52; each broken one fails once per backend.
    assert re.search(r"\b6 failed, 46 passed\b", output), output
    assert "raises's hooks failed 2 time(s) during an ordinary CRIS session" in output
    assert "on_release raised ValueError on RELEASE from session 1" in output
    assert "(ValueError: the viewer window is gone)" in output
    assert "A hook must handle its own errors" in output
    assert re.search(r"blocks made another plugin wait \d+\.\d\d s for a CRIS command", output)
    assert "move blocking work (HTTP calls, file I/O, time.sleep) to anyio.to_thread.run_sync" in output
    assert "leaks wrote the password from a LOGIN to the logs or the console" in output
    assert "E     INFO adapters: LOGIN conformance/<password>" in output  # the failure hides it too


def test_the_kit_from_the_command_line(installed_adapters: Path, tmp_path: Path) -> None:
    result = run_pytest(tmp_path, installed_adapters, "--cris-conformance", "good",
                        "-k", "config or entry_point")
    assert result.returncode == 0, result.stdout + result.stderr
    # entry point (sync) + example config and broken config on 2 backends
    assert re.search(r"\b5 passed\b", result.stdout), result.stdout

    missing = run_pytest(tmp_path, installed_adapters, "--cris-conformance", "nosuch", "-k", "entry_point")
    assert missing.returncode == 1
    assert "no entry point 'nosuch' in group 'cris_connect'" in missing.stdout
    assert "[project.entry-points.cris_connect]" in missing.stdout
