"""A minimal, blocking Chrome DevTools Protocol client for test helpers (not for the bridge).

One WebSocket to one target. Messages without an ``id`` are events; events that arrive while we
wait for a command's answer are kept for ``wait_event``. No ``Origin`` header is sent, so
Chromium accepts the connection without ``--remote-allow-origins``.
"""

from __future__ import annotations

import base64
import inspect
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from websockets.sync.client import ClientConnection, connect

# Loopback needs no proxy, whatever HTTPS_PROXY says; websockets < 15 has no proxy support at all.
_NO_PROXY: dict[str, Any] = {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}


class CdpError(RuntimeError):
    """A command answered with an ``error`` object."""


class CdpSession:
    def __init__(self, websocket_url: str, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._resources = ExitStack()
        # max_size: screenshots exceed websockets' 1 MiB default message limit.
        self._ws: ClientConnection = self._resources.enter_context(
            connect(websocket_url, max_size=None, open_timeout=timeout, **_NO_PROXY)
        )
        self._ids = itertools.count(1)
        self._events: deque[dict[str, Any]] = deque()

    def __enter__(self) -> CdpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._resources.close()

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one command and return its ``result``."""
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline, what=method)
            if message.get("id") == message_id:
                if "error" in message:
                    raise CdpError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._events.append(message)

    def wait_event(
        self,
        method: str,
        *,
        timeout: float | None = None,
        where: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> dict[str, Any]:
        """Return the ``params`` of the first (buffered or new) event ``method`` matching ``where``."""
        for event in list(self._events):
            if event["method"] == method and where(event.get("params", {})):
                self._events.remove(event)
                found: dict[str, Any] = event.get("params", {})
                return found
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline, what=method)
            if message.get("method") == method and where(message.get("params", {})):
                params: dict[str, Any] = message.get("params", {})
                return params
            if "method" in message:
                self._events.append(message)

    def clear_events(self) -> None:
        self._events.clear()

    def _receive(self, deadline: float, *, what: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no DevTools answer for {what}")
        try:
            raw = self._ws.recv(timeout=remaining)
        except TimeoutError:
            raise TimeoutError(f"no DevTools answer for {what}") from None
        message: dict[str, Any] = json.loads(raw)
        return message


def navigate(session: CdpSession, url: str, *, timeout: float = 30.0) -> None:
    """Load ``url`` in the session's page and wait for its load event."""
    session.call("Page.enable")
    session.clear_events()  # an earlier page's load event must not count
    result = session.call("Page.navigate", {"url": url}, timeout=timeout)
    if result.get("errorText"):
        raise CdpError(f"navigating to {url}: {result['errorText']}")
    session.wait_event("Page.loadEventFired", timeout=timeout)


def evaluate(session: CdpSession, expression: str) -> Any:
    """The JSON value of a JavaScript expression evaluated in the page."""
    result = session.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
    if "exceptionDetails" in result:
        raise CdpError(f"evaluating {expression!r}: {result['exceptionDetails'].get('text')}")
    return result["result"].get("value")


def capture_screenshot(session: CdpSession) -> bytes:
    """The page as PNG bytes."""
    result = session.call("Page.captureScreenshot", {"format": "png"})
    return base64.b64decode(result["data"])
