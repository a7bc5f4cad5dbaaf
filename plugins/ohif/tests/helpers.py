"""Helpers for the OHIF adapter's tests (test files cannot import conftest under importlib mode).

- `FakeOhif`: a tiny single-page site that stands in for OHIF in the fast tests: every path answers
  the same page (as OHIF's SPA fallback does) and `/dicom-web/studies` answers QIDO from a table the
  test fills. The end-to-end tests use the real OHIF, nginx and Orthanc instead.
- `running_bridge(settings)`: a real bridge on a free port with the `ohif` adapter; `cris_client`:
  a real WebSocket client playing CRIS Reporting that records every command the bridge sends it.
- `Page`: a test's own DevTools connection to a tab, to look at it and act as the radiologist.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx

from cris_connect import Bridge, Config, ServerConfig, client, codec
from cris_connect.config import PluginsConfig
from cris_connect.messages import PacsCommand, UnknownCommand
from cris_connect_ohif import CdpConnection, Navigation, OhifAdapter, OhifPlugin
from tests.support.polling import wait_until

# A stand-in for OHIF and its archive


@dataclass
class FakeOhif:
    """What the fake site serves and what it was asked."""

    base_url: str = ""
    #: accession -> StudyInstanceUIDs, answered by `/dicom-web/studies`.
    studies: dict[str, list[str]] = field(default_factory=dict)
    #: When set, `/dicom-web/...` answers this HTTP status instead (archive trouble).
    dicomweb_status: int | None = None
    queries: list[dict[str, list[str]]] = field(default_factory=list)

    def add(self, accession: str, *uids: str) -> None:
        self.studies[accession] = list(uids)

    def reset(self) -> None:
        self.studies.clear()
        self.dicomweb_status = None
        self.queries.clear()


PAGE = b"""<!doctype html><html><head><title>Fake OHIF</title></head>
<body><h1>Fake OHIF</h1><div id=where></div>
<script>
// As OHIF does for a StudyInstanceUID its data source lacks (the test UIDs 9.9.9.*).
if (location.search.includes('StudyInstanceUIDs=9.9.9')) history.replaceState({}, '', '/notfoundstudy');
document.getElementById('where').textContent = location.pathname + location.search;
</script>
</body></html>"""


def _dataset(accession: str, uid: str) -> dict[str, Any]:
    return {"00080050": {"vr": "SH", "Value": [accession]}, "0020000D": {"vr": "UI", "Value": [uid]}}


def handler(site: FakeOhif) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith("/dicom-web/"):
                self._dicomweb(parts.path, parse_qs(parts.query))
                return
            if parts.path == "/favicon.ico":
                self._answer(404, b"", "text/plain")
                return
            self._answer(200, PAGE, "text/html")

        def _dicomweb(self, path: str, query: dict[str, list[str]]) -> None:
            site.queries.append(query)
            if site.dicomweb_status is not None:
                self._answer(site.dicomweb_status, b"archive trouble", "text/plain")
                return
            if path.rstrip("/") != "/dicom-web/studies":
                self._answer(404, b"", "text/plain")
                return
            matches = [
                _dataset(accession, uid)
                for accession, uids in site.studies.items()
                for uid in uids
                if query.get("AccessionNumber", [accession]) == [accession]
                and query.get("StudyInstanceUID", [uid]) == [uid]
            ]
            if not matches:
                self._answer(204, b"", "application/dicom+json")  # as dcm4chee answers no match
                return
            self._answer(200, json.dumps(matches).encode(), "application/dicom+json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


# The bridge and CRIS


class Cris:
    """CRIS Reporting, played by a real WebSocket client: sends commands, records what comes back."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.received: list[PacsCommand | UnknownCommand] = []

    async def send(self, command: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"command": command, **fields}))

    async def expect(self, timeout: float = 10.0) -> PacsCommand | UnknownCommand:
        """The next command the bridge sends, within `timeout` seconds."""
        with anyio.fail_after(timeout):
            data = await self.ws.recv()
        message = codec.decode_for_cris(data)
        self.received.append(message)
        return message


