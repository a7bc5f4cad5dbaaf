"""Graceful shutdown: stop accepting, close sessions with 1001, drain plugins, safe to call twice."""

from __future__ import annotations

import anyio
import pytest
from websockets.exceptions import ConnectionClosed

from core.tests.recorder import Recorder
from core.tests.support import cris, plain_config, send_json
from cris_connect import Bridge

pytestmark = pytest.mark.anyio


async def test_sessions_are_closed_with_1001_and_new_ones_refused() -> None:
    recorder = Recorder()
    bridge = Bridge(plain_config(), plugins=[recorder])
    async with bridge:
        port = bridge.port
        async with cris(bridge.url) as ws:
            await send_json(ws, {"command": "EVENT", "accession": ["RX1"]})
            await recorder.wait_for("on_event")
            await bridge.aclose()
            with pytest.raises(ConnectionClosed) as closed:
                with anyio.fail_after(5):
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert bridge.stopping
        await bridge.aclose()  # twice: a no-op
        with pytest.raises(OSError):
            await anyio.connect_tcp("127.0.0.1", port)  # no longer listening
    assert [hook for hook, _ in recorder.calls][-2:] == ["session_closed", "bridge_stopping"]
    assert bridge.health()["status"] == "stopping"


async def test_aclose_from_another_task_lets_the_host_finish_normally() -> None:
    finished = False
    async with Bridge(plain_config()) as bridge:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bridge.aclose)
        finished = True  # the host's own code was not cancelled
    assert finished
