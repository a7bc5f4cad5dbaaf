"""The console in a real headless Chromium, over https with a certificate from `cris-connect cert`.

The browser trusts exactly that certificate (`--ignore-certificate-errors-spki-list`), as a ward
PC that trusted the local CA would. The bridge runs in the test's own event loop (both anyio
backends); the browser is driven through the DevTools protocol from worker threads.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json, wait_until
from cris_connect import Bridge, Config, Display, certs, hookimpl
from cris_connect.config import ConsoleConfig, PluginsConfig, ServerConfig
from tests.browser.conftest import OtherOrigin
from tests.browser.page import Page

pytestmark = [pytest.mark.anyio, pytest.mark.services]

NHS = "9434765919"


def tls_config(tls: certs.CertBundle, **console: Any) -> Config:
    return Config(
        server=ServerConfig(port=0, cert=tls.server.cert_path, key=tls.server.key_path,
                            max_messages_per_second=1000.0),
        plugins=PluginsConfig(enabled=[]),
        console=ConsoleConfig(enabled=True, port=0, **console),
    )


def rows(table: str) -> str:
    """JS: the rows of a table as a list of their cells' texts."""
    return (f"Array.from(document.querySelectorAll('#{table} tbody tr'))"
            ".map(row => Array.from(row.cells).map(cell => cell.textContent))")


async def test_console_over_https_shows_plugins_and_updates_when_a_session_connects(
    tls: certs.CertBundle, page: Page
) -> None:
    recorder = Recorder()
    async with Bridge(tls_config(tls), plugins=[recorder]) as bridge:
        assert bridge.console is not None and bridge.console.url.startswith("https://localhost:")
        await page.navigate(bridge.console.url)
        assert await page.evaluate("location.protocol") == "https:"  # no certificate interstitial
        assert await page.evaluate("document.title") == "cris-connect console"
        await page.wait_for("document.getElementById('link').dataset.state === 'ok'", what="live status")
        plugin = await page.wait_for(f"{rows('plugins')}.find(cells => cells[0] === 'recorder')",
                                     what="the recorder plugin's row")
        assert plugin[1] == "ok" and "on_event" in plugin[5]
        assert "(TLS, certificate ok" in await page.text("#tls")
        assert await page.evaluate("document.getElementById('no-sessions').hidden") is False
        assert await page.evaluate("document.getElementById('simulator').hidden") is True  # off

        async with cris(bridge.url, ssl_context=certs.client_ssl_context(tls.ca.cert_path)) as ws:
            await send_json(ws, {"command": "LOGIN"})
            await send_json(ws, {"command": "EVENT", "accession": ["RX1001"], "examCode": "CCHES", "nhs": NHS})
            await recorder.wait_for("on_event")
            session = await page.wait_for(f"{rows('sessions')}.find(cells => cells[4] === 'RX1001')",
                                          what="the new session with its open report")
            assert session[3] == "yes" and session[5] == "CCHES" and session[6] == "*******919"
            assert "(no Origin: not a browser)" in session[2]
            await page.wait_for(f"{rows('commands')}.some(c => c[3] === 'EVENT accession=RX1001 "
                                "examCode=CCHES nhs=*******919')", what="the EVENT in the last commands")
            assert await page.text("#session-count") == "1"
            assert NHS not in await page.evaluate("document.body.innerText")
            await page.screenshot("console-status")
        await page.wait_for(f"{rows('sessions')}.length === 0", what="the session to disappear")


class NextReport:
    """A PACS-side plugin: when the radiologist logs in, it asks CRIS to open the next report."""

    name = "next-report"

    def __init__(self) -> None:
        self.bridge: Any = None

    @hookimpl
    def bridge_started(self, bridge: Any) -> None:
        self.bridge = bridge

    @hookimpl
    async def on_login(self) -> None:
        await self.bridge.send(Display(accession=["RX2002"]))


