"""Plain HTTP answers on the WebSocket port.

People open `https://localhost:9998` once in the browser to accept the certificate (the vendor's
examples answer an empty 200 there); we answer a short page saying so, and `/healthz` as JSON for
monitoring. Anything else is 404. Every answer closes the connection.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cris-connect</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>cris-connect is running</h1>
<p>This is the PACS side of CRIS Connect (version {version}). If you opened this page to accept
its certificate, that is done: CRIS Reporting can now connect. You can close this tab.</p>
</body></html>
"""


def response(status: int, reason: str, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status, reason, headers, body)


def answer(path: str, *, version: str, health: Mapping[str, Any]) -> Response:
    """The answer to a plain (non-WebSocket) GET."""
    route = path.split("?", 1)[0]
    if route == "/":
        return response(200, "OK", _PAGE.format(version=version).encode(), "text/html; charset=utf-8")
    if route == "/healthz":
        return response(200, "OK", json.dumps(health).encode(), "application/json")
    body = b"Not found. This port serves CRIS Connect.\n"
    return response(404, "Not Found", body, "text/plain; charset=utf-8")
