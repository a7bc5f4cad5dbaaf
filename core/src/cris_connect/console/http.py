"""A minimal HTTP/1.1 server side for the console: one request per connection, then close.

websockets' sans-I/O parser (which `server.py` uses for the WebSocket port) refuses request bodies,
and the send panel POSTs JSON; the console needs little more than a request line, headers and a
small body, so this reads exactly that, with limits on size and time, and no web framework.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

import anyio
import anyio.abc
import attrs

MAX_HEAD = 16 * 1024
MAX_BODY = 16 * 1024

REASONS = {
    200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
    421: "Misdirected Request", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


class BadRequest(Exception):
    """A request we will not serve; `status` and the text say why."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


@attrs.frozen
class Request:
    method: str
    #: The path without the query string.
    path: str
    query: Mapping[str, str]
    #: Header names in lower case.
    headers: Mapping[str, str]
    body: bytes = b""


@attrs.frozen
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def encode(self, common: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}"]
        fields = {
            "Date": email.utils.formatdate(usegmt=True),
            "Connection": "close",
            "Content-Type": self.content_type,
            "Content-Length": str(len(self.body)),
            **common,
            **self.headers,
        }
        lines += [f"{name}: {value}" for name, value in fields.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def text(status: int, message: str) -> Response:
    return Response(status, (message.rstrip("\n") + "\n").encode())


def parse_head(head: bytes) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """Method, path, query and headers from the bytes before the blank line."""
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise BadRequest(400, "not an HTTP request line") from None
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        raise BadRequest(400, "only HTTP/1.x requests for a path are served")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, f"malformed header line {line[:40]!r}")
        key = name.lower()
        if key in headers and key in ("host", "content-length", "origin"):
            raise BadRequest(400, f"more than one {name} header")
        headers[key] = value.strip()
    path, _, query_string = target.partition("?")
    query = {}
    for pair in query_string.split("&"):
        key, _, value = pair.partition("=")
        if key:
            query[key] = value
    return method, path, query, headers


async def read_request(stream: anyio.abc.ByteStream, timeout: float) -> Request:
    """Read one request within `timeout` seconds; raises `BadRequest`, or TimeoutError."""
    buffer = b""
    with anyio.fail_after(timeout):
        while b"\r\n\r\n" not in buffer:
            if len(buffer) > MAX_HEAD:
                raise BadRequest(431, "request head too large")
            buffer += await stream.receive(65536)
        head, _, body = buffer.partition(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            raise BadRequest(431, "request head too large")
        method, path, query, headers = parse_head(head)
        if "transfer-encoding" in headers:
            raise BadRequest(501, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BadRequest(400, "Content-Length is not a number") from None
        if length < 0:
            raise BadRequest(400, "Content-Length is negative")
        if length > MAX_BODY:
            raise BadRequest(413, f"request body over {MAX_BODY} bytes")
        while len(body) < length:
            body += await stream.receive(65536)
    return Request(method, path, query, headers, body[:length])
