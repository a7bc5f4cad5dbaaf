"""`cris-connect simulate` against a real PACS-side server (a bridge here; any server would do)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from cris_connect import Bridge, Clear, Display, hookimpl
from cris_connect.messages import Event, Release
from cris_connect_sdk import CrisBridges
from cris_connect_sdk.script import ScriptError, load_script, step_from_words

pytestmark = pytest.mark.anyio


class Responder:
    """A PACS side that answers EVENT with DISPLAY and RELEASE with CLEAR."""

    name = "responder"

    @hookimpl
    def bridge_started(self, bridge: Bridge) -> None:
        self.bridge = bridge

    @hookimpl
    async def on_event(self, message: Event) -> None:
        await self.bridge.send(Display(accession=message.accession))

    @hookimpl
    async def on_release(self, message: Release) -> None:
        await self.bridge.send(Clear())


async def simulate(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "cris_connect", "simulate", "--url", url, *args]
    with anyio.fail_after(60):
        return await anyio.run_process(command, input=stdin.encode() if stdin else b"", check=False)


@pytest.fixture
async def server(cris_bridge: CrisBridges) -> str:
    bridge = await cris_bridge(Responder())
    return bridge.url


SESSION = [
    {"do": "login", "username": "drwho", "password": "tardis-secret"},
    {"do": "open", "accession": "RX123", "exam_code": "CCHES", "nhs": "9434765919"},
    {"expect": "DISPLAY", "accession": ["RX123"]},
    {"send": {"command": "PREFETCH", "accession": ["RX124"]}},
    {"expect_nothing": 0.1},
    {"do": "save", "accession": "RX123"},
    {"expect": "CLEAR"},
    {"do": "logout"},
]


async def test_a_script_that_passes(server: str, tmp_path: Path) -> None:
    script = tmp_path / "session.jsonl"
    script.write_text("# a radiologist's session\n" + "\n".join(json.dumps(step) for step in SESSION) + "\n")
    result = await simulate(server, "--script", str(script))
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "ok      3  expect DISPLAY accession=RX123" in out
    assert "All 8 steps passed." in out
    assert "tardis-secret" not in out + result.stderr.decode()


async def test_a_toml_script_that_fails_says_what_arrived_instead(server: str, tmp_path: Path) -> None:
    script = tmp_path / "session.toml"
    script.write_text(
        '[[step]]\ndo = "open"\naccession = "RX123"\n\n'
        '[[step]]\nexpect = "DISPLAY"\naccession = ["RX999"]\n\n'
        '[[step]]\ndo = "logout"\n'
    )
    result = await simulate(server, "--script", str(script))
    out = result.stdout.decode()
    assert result.returncode == 1, out
    assert "ok      1  open accession=RX123" in out
    assert "FAIL    2  expect DISPLAY accession=RX999   (session.toml step 2)" in out
    assert ("session.toml step 2: expected DISPLAY accession=RX999, but received DISPLAY "
            "accession=RX123") in out
    assert "1 of 3 steps passed." in out


async def test_a_broken_script_is_refused_with_its_line(server: str, tmp_path: Path) -> None:
    script = tmp_path / "session.jsonl"
    script.write_text('{"do": "login"}\n{"do": "open", "acession": "RX1"}\n')
    result = await simulate(server, "--script", str(script))
    assert result.returncode == 2
    assert "session.jsonl line 2: do = 'open' needs an accession" in result.stderr.decode()


async def test_an_unreachable_server(tmp_path: Path) -> None:
    result = await simulate("ws://127.0.0.1:9/", "--script", str(tmp_path / "none.jsonl"))
    assert result.returncode == 2
    assert "cannot be read" in result.stderr.decode()
    script = tmp_path / "ok.jsonl"
    script.write_text('{"do": "login"}\n')
    result = await simulate("ws://127.0.0.1:9/", "--script", str(script))
    assert result.returncode == 2
    assert "could not connect to ws://127.0.0.1:9/" in result.stderr.decode()


async def test_the_interactive_console(server: str) -> None:
    typed = "help\nlogin drwho tardis-secret\nopen RX123 CCHES 9434765919\nexpect DISPLAY RX123\n" \
            "expect CLEAR\nfrobnicate\nskip RX123\nexpect CLEAR\nquit\n"
    result = await simulate(server, stdin=typed)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "open ACCESSION[,ACC...] [EXAM] [NHS] [CHI]" in out  # help
    assert "PACS -> CRIS  DISPLAY accession=RX123" in out
    assert "expected CLEAR within 2 s, but nothing arrived" in out
    assert "unknown action 'frobnicate'; `help` lists them" in out
    assert "PACS -> CRIS  CLEAR" in out
    assert "tardis-secret" not in out


async def test_the_console_stops_when_the_server_hangs_up(cris_bridge: CrisBridges) -> None:
    bridge = await cris_bridge(Responder())
    command = [sys.executable, "-m", "cris_connect", "simulate", "--url", bridge.url]
    with anyio.fail_after(60):
        async with await anyio.open_process(command) as process:  # stdin stays open: an idle console
            assert process.stdout is not None
            seen = b""
            while b"Connected to" not in seen:
                seen += await process.stdout.receive()
            await bridge.aclose()
            async for chunk in process.stdout:
                seen += chunk
            assert await process.wait() == 1
    assert "The PACS side closed the connection (code 1001)." in seen.decode()


def test_console_words_become_steps() -> None:
    step = step_from_words("open RX1,RX2 CCHES 9434765919")
    assert (step.kind, step.value) == ("do", "open")
    assert step.fields == {"accession": ["RX1", "RX2"], "exam_code": "CCHES", "nhs": "9434765919"}
    assert step_from_words("expect display RX1").fields == {"accession": ["RX1"]}
    with pytest.raises(ScriptError, match="save takes at most: ACCESSION"):
        step_from_words("save RX1 RX2")


def test_script_errors_name_the_step(tmp_path: Path) -> None:
    script = tmp_path / "s.toml"
    script.write_text('[[step]]\nexpect = "SHOW"\n')
    with pytest.raises(ScriptError, match=r"s.toml step 1: expect = 'SHOW'; use one of DISPLAY, CLEAR"):
        load_script(script)
    script.write_text('[[step]]\ndo = "login"\nexpect = "CLEAR"\n')
    with pytest.raises(ScriptError, match="exactly one of do, expect, expect_nothing, send"):
        load_script(script)