async def test_simulator_panel_driven_by_clicks(tls: certs.CertBundle, page: Page, logs) -> None:
    recorder = Recorder()
    async with Bridge(tls_config(tls, simulator=True), plugins=[recorder, NextReport()]) as bridge:
        assert bridge.console is not None
        await page.navigate(bridge.console.url)
        await page.wait_for("!document.getElementById('simulator').hidden", what="the simulator panel")
        await page.click("#sim-connect")
        await page.wait_for("document.getElementById('sim-state').dataset.state === 'open'",
                            what="the browser's WebSocket to open")
        [opened] = await recorder.wait_for("session_opened")
        assert opened["session"].origin == f"https://localhost:{bridge.console.port}"

        await page.click("#sim-login")  # the plugin answers with DISPLAY RX2002
        await page.wait_for("Array.from(document.querySelectorAll('#sim-incoming li'))"
                            ".some(li => li.dataset.command === 'DISPLAY' && li.textContent.includes('RX2002'))",
                            what="the plugin's DISPLAY in the incoming panel")
        assert await page.evaluate("document.getElementById('sim-accession').value") == "RX2002"
        assert await page.text("#sim-screen") == "showing report RX2002"

        await page.click("#sim-open")
        await recorder.wait_for("on_event")
        await page.click("#sim-save")
        await recorder.wait_for("on_release")
        assert recorder.commands() == ["LOGIN", "EVENT", "COMMIT", "RELEASE"]
        event, commit, release = (recorder.hooks(hook)[0]["message"] for hook in ("on_event", "on_commit",
                                                                                    "on_release"))
        assert event.accession == commit.accession == release.accession == ("RX2002",)
        assert (event.exam_code, event.nhs) == ("CCHES", NHS)

        await page.fill("#sim-historic", "RX0907")
        await page.click("#sim-historic-open")
        await page.click("#sim-skip")
        await page.click("#sim-logout")
        await recorder.wait_for("on_logout")
        assert recorder.commands()[4:] == ["READONLY", "RELEASE", "LOGOUT"]
        assert recorder.hooks("on_readonly")[0]["context"].read_only

        outgoing = await page.evaluate("Array.from(document.querySelectorAll('#sim-outgoing li'))"
                                       ".map(li => li.dataset.command)")
        assert outgoing == ["LOGIN", "EVENT", "COMMIT", "RELEASE", "READONLY", "RELEASE", "LOGOUT"]
        # The same page's status shows the session and both directions.
        await page.wait_for(f"{rows('commands')}.some(c => c[1] === 'PACS → CRIS' && c[3] === "
                            "'DISPLAY accession=RX2002')", what="the DISPLAY in the last commands")
        await page.wait_for(f"{rows('commands')}.some(c => c[3] === 'LOGOUT')", what="the LOGOUT listed")
        await page.screenshot("console-simulator")

        await page.click("#sim-disconnect")
        await page.wait_for("document.getElementById('sim-state').dataset.state === 'closed'",
                            what="the simulator to disconnect")
        [closed] = await recorder.wait_for("session_closed")
        assert closed["reason"] == "close code 1000"
    assert not any("refused a connection" in m for m in logs.messages())


