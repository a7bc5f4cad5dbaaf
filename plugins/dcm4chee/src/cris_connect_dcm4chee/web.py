"""HTTP to the archive: httpx on anyio, with timeouts, bounded retries, authentication and TLS.

Every failure becomes an `ArchiveError` whose text is one sentence saying what went wrong and
where (no patient identifiers: the URL's query string is left out).
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import httpx

from cris_connect_dcm4chee.config import Dcm4cheeConfig

log = logging.getLogger("cris_connect.plugins.dcm4chee")

#: Worth another attempt: the archive (or a proxy in front of it) is busy or restarting.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

Params = Mapping[str, str | Sequence[str]]


class ArchiveError(RuntimeError):
    """The archive could not be asked, or its answer cannot be used; the text says why."""


class BearerFromEnvironment(httpx.Auth):
    """`Authorization: Bearer <token>`, read from the environment on each request, so a token
    refreshed by a sidecar and exported again is picked up without a restart."""

    def __init__(self, variable: str) -> None:
        self.variable = variable

    def auth_flow(self, request: httpx.Request) -> Any:
        token = os.environ.get(self.variable, "")
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


def make_client(config: Dcm4cheeConfig) -> httpx.AsyncClient:
    auth: httpx.Auth | None = None
    if config.token_env:
        auth = BearerFromEnvironment(config.token_env)
    elif config.username:
        auth = httpx.BasicAuth(config.username, os.environ.get(config.password_env, ""))
    verify: ssl.SSLContext | bool = config.verify_tls
    if config.verify_tls and config.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(config.ca_file))
    return httpx.AsyncClient(
        auth=auth,
        verify=verify,
        timeout=httpx.Timeout(config.timeout),
        headers={"Accept": "application/dicom+json, application/json"},
        follow_redirects=False,
    )


class ArchiveHttp:
    """One archive's HTTP side; `request` retries what is worth retrying and raises ArchiveError."""

    def __init__(self, client: httpx.AsyncClient, *, retries: int, backoff: float) -> None:
        self.client = client
        self.retries = retries
        self.backoff = backoff

    async def request(
        self, method: str, url: str, *, params: Params | None = None, seconds: float | None = None,
        accept: Sequence[int] = (200,),
    ) -> httpx.Response:
        """The response when its status is in `accept`; ArchiveError otherwise."""
        where = f"{method} {url}"
        attempt = 0
        while True:
            try:
                kwargs: dict[str, Any] = {"params": params}
                if seconds is not None:
                    kwargs["timeout"] = httpx.Timeout(seconds)
                response = await self.client.request(method, url, **kwargs)
            except httpx.TimeoutException:
                reason = f"{where}: no answer within the timeout"
            except httpx.HTTPError as exc:
                reason = f"{where}: cannot connect ({_describe(exc)})"
            else:
                if response.status_code in accept:
                    return response
                reason = f"{where}: HTTP {response.status_code}{_body_hint(response)}"
                if response.status_code not in RETRY_STATUSES:
                    raise ArchiveError(reason + _status_advice(response.status_code))
            if attempt >= self.retries:
                raise ArchiveError(reason + (f" (after {attempt + 1} attempts)" if attempt else ""))
            await anyio.sleep(self.backoff * 2**attempt)
            attempt += 1


def _describe(exc: httpx.HTTPError) -> str:
    cause: BaseException | None = exc
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause or exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _body_hint(response: httpx.Response) -> str:
    # dcm4chee explains errors as {"errorMessage": "..."}; show that, never a whole body.
    try:
        payload = response.json()
    except ValueError:
        return ""
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return f" ({payload['errorMessage'][:200]})"
    return ""


def _status_advice(status: int) -> str:
    if status in (401, 403):
        return "; check username/password_env or token_env"
    if status == 404:
        return "; check the url (QIDO-RS root, e.g. .../dcm4chee-arc/aets/DCM4CHEE/rs) and AE titles"
    return ""
