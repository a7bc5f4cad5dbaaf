"""Who may connect and what may be sent where: origins, shared secret, rate limit, idle timeout,
LOGIN only over a secure transport."""

from __future__ import annotations

import logging

import anyio
import pytest
from websockets.exceptions import InvalidStatus

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json, wait_until
from cris_connect import Login
from cris_connect.server import SECRET_HEADER

pytestmark = pytest.mark.anyio

CRIS_ORIGIN = "https://cris.example.nhs.uk"


async def refused_status(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with cris(url, **kwargs):
            pass
    return refused.value.response.status_code


async def test_only_allowed_browser_origins_connect(start_bridge, logs) -> None:
    async with start_bridge(allowed_origins=(CRIS_ORIGIN,)) as bridge:
        async with cris(bridge.url, origin=CRIS_ORIGIN):
            pass
        assert await refused_status(bridge.url, origin="https://evil.example.com") == 403
        assert any("origin https://evil.example.com is not allowed; add it to server.allowed_origins" in m
                   for m in logs.messages(logging.WARNING))


async def test_no_origin_can_be_switched_off(start_bridge) -> None:
    async with start_bridge(allow_no_origin=False) as bridge:
        assert await refused_status(bridge.url) == 403


async def test_shared_secret_for_non_browser_clients(start_bridge, logs) -> None:
    async with start_bridge(shared_secret="correct horse") as bridge:
        assert await refused_status(bridge.url) == 403
        assert await refused_status(bridge.url, additional_headers={SECRET_HEADER: "wrong"}) == 403
        async with cris(bridge.url, additional_headers={SECRET_HEADER: "correct horse"}):
            pass
        assert "correct horse" not in logs.ours()


async def test_session_limit(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], max_sessions=1) as bridge, cris(bridge.url):
        await recorder.wait_for("session_opened")
        assert await refused_status(bridge.url) == 503


async def test_a_flood_is_refused_and_the_session_kept(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], max_messages_per_second=5) as bridge, cris(bridge.url) as ws:
        for n in range(20):
            await send_json(ws, {"command": "EVENT", "accession": [f"RX{n}"]})
        await recorder.wait_for("on_refused", 10)
        reasons = {call["reason"] for call in recorder.hooks("on_refused")}
        assert reasons == {"more than 5 messages per second (server.max_messages_per_second); frame dropped"}
        assert 5 <= len(recorder.hooks("on_event")) < 20  # the burst allowance got through
        assert len(bridge.sessions) == 1  # still connected


async def test_idle_sessions_are_closed_when_asked(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder], idle_timeout=0.2) as bridge, cris(bridge.url):
        [closed] = await recorder.wait_for("session_closed")
        assert closed["reason"] == "closed by the bridge (1001 idle timeout)"


async def test_login_goes_only_over_a_secure_transport(start_bridge, logs) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await recorder.wait_for("session_opened")
        assert bridge.sessions[0].secure  # loopback
        assert await bridge.send(Login(username="jsmith", password="pw")) == 1
        assert (await recv_json(ws))["command"] == "LOGIN"
        bridge.sessions[0].secure = False  # as a plain remote session would be
        with pytest.raises(Exception, match="LOGIN"):
            await bridge.send(Login(username="jsmith", password="pw"))
        await wait_until(lambda: any("LOGIN not sent to session 1" in m for m in logs.messages()),
                         what="the refusal to be logged")
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.2):
                await ws.recv()