@asynccontextmanager
async def running_bridge(
    settings: dict[str, Any], *, plugin: OhifPlugin | None = None, extra: tuple[object, ...] = (),
    hook_timeout: float = 10.0, others: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[tuple[Bridge, OhifAdapter]]:
    """A bridge on a free loopback port running the `ohif` adapter with `[plugins.ohif]` = settings.

    Without `plugin` the adapter is loaded through its entry point, as `cris-connect` loads it;
    `others` enables more adapters by entry point with their settings (`{"dcm4chee": {...}}`).
    """
    others = dict(others or {})
    plugins = PluginsConfig(
        enabled=(*others, *(() if plugin is not None else ("ohif",))), hook_timeout=hook_timeout,
        settings={**others, "ohif": settings},
    )
    config = Config(server=ServerConfig(port=0, plain=True), plugins=plugins)
    async with Bridge(config, plugins=(*((plugin,) if plugin else ()), *extra)) as bridge:
        runner = bridge.runners["ohif"]
        adapter = runner.plugin.adapter  # type: ignore[attr-defined]
        assert isinstance(adapter, OhifAdapter)
        yield bridge, adapter


@asynccontextmanager
async def cris_client(bridge: Bridge) -> AsyncIterator[Cris]:
    async with client.connect(bridge.url) as ws:
        yield Cris(ws)


async def wait_for(condition: Any, *, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll `condition()` (plain or async) until it returns something truthy; fail after `timeout` s."""
    deadline = anyio.current_time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if anyio.current_time() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await anyio.sleep(interval)



# The browser, as the test sees it


def reset_tabs(debug_url: str) -> None:
    """Close every tab but one blank one, so each test starts with no OHIF tab open."""
    base = debug_url.rstrip("/")

    def pages() -> list[str]:
        targets = httpx.get(f"{base}/json/list", timeout=5, trust_env=False).json()
        return [t["id"] for t in targets if t.get("type") == "page"]

    old = pages()
    response = httpx.put(f"{base}/json/new?about:blank", timeout=5, trust_env=False)
    response.raise_for_status()
    for target_id in old:
        httpx.get(f"{base}/json/close/{target_id}", timeout=5, trust_env=False)
    # Closing is asynchronous: wait until /json/list shows only the new tab.
    wait_until(lambda: pages() == [response.json()["id"]], timeout=10, what="the old tabs to close")


async def tab_url(adapter: OhifAdapter) -> str | None:
    """The URL of the tab the adapter drives (None before it has one, or once it is closed)."""
    tabs = await adapter.devtools.tabs()
    return next((t.url for t in tabs if t.id == adapter.tab_id), None)


async def settled(adapter: OhifAdapter, count: int, timeout: float = 15.0) -> Navigation:
    """The adapter's `count`-th navigation since start, once it has finished (shown, failed, ...)."""
    await wait_for(lambda: len(adapter.navigations) >= count, timeout=timeout,
                   what=f"navigation {count} to start")
    navigation = adapter.navigations[count - 1]
    with anyio.fail_after(timeout):
        await navigation.done.wait()
    return navigation


@asynccontextmanager
async def page(adapter: OhifAdapter) -> AsyncIterator[CdpConnection]:
    """The test's own DevTools connection to the adapter's tab: look at it, act as the radiologist."""
    tabs = await adapter.devtools.tabs()
    tab = next(t for t in tabs if t.id == adapter.tab_id)
    async with await CdpConnection.open(tab.websocket_url) as connection:
        yield connection


async def evaluate(connection: CdpConnection, expression: str) -> Any:
    result = await connection.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    if "exceptionDetails" in result:
        raise AssertionError(f"{expression!r} raised {result['exceptionDetails'].get('text')}")
    return result["result"].get("value")


async def open_in_viewer(connection: CdpConnection, *uids: str) -> None:
    """What the radiologist does in OHIF's study list: an in-app (pushState) route change."""
    path = f"/viewer?StudyInstanceUIDs={','.join(uids)}"
    await evaluate(connection, f"history.pushState({{}}, '', {json.dumps(path)}); "
                               "window.dispatchEvent(new PopStateEvent('popstate', {state: {}})); true")


# What OHIF shows, read from its page

#: The route, how many canvases are drawn, and the page's text (OHIF's image counter overlay reads
#: "I:1 (1/3)" once the first image of a three-image series is rendered).
VIEWER_STATE = (
    "JSON.stringify({url: location.href, path: location.pathname,"
    " canvases: document.querySelectorAll('canvas').length, text: document.body.innerText})"
)


async def viewer_state(connection: CdpConnection) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(await evaluate(connection, VIEWER_STATE))
    return state


async def rendered(connection: CdpConnection, uid: str, images: int) -> dict[str, Any] | None:
    """The viewer state once OHIF drew the first image of study `uid` (a series of `images`)."""
    state = await viewer_state(connection)
    if (state["path"].startswith("/viewer") and uid in state["url"] and state["canvases"]
            and f"(1/{images})" in state["text"]):
        return state
    return None
