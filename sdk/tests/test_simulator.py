"""The simulator against a real bridge, on asyncio and trio: what it sends, records and expects."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cris_connect import Clear, Display, Login, Logout, hookimpl
from cris_connect.certs import create_certificates
from cris_connect.messages import CrisCommand
from cris_connect_sdk import CrisBridges, CrisReporting, ExpectationFailed, SimulatorError

pytestmark = pytest.mark.anyio


class Seen:
    """A plugin that keeps every command CRIS sent, as the bridge decoded it."""

    name = "seen"

    def __init__(self) -> None:
        self.commands: list[CrisCommand] = []

    @hookimpl
    def on_command(self, message: CrisCommand) -> None:
        self.commands.append(message)


async def test_actions_send_what_the_specification_says(cris_bridge: CrisBridges, hook_recorder) -> None:
    seen = Seen()
    bridge = await cris_bridge(seen)
    cris = await cris_bridge.connect(bridge)

    await cris.login()
    await cris.open_report("RX1", exam_code="CCHES", nhs="9434765919")
    await cris.select_exam(["RX1"], exam_code="CCHES", chi="0101011234")
    await cris.open_historic("RX0", exam_code="XCHES")
    await cris.save_report("RX1")
    await cris.skip_report(["RX2", "RX3"])
    await cris.logout()
    await hook_recorder.wait_for("on_command", count=8)

    assert [json.loads(frame) for frame in cris.sent] == [
        {"command": "LOGIN"},
        {"command": "EVENT", "accession": ["RX1"], "examCode": "CCHES", "nhs": "9434765919"},
        {"command": "EVENT", "accession": ["RX1"], "examCode": "CCHES", "chi": "0101011234"},
        {"command": "READONLY", "accession": ["RX0"], "examCode": "XCHES"},
        {"command": "COMMIT", "accession": ["RX1"]},
        {"command": "RELEASE", "accession": ["RX1"]},
        {"command": "RELEASE", "accession": ["RX2", "RX3"]},
        {"command": "LOGOUT"},
    ]
    assert [m.command for m in seen.commands] == [
        "LOGIN", "EVENT", "EVENT", "READONLY", "COMMIT", "RELEASE", "RELEASE", "LOGOUT"
    ]


async def test_expect_returns_what_the_pacs_side_sent(cris_bridge: CrisBridges) -> None:
    bridge = await cris_bridge()
    cris = await cris_bridge.connect(bridge)

    await bridge.send(Display(accession=["RX1"]))
    await bridge.send(Clear())
    display = await cris.expect(Display, accession="RX1")
    assert display.accession == ("RX1",)
    assert isinstance(await cris.expect(), Clear)
    await cris.expect_nothing(for_=0.05)
    assert [m.command for m in cris.received] == ["DISPLAY", "CLEAR"]


async def test_expect_says_what_arrived_instead(cris_bridge: CrisBridges) -> None:
    bridge = await cris_bridge()
    cris = await cris_bridge.connect(bridge)

    await bridge.send(Clear())
    with pytest.raises(ExpectationFailed, match=r"expected DISPLAY, but received CLEAR"):
        await cris.expect(Display)
    await bridge.send(Display(accession=["RX2"]))
    with pytest.raises(ExpectationFailed, match=r"expected DISPLAY accession=RX1, but received DISPLAY "
                                                r"accession=RX2"):
        await cris.expect(Display, accession="RX1")
    with pytest.raises(ExpectationFailed, match=r"expected LOGOUT within 0.05 s, but nothing arrived "
                                                r"\(received so far: CLEAR; DISPLAY accession=RX2\)"):
        await cris.expect(Logout, timeout=0.05)
    await bridge.send(Logout())
    with pytest.raises(ExpectationFailed, match="expected nothing for 1 s, but received LOGOUT"):
        await cris.expect_nothing(for_=1)


async def test_expect_reports_a_closed_connection(cris_bridge: CrisBridges) -> None:
    bridge = await cris_bridge()
    cris = await cris_bridge.connect(bridge)
    await bridge.aclose()
    with pytest.raises(ExpectationFailed, match=r"the connection closed \(code 1001\) before it arrived"):
        await cris.expect(Display, timeout=5)


async def test_password_is_never_logged(cris_bridge: CrisBridges, hook_recorder,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bridge = await cris_bridge()
    cris = await cris_bridge.connect(bridge)
    await cris.login(username="drwho", password="tardis-secret")
    await cris.send_text('{"command":"LOGIN","password":"raw-secret"}')
    await bridge.send(Login(username="drwho", password="pacs-secret"))
    login = await cris.expect(Login)
    assert login.password == "pacs-secret"
    with pytest.raises(ExpectationFailed) as failure:
        await cris.expect(Display, timeout=0.01)
    for secret in ("tardis-secret", "raw-secret", "pacs-secret"):
        assert secret not in caplog.text
        assert secret not in str(failure.value)
    assert "PACS -> CRIS LOGIN username=drwho password=***" in caplog.text


async def test_unreadable_frames_are_recorded_with_the_reason(cris_bridge: CrisBridges) -> None:
    bridge = await cris_bridge()
    cris = await cris_bridge.connect(bridge)
    await bridge.sessions[0].connection.send_text('{"command": 12}')
    with pytest.raises(ExpectationFailed, match=r"received an unreadable frame \(field 'command'"):
        await cris.expect(Display)


async def test_wss_with_a_ca_file_and_an_origin(cris_bridge: CrisBridges, tmp_path: Path) -> None:
    bundle = create_certificates(tmp_path)
    bridge = await cris_bridge(config={"server": {
        "plain": False, "cert": str(bundle.server.cert_path), "key": str(bundle.server.key_path),
        "allowed_origins": ["https://cris.example.nhs.uk"],
    }})
    assert bridge.url.startswith("wss://localhost:")
    cris = await cris_bridge.connect(bridge, ca=bundle.ca.cert_path, origin="https://cris.example.nhs.uk")
    assert bridge.sessions[0].origin == "https://cris.example.nhs.uk"
    await bridge.send(Clear())
    await cris.expect(Clear)


async def test_connect_failures_say_what_to_do(cris_bridge: CrisBridges, tmp_path: Path) -> None:
    bridge = await cris_bridge(config={"server": {"allowed_origins": ["https://cris.example.nhs.uk"]}})
    with pytest.raises(SimulatorError, match=r"HTTP 403 \(is the origin in server.allowed_origins\?"):
        async with CrisReporting(bridge.url, origin="https://evil.example"):
            pass
    port = bridge.port
    await bridge.aclose()
    with pytest.raises(SimulatorError, match="is the PACS-side server running"):
        async with CrisReporting(f"ws://127.0.0.1:{port}/"):
            pass


async def test_the_shared_secret_for_a_client_without_origin(cris_bridge: CrisBridges,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bridge = await cris_bridge(config={"server": {"shared_secret": "s3cret-header"}})
    with pytest.raises(SimulatorError, match="does the server want its shared secret"):
        async with CrisReporting(bridge.url):
            pass
    async with CrisReporting(bridge.url, secret="s3cret-header") as cris:
        await cris.login()
    assert "s3cret-header" not in caplog.text
