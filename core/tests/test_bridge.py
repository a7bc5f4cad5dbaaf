"""Every command both ways, end to end: a real websockets client as CRIS, a real bridge on loopback,
a test plugin recording what it sees."""

from __future__ import annotations

import json

import anyio
import pytest

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json, wait_until
from cris_connect import Clear, Display, InvalidMessage, Login, Logout, NoSession
from cris_connect.context import Context
from cris_connect.messages import Commit, Event, LoggedIn, LoggedOut, ReadOnly, Release, UnknownCommand

pytestmark = pytest.mark.anyio

CRIS_COMMANDS = [
    ({"command": "LOGIN"}, LoggedIn, "on_login"),
    ({"command": "EVENT", "accession": ["RX1"], "examCode": "CCHES", "nhs": "9434765919"}, Event, "on_event"),
    ({"command": "READONLY", "accession": ["RX0"], "chi": "0101011234"}, ReadOnly, "on_readonly"),
    ({"command": "COMMIT", "accession": ["RX1"]}, Commit, "on_commit"),
    ({"command": "RELEASE", "accession": ["RX1"]}, Release, "on_release"),
    ({"command": "LOGOUT"}, LoggedOut, "on_logout"),
    ({"command": "WHATEVER", "accession": ["RX1"]}, UnknownCommand, "on_unknown_command"),
]


@pytest.mark.parametrize(("wire", "cls", "hook"), CRIS_COMMANDS, ids=[c[0]["command"] for c in CRIS_COMMANDS])
async def test_each_cris_command_reaches_its_hook(start_bridge, wire, cls, hook) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, wire)
        [call] = await recorder.wait_for(hook)
        assert type(call["message"]) is cls
        assert call["session"] is bridge.sessions[0]
        assert recorder.commands() == [wire["command"]]  # on_command saw it too, once


@pytest.mark.parametrize("message", [Display(accession=["RX1"]), Clear(), Logout(),
                                     Login(username="jsmith", password="pw")], ids=lambda m: m.command)
async def test_each_pacs_command_reaches_cris(start_bridge, message) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await recorder.wait_for("session_opened")
        assert await bridge.send(message) == 1
        received = await recv_json(ws)
        assert received["command"] == message.command
        [sent] = await recorder.wait_for("on_sent")
        assert sent["message"] == message and len(sent["sessions"]) == 1


async def test_context_follows_what_cris_said(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        for wire, _, _ in CRIS_COMMANDS[:5]:
            await send_json(ws, wire)
        calls = await recorder.wait_for("on_command", 5)
        contexts = [call["context"] for call in calls]
        assert contexts[0] == Context(logged_in=True)
        assert contexts[1] == Context(logged_in=True, accession=("RX1",), exam_code="CCHES", nhs="9434765919")
        assert contexts[2].read_only and contexts[2].accession == ("RX0",) and contexts[2].chi == "0101011234"
        assert contexts[3] == contexts[2]  # COMMIT keeps the report open until RELEASE
        assert contexts[4] == Context(logged_in=True)  # RELEASE clears the report, not the login
        assert bridge.sessions[0].context == contexts[4]
        await send_json(ws, {"command": "LOGOUT"})
        await wait_until(lambda: bridge.sessions[0].context == Context(), what="LOGOUT to clear the context")


async def test_broadcast_reaches_every_session_and_to_reaches_one(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as a, cris(bridge.url) as b:
        await recorder.wait_for("session_opened", 2)
        assert await bridge.send(Display(accession=["RX1"])) == 2
        assert (await recv_json(a))["accession"] == ["RX1"]
        assert (await recv_json(b))["accession"] == ["RX1"]
        second = bridge.sessions[1]
        assert await bridge.send(Clear(), to=second) == 1
        assert (await recv_json(b))["command"] == "CLEAR"
        with pytest.raises(TimeoutError):
            await recv_json(a, timeout=0.3)  # the other session got nothing


async def test_each_session_has_its_own_context(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as a, cris(bridge.url) as b:
        await send_json(a, {"command": "EVENT", "accession": ["A1"]})
        await recorder.wait_for("on_event")
        await send_json(b, {"command": "EVENT", "accession": ["B1"]})
        await recorder.wait_for("on_event", 2)
        by_session = {call["session"].id: call["context"].accession for call in recorder.hooks("on_event")}
        assert sorted(by_session.values()) == [("A1",), ("B1",)]
        assert len(by_session) == 2


async def test_send_with_no_session_is_a_clear_error(start_bridge) -> None:
    async with start_bridge() as bridge:
        with pytest.raises(NoSession, match="no CRIS Reporting session is connected; DISPLAY not sent"):
            await bridge.send(Display(accession=["RX1"]))


async def test_a_bad_message_fails_at_send_and_cris_gets_nothing(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await recorder.wait_for("session_opened")
        with pytest.raises(InvalidMessage, match="DISPLAY needs at least one accession"):
            await bridge.send(Display())
        await bridge.send(Clear())
        assert (await recv_json(ws))["command"] == "CLEAR"  # the bad one never went out


async def test_session_opened_and_closed_with_reason(start_bridge) -> None:
    recorder = Recorder()
    async with start_bridge(plugins=[recorder]) as bridge:
        async with cris(bridge.url):
            await recorder.wait_for("session_opened")
            assert len(bridge.sessions) == 1
        [closed] = await recorder.wait_for("session_closed")
        assert closed["reason"] == "close code 1000"
        assert bridge.sessions == ()


async def test_plugin_answers_event_with_display(start_bridge) -> None:
    """The reference behaviour: the PACS side answers through the public API."""
    from cris_connect import hookimpl

    class Answer:
        @hookimpl
        def bridge_started(self, bridge):
            self.bridge = bridge

        @hookimpl
        async def on_event(self, message, session):
            await self.bridge.send(Display(accession=message.accession), to=session)

    async with start_bridge(plugins=[Answer()]) as bridge, cris(bridge.url) as ws:
        for n in range(20):
            await send_json(ws, {"command": "EVENT", "accession": [f"RX{n}"]})
            assert await recv_json(ws) == {"command": "DISPLAY", "accession": [f"RX{n}"]}


async def test_embedding_in_a_running_program(start_bridge) -> None:
    """The bridge is one task among others; leaving the block stops only it."""
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other_work)
        async with start_bridge() as bridge, cris(bridge.url) as ws:
            await ws.send(json.dumps({"command": "LOGIN"}))
        await wait_until(lambda: ticks > 5, what="the host program to keep running")
        tg.cancel_scope.cancel()
