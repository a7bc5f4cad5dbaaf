"""The DevTools client against a real headless Chromium, on asyncio and trio."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import pytest

from cris_connect_ohif import CdpConnection, CdpError, CdpUnavailable, DevTools
from plugins.ohif.tests.helpers import FakeOhif, wait_for
from tests.support.ports import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.services]


async def test_http_endpoint_lists_and_opens_tabs(browser: Any) -> None:
    devtools = DevTools(browser.debug_url)

    version = await devtools.version()
    assert version["Browser"].startswith("Chrome/")
    assert await devtools.browser_websocket_url() == browser.websocket_url

    tab = await devtools.new_tab("about:blank#cdp-test")
    tabs = await devtools.tabs()
    assert tab.id in [t.id for t in tabs]
    assert tab.websocket_url.startswith("ws://127.0.0.1:")


async def test_call_answers_and_errors(browser: Any) -> None:
    async with await CdpConnection.open(browser.websocket_url) as cdp:
        version = await cdp.call("Browser.getVersion")
        assert version["product"].startswith("Chrome/")

        with pytest.raises(CdpError, match=r"No\.such\.method|wasn't found") as caught:
            await cdp.call("No.such.method")
        assert caught.value.method == "No.such.method"

        # The connection is still usable after an error answer.
        assert (await cdp.call("Browser.getVersion"))["product"] == version["product"]


async def test_cancelled_call_leaves_the_connection_usable(browser: Any) -> None:
    async with await CdpConnection.open(browser.websocket_url) as cdp:
        with anyio.move_on_after(0):
            await cdp.call("Browser.getVersion")
        # The late answer to the cancelled call is skipped; this call gets its own.
        assert "product" in await cdp.call("Browser.getVersion")


async def test_target_events_follow_full_and_in_page_navigation(browser: Any, fake_ohif: FakeOhif) -> None:
    """The fact the viewer -> CRIS direction rests on: pushState changes arrive too."""
    devtools = DevTools(browser.debug_url)
    tab = await devtools.new_tab("about:blank")
    async with await CdpConnection.open(browser.websocket_url) as watcher, \
            await CdpConnection.open(tab.websocket_url) as page:
        await watcher.call("Target.setDiscoverTargets", {"discover": True})

        def changed_to(url: str) -> Any:
            def check(params: dict[str, Any]) -> bool:
                info = params["targetInfo"]
                return bool(info["targetId"] == tab.id and info["url"] == url)

            return check

        await page.call("Page.enable")
        full = f"{fake_ohif.base_url}/viewer?StudyInstanceUIDs=1.2.3"
        await page.call("Page.navigate", {"url": full})
        await watcher.wait_event("Target.targetInfoChanged", timeout=10, where=changed_to(full))
        await page.wait_event("Page.loadEventFired", timeout=10)

        push = "history.pushState({}, '', '/viewer?StudyInstanceUIDs=4.5.6')"
        await page.call("Runtime.evaluate", {"expression": push})
        await watcher.wait_event("Target.targetInfoChanged", timeout=10,
                                 where=changed_to(f"{fake_ohif.base_url}/viewer?StudyInstanceUIDs=4.5.6"))


async def test_large_messages_arrive_whole(browser: Any) -> None:
    devtools = DevTools(browser.debug_url)
    tab = await devtools.new_tab("about:blank")
    async with await CdpConnection.open(tab.websocket_url) as page:
        big = "x" * 3_000_000  # over websockets' default 1 MiB limit, and fragmented by Chromium
        result = await page.call("Runtime.evaluate", {"expression": json.dumps(big), "returnByValue": True})
        assert result["result"]["value"] == big
        shot = await page.call("Page.captureScreenshot", {"format": "png"})
        assert base64.b64decode(shot["data"]).startswith(b"\x89PNG")


async def test_closing_the_tab_ends_its_connection(browser: Any) -> None:
    devtools = DevTools(browser.debug_url)
    tab = await devtools.new_tab("about:blank")
    async with await CdpConnection.open(browser.websocket_url) as control, \
            await CdpConnection.open(tab.websocket_url) as page:
        await control.call("Target.closeTarget", {"targetId": tab.id})
        with anyio.fail_after(10), pytest.raises(CdpUnavailable, match="closed"):
            while True:
                await page.next_event()
        with pytest.raises(CdpUnavailable):
            await page.call("Runtime.evaluate", {"expression": "1"})
    await wait_for(lambda: tab.id not in [t["id"] for t in browser.pages()], timeout=10,
                   what="the closed tab to leave /json/list")


async def test_no_browser_is_one_clear_error() -> None:
    port = free_port()
    with pytest.raises(CdpUnavailable, match=rf"no browser answers DevTools at http://127.0.0.1:{port} "
                                             r"\(connection refused\)"):
        await DevTools(f"http://127.0.0.1:{port}").tabs()
    with pytest.raises(CdpUnavailable, match=r"cannot connect to DevTools .* \(connection refused\)"):
        await CdpConnection.open(f"ws://127.0.0.1:{port}/devtools/browser/x")


async def test_something_else_on_the_port_is_named(fake_ohif: FakeOhif) -> None:
    with pytest.raises(CdpUnavailable, match="did not answer JSON; is that a browser's --remote-debugging"):
        await DevTools(fake_ohif.base_url).version()
    with pytest.raises(CdpUnavailable, match="refused the WebSocket"):
        await CdpConnection.open(fake_ohif.base_url.replace("http:", "ws:") + "/devtools/page/x")
