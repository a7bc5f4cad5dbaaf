"""An async face for one browser tab, for tests that run the bridge in the same event loop.

tests/support's DevTools client is blocking; every call here runs it in a worker thread so the
bridge under test keeps serving while the test waits for the browser. Clicks are real mouse
events at the element's centre (`Input.dispatchMouseEvent`), so the page sees trusted clicks, as
a radiologist's would be; conditions are polled with a deadline, never slept on.
"""

from __future__ import annotations

import base64
import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from tests.support.cdp import CdpSession, evaluate, navigate
from tests.support.chromium import Chromium
from tests.support.screenshots import artifact_path


class Page:
    def __init__(self, session: CdpSession) -> None:
        self.session = session

    @classmethod
    async def first_tab(cls, chromium: Chromium) -> Page:
        pages = await anyio.to_thread.run_sync(chromium.pages)
        target = pages[0] if pages else await anyio.to_thread.run_sync(chromium.new_page)
        session = await anyio.to_thread.run_sync(partial(CdpSession, target["webSocketDebuggerUrl"], timeout=20))
        return cls(session)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.session.close)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(partial(self.session.call, method, params))

    async def navigate(self, url: str) -> None:
        await anyio.to_thread.run_sync(partial(navigate, self.session, url, timeout=30))

    async def evaluate(self, expression: str) -> Any:
        return await anyio.to_thread.run_sync(evaluate, self.session, expression)

    async def wait_for(self, expression: str, *, what: str, timeout: float = 15) -> Any:
        """Evaluate until truthy; return the value. On timeout, say what and show the page's text."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                text = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; the page shows:\n{text}")
            await anyio.sleep(0.05)

    async def text(self, selector: str) -> str:
        return str(await self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent"))

    async def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = await self.wait_for(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el || el.disabled) return null;
                el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                return r.width && r.height ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}} : null;
            }})()""",
            what=f"{selector} to be clickable",
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent",
                            {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})

    async def fill(self, selector: str, value: str) -> None:
        """Replace an input's text as typing would (focus, select all, insert)."""
        await self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                            " el.focus(); el.select(); })()")
        await self.call("Input.insertText", {"text": value})

    async def screenshot(self, name: str) -> Path:
        """The whole page as a PNG in test-artifacts/."""
        result = await self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path = artifact_path(name)
        path.write_bytes(base64.b64decode(result["data"]))
        return path