async def test_a_page_from_another_origin_is_refused(
    tls: certs.CertBundle, page: Page, other_origin: OtherOrigin, logs
) -> None:
    """The cross-origin attack: any site the radiologist visits can try the local WebSocket."""
    recorder = Recorder()
    config = tls_config(tls, simulator=True, send_panel=True)
    async with Bridge(config, plugins=[recorder]) as bridge:
        assert bridge.console is not None
        other_origin.html = f"""<!doctype html><title>elsewhere</title><script>
            window.attack = {{events: [], code: null, sendPanel: null}};
            const ws = new WebSocket("wss://localhost:{bridge.port}/");
            ws.onopen = () => {{ attack.events.push("open"); ws.send('{{"command": "LOGIN"}}'); }};
            ws.onerror = () => attack.events.push("error");
            ws.onclose = (event) => {{ attack.events.push("close"); attack.code = event.code; }};
            // And the console's send panel, blind (no-cors): it must not make CRIS act.
            fetch("{bridge.console.url}api/send", {{method: "POST", mode: "no-cors",
                  body: JSON.stringify({{command: "CLEAR"}})}})
                .then(() => attack.sendPanel = "answered", () => attack.sendPanel = "failed");
        </script>"""
        trusted = certs.client_ssl_context(tls.ca.cert_path)
        async with cris(bridge.url, ssl_context=trusted) as real_cris:
            await recorder.wait_for("session_opened")
            await page.navigate(other_origin.url)
            attack = await page.wait_for("window.attack && window.attack.events.includes('close') "
                                         "&& window.attack.sendPanel && window.attack", what="the attack to end")
            assert "open" not in attack["events"] and "error" in attack["events"]
            assert attack["code"] == 1006  # the handshake failed: the page learns nothing more
            await wait_until(
                lambda: any(f"origin {other_origin.origin} is not allowed; add it to server.allowed_origins" in m
                            for m in logs.messages(logging.WARNING)),
                what="the bridge to log the refused origin",
            )
            await wait_until(lambda: any("console: refused a send" in m and other_origin.origin in m
                                         for m in logs.messages(logging.WARNING)),
                             what="the console to log the refused send")
            assert len(recorder.hooks("session_opened")) == 1  # only the real CRIS
            assert recorder.commands() == []
            await bridge.send(Display(accession=["RX1"]))  # the real CRIS got nothing else before this
            assert await recv_json(real_cris) == {"command": "DISPLAY", "accession": ["RX1"]}

        # The console's own page, same browser, same bridge: allowed.
        await page.navigate(bridge.console.url)
        await page.wait_for("!document.getElementById('simulator').hidden", what="the simulator panel")
        await page.click("#sim-connect")
        await page.wait_for("document.getElementById('sim-state').dataset.state === 'open'",
                            what="the console's own origin to connect")


async def test_send_panel_reaches_cris(tls: certs.CertBundle, page: Page) -> None:
    recorder = Recorder()
    async with Bridge(tls_config(tls, send_panel=True), plugins=[recorder]) as bridge:
        assert bridge.console is not None
        trusted = certs.client_ssl_context(tls.ca.cert_path)
        await page.navigate(bridge.console.url)
        await page.wait_for("!document.getElementById('send-panel').hidden", what="the send panel")
        await page.click("#send-display")
        await page.wait_for("document.getElementById('send-result').dataset.state === 'error'",
                            what="a refusal with nobody connected")
        assert "no CRIS Reporting session is connected" in await page.text("#send-result")
        async with cris(bridge.url, ssl_context=trusted) as ws:
            await recorder.wait_for("session_opened")
            await page.fill("#send-accession", "RX3003, RX3004")
            await page.fill("#send-nhs", NHS)
            await page.click("#send-display")
            assert await recv_json(ws) == {"command": "DISPLAY", "accession": ["RX3003", "RX3004"], "nhs": NHS}
            await page.wait_for("document.getElementById('send-result').dataset.state === 'sent'",
                                what="the page to confirm")
            assert await page.text("#send-result") == "DISPLAY accession=RX3003,RX3004 nhs=*******919 reached 1 session(s)"
            await page.click("#send-clear")
            assert await recv_json(ws) == {"command": "CLEAR"}
            await page.screenshot("console-send-panel")
        [sent, cleared] = await recorder.wait_for("on_sent", 2)
        assert [sent["message"].command, cleared["message"].command] == ["DISPLAY", "CLEAR"]



async def test_the_demo_console_works_over_plain_http(page: Page) -> None:
    """`cris-connect demo`: ws:// and http:// on loopback, console and simulator on."""
    from cris_connect import demo

    recorder = Recorder()
    config = demo.with_console(Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=[])))
    async with Bridge(config, plugins=[recorder]) as bridge:
        assert bridge.console is not None and bridge.console.url.startswith("http://localhost:")
        await page.navigate(bridge.console.url)
        await page.click("#sim-connect")
        await page.wait_for("document.getElementById('sim-state').dataset.state === 'open'",
                            what="the simulator to connect over ws://")
        await page.click("#sim-login")
        await page.click("#sim-open")
        await recorder.wait_for("on_event")
        assert recorder.commands() == ["LOGIN", "EVENT"]
        assert "(plain ws://, no TLS)" in await page.text("#tls")
