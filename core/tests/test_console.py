"""The web console over HTTP: config, status, origins, the send panel, /metrics, limits.

The page itself, its simulator panel and the cross-origin attack run in a real browser in
tests/browser; here a real bridge is driven with httpx and websockets clients on both backends.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import sys
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import pytest
from websockets.exceptions import InvalidStatus

from core.tests.recorder import Recorder
from core.tests.support import cris, plain_config, recv_json, send_json, wait_until
from cris_connect import Bridge, Clear, Config, Event, LoggedIn, Login, certs, demo, hookimpl
from cris_connect import config as config_module
from cris_connect.config import ConfigError, ConsoleConfig, PluginsConfig, ServerConfig
from cris_connect.console.activity import Activity, Histogram, mask_numbers
from cris_connect.console.http import BadRequest, parse_head
from cris_connect.server import StartupError

pytestmark = pytest.mark.anyio

NHS = "9434765919"


def console_config(**console: Any) -> Config:
    plugins = console.pop("plugins", PluginsConfig(enabled=[]))
    server = console.pop("server", {})
    config = plain_config(plugins=plugins, **server)
    return attrs.evolve(config, console=ConsoleConfig(**{"enabled": True, "port": 0, **console}))


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=10)


async def status(bridge: Bridge, after: int | None = None) -> dict[str, Any]:
    assert bridge.console is not None
    query = "" if after is None else f"?after={after}"
    async with client() as http:
        response = await http.get(f"{bridge.console.url}api/status{query}")
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def refused_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with cris(url, **kwargs):
            pass
    return refused.value.response.status_code


# Config


def test_console_is_off_by_default() -> None:
    console = Config().console
    assert (console.enabled, console.host, console.port) == (False, "127.0.0.1", 9997)
    assert not (console.simulator or console.send_panel or console.metrics)


def test_console_section_is_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[server]\nplain = true\n[console]\nenabled = true\nport = 9000\nsimulator = true\n")
    config = config_module.load(path)
    assert config.console == ConsoleConfig(enabled=True, port=9000, simulator=True)
    path.write_text("[server]\nplain = true\n[console]\nenabled = true\nsimlator = true\n")
    with pytest.raises(ConfigError, match=r"console: unknown key simlator \(known keys: enabled, host"):
        config_module.load(path)


@pytest.mark.parametrize(
    ("console", "message"),
    [
        ({"simulator": True}, "console.simulator: the console is off; set console.enabled = true"),
        ({"enabled": True, "host": "10.1.2.3"}, "console.host: 10.1.2.3 is not loopback"),
        ({"enabled": True, "port": 9998}, "console.port: 9998 is the WebSocket's port"),
        ({"enabled": True, "port": 70000}, "console.port: 70000 is not a TCP port"),
    ],
)
def test_console_config_mistakes_say_what_to_change(console: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config_module.from_mapping({"server": {"plain": True}, "console": console})


def test_the_demo_turns_the_console_and_simulator_on() -> None:
    config = demo.with_console(Config(server=ServerConfig(plain=True, port=0)))
    assert config.console.enabled and config.console.simulator and config.console.port == 0
    assert demo.with_console(Config(server=ServerConfig(plain=True))).console.port == 9997
    assert demo.with_console(Config(server=ServerConfig(plain=True, port=9000))).console.port == 8999


# Activity


def test_activity_keeps_the_last_50_masked_and_counts_all() -> None:
    activity = Activity()
    for n in range(60):
        activity.received(1, Event(accession=[f"RX{n}"], nhs=NHS))
    activity.received(1, LoggedIn(password="hunter2"))
    activity.sent(Login(username="jsmith", password="hunter2"), [1, 2])
    assert len(activity.entries) == 50
    assert activity.counts[("in", "EVENT")] == 60
    text = json.dumps([attrs.asdict(e) for e in activity.entries])
    assert NHS not in text and "*******919" in text
    assert "hunter2" not in text
    assert activity.entries[-1].sessions == (1, 2) and activity.entries[-1].direction == "out"


def test_refusal_reasons_do_not_show_a_number_sent_where_text_was_expected() -> None:
    assert mask_numbers(f"EVENT: field 'nhs': expected a string, got {NHS}") == (
        "EVENT: field 'nhs': expected a string, got *******919"
    )
    assert mask_numbers("RX12 and 123456") == "RX12 and 123456"  # short numbers are left alone


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram(buckets=(0.01, 0.1))
    for value in (0.005, 0.05, 0.05, 3.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.01", 1), ("0.1", 3), ("+Inf", 4)]
    assert histogram.total == pytest.approx(3.105)


def test_http_request_heads_are_parsed_strictly() -> None:
    method, path, query, headers = parse_head(b"GET /api/status?after=3 HTTP/1.1\r\nHost: localhost:1\r\nX-A: b")
    assert (method, path, query, headers) == ("GET", "/api/status", {"after": "3"},
                                              {"host": "localhost:1", "x-a": "b"})
    for bad in (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b", b"GARBAGE", b"GET http://x/ HTTP/1.1",
                b"GET / HTTP/1.1\r\n no-name"):
        with pytest.raises(BadRequest):
            parse_head(bad)


def test_the_page_uses_nothing_from_elsewhere() -> None:
    """Air-gapped ward PCs: no URL in the shipped page, style or script points off the bridge."""
    static = importlib.resources.files("cris_connect.console").joinpath("static")
    for name in ("index.html", "console.css", "console.js"):
        text = static.joinpath(name).read_text()
        for reference in ("http://", "https://", "//cdn", "@import", "innerHTML"):
            assert reference not in text, (name, reference)


# Serving


async def test_console_off_serves_nothing_and_allows_no_extra_origin(start_bridge) -> None:
    async with start_bridge() as bridge:
        assert bridge.console is None
        assert await refused_status(bridge.url, origin="http://localhost:9997") == 403


async def test_page_status_and_plugins(logs) -> None:
    recorder = Recorder()
    async with Bridge(console_config(), plugins=[recorder]) as bridge, client() as http:
        assert bridge.console is not None
        page = await http.get(bridge.console.url)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "ws://" not in csp  # no simulator: the page has no business with the WebSocket
        assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
        assert '<meta name="console-token" content="">' in page.text  # no send panel, no token
        assert "http://" not in page.text.replace("http://www.w3.org", "")  # nothing from elsewhere
        for asset, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
            response = await http.get(f"{bridge.console.url}{asset}")
            assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        snapshot = await status(bridge)
        assert [p["name"] for p in snapshot["plugins"]] == ["recorder"]
        assert snapshot["plugins"][0]["health"] == "ok"
        assert snapshot["listening"] == {"url": bridge.url, "tls": False, "certificate": None,
                                         "allowed_origins": []}
        assert snapshot["console"]["simulator"] is False and snapshot["sessions"] == []
        assert (await http.get(f"{bridge.console.url}nothing-here")).status_code == 404
        assert (await http.get(f"{bridge.console.url}metrics")).status_code == 404  # metrics off
        assert (await http.post(f"{bridge.console.url}api/status")).status_code == 405
    assert any(m.startswith("console on http://localhost:") for m in logs.messages(logging.INFO))


async def test_status_answers_as_soon_as_a_session_connects() -> None:
    recorder = Recorder()
    async with Bridge(console_config(), plugins=[recorder]) as bridge:
        first = await status(bridge)
        result: dict[str, Any] = {}

        async def long_poll() -> None:
            result.update(await status(bridge, after=first["seq"]))

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_poll)
            await anyio.sleep(0.1)
            assert not result  # nothing happened yet: the request waits
            with anyio.fail_after(5):
                async with cris(bridge.url) as ws:
                    await send_json(ws, {"command": "EVENT", "accession": ["RX1"], "examCode": "CT",
                                         "nhs": NHS})
                    await recorder.wait_for("on_event")
                    await wait_until(lambda: bool(result), what="the long poll to answer")
                    later = await status(bridge)
        [session] = later["sessions"]
        assert session["context"]["accession"] == ["RX1"] and session["context"]["nhs"] == "*******919"
        assert later["commands"][-1]["summary"] == "EVENT accession=RX1 examCode=CT nhs=*******919"
        assert NHS not in json.dumps(later)
        assert later["counts"] == {"in": {"EVENT": 1}}


async def test_passwords_never_reach_the_console() -> None:
    recorder = Recorder()
    async with Bridge(console_config(), plugins=[recorder]) as bridge, cris(bridge.url) as ws:
        await send_json(ws, {"command": "LOGIN", "username": "jsmith", "password": "hunter2"})
        await recorder.wait_for("on_login")
        await bridge.send(Login(username="jsmith", password="correct horse"))
        assert (await recv_json(ws))["password"] == "correct horse"
        text = json.dumps(await status(bridge))
        assert "hunter2" not in text and "correct horse" not in text
        assert "LOGIN username=jsmith password=***" in text


async def test_only_requests_addressed_to_this_machine_are_answered(logs) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not read the console."""
    async with Bridge(console_config()) as bridge, client() as http:
        assert bridge.console is not None
        port = bridge.console.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert (await http.get(bridge.console.url, headers={"Host": host})).status_code == 200
        refused = await http.get(f"{bridge.console.url}api/status", headers={"Host": f"evil.example:{port}"})
        assert refused.status_code == 421
        assert any("refused a request" in m and "evil.example" in m for m in logs.messages(logging.WARNING))


async def test_the_simulator_origin_may_connect_only_when_the_simulator_is_on() -> None:
    async with Bridge(console_config()) as bridge:
        assert bridge.console is not None
        origin = f"http://localhost:{bridge.console.port}"
        assert await refused_status(bridge.url, origin=origin) == 403
    recorder = Recorder()
    async with Bridge(console_config(simulator=True), plugins=[recorder]) as bridge:
        assert bridge.console is not None
        for origin in sorted(bridge.console.origins):
            async with cris(bridge.url, origin=origin):
                pass
        assert len(await recorder.wait_for("session_opened", 3)) == 3
        assert await refused_status(bridge.url, origin="http://localhost:1") == 403  # another port
        async with client() as http:
            csp = (await http.get(bridge.console.url)).headers["content-security-policy"]
        assert f"ws://localhost:{bridge.port}" in csp and f"ws://127.0.0.1:{bridge.port}" in csp


async def test_send_panel_is_protected(logs) -> None:
    async with Bridge(console_config(send_panel=True)) as bridge, client() as http:
        console = bridge.console
        assert console is not None
        url = f"{console.url}api/send"
        own = f"http://localhost:{console.port}"
        display = {"command": "DISPLAY", "accession": ["RX9"]}
        page = (await http.get(console.url)).text
        assert f'<meta name="console-token" content="{console.token}">' in page
        good = {"Origin": own, "X-Console-Token": console.token}

        assert (await http.post(url, json=display, headers=good)).status_code == 409  # nobody connected
        async with cris(bridge.url) as ws:
            await wait_until(lambda: len(bridge.sessions) == 1, what="the session")
            assert (await http.post(url, json=display)).status_code == 403  # no Origin
            assert (await http.post(url, json=display, headers={**good, "Origin": "https://evil.example"})
                    ).status_code == 403
            assert (await http.post(url, json=display, headers={**good, "X-Console-Token": "guess"})
                    ).status_code == 403
            assert (await http.post(url, content=json.dumps(display), headers=good)).status_code == 415
            login = await http.post(url, json={"command": "LOGIN", "username": "a", "password": "b"},
                                    headers=good)
            assert login.status_code == 400 and "DISPLAY and CLEAR" in login.json()["error"]
            empty = await http.post(url, json={"command": "DISPLAY"}, headers=good)
            assert empty.status_code == 400 and "accession" in empty.json()["error"]
            sent = await http.post(url, json={**display, "nhs": NHS}, headers=good)
            assert sent.status_code == 200 and sent.json()["reached"] == 1
            assert await recv_json(ws) == {"command": "DISPLAY", "accession": ["RX9"], "nhs": NHS}
            assert (await http.post(url, json={"command": "CLEAR"}, headers=good)).json()["reached"] == 1
            assert await recv_json(ws) == {"command": "CLEAR"}
            assert (await http.get(url)).status_code == 405
        assert any("console: refused a send" in m and "evil.example" in m for m in logs.messages())
        assert NHS not in logs.ours()


async def test_send_panel_off_refuses_even_with_the_token() -> None:
    async with Bridge(console_config()) as bridge, client() as http:
        assert bridge.console is not None
        response = await http.post(f"{bridge.console.url}api/send", json={"command": "CLEAR"},
                                   headers={"Origin": f"http://localhost:{bridge.console.port}",
                                            "X-Console-Token": bridge.console.token})
        assert response.status_code == 404


async def test_metrics() -> None:
    pytest.importorskip("prometheus_client")
    recorder = Recorder()

    class Broken:
        name = "broken"

        @hookimpl
        def on_event(self) -> None:
            raise RuntimeError("boom")

    async with Bridge(console_config(metrics=True), plugins=[recorder, Broken()]) as bridge, client() as http:
        assert bridge.console is not None
        async with cris(bridge.url) as ws:
            await send_json(ws, {"command": "EVENT", "accession": ["RX1"]})
            await ws.send("not a message")
            await recorder.wait_for("on_refused")
            await bridge.send(Clear())
            await recv_json(ws)
            await wait_until(lambda: bridge.runners["broken"].failures == 1, what="the broken hook")
            response = await http.get(f"{bridge.console.url}metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        text = response.text
        for line in (
            'cris_connect_commands_total{command="EVENT",direction="in"} 1.0',
            'cris_connect_commands_total{command="CLEAR",direction="out"} 1.0',
            "cris_connect_refused_frames_total 1.0",
            'cris_connect_plugin_errors_total{plugin="broken"} 1.0',
            'cris_connect_plugin_errors_total{plugin="recorder"} 0.0',
            'cris_connect_dispatch_latency_seconds_count{plugin="recorder"} 1.0',  # the EVENT
            "cris_connect_sessions 1.0",
        ):
            assert line in text, text
        assert 'cris_connect_dispatch_latency_seconds_bucket{le="+Inf",plugin="broken"} 1.0' in text


async def test_metrics_without_prometheus_client_is_a_clear_startup_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    with pytest.raises(StartupError, match=r"pip install cris-connect\[metrics\]"):
        async with Bridge(console_config(metrics=True)):
            pass


async def test_console_port_in_use_is_a_clear_startup_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    try:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with pytest.raises(StartupError, match=rf"port {port} on 127.0.0.1 is already in use .*choose another port with console\.port"):
            async with Bridge(console_config(port=port)):
                pass
    finally:
        await listener.aclose()


async def test_bad_requests_get_short_answers() -> None:
    async with Bridge(console_config()) as bridge:
        assert bridge.console is not None
        port = bridge.console.port

        async def raw(data: bytes) -> bytes:
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(data)
                answer = b""
                with anyio.fail_after(5):
                    try:
                        while True:
                            answer += await stream.receive()
                    except anyio.EndOfStream:
                        return answer

        assert (await raw(b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        assert (await raw(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")).startswith(b"HTTP/1.1 431 ")
        big = f"POST /api/send HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Length: 100000\r\n\r\n".encode()
        assert (await raw(big)).startswith(b"HTTP/1.1 413 ")
        chunked = f"POST /api/send HTTP/1.1\r\nHost: localhost:{port}\r\nTransfer-Encoding: chunked\r\n\r\n"
        assert (await raw(chunked.encode())).startswith(b"HTTP/1.1 501 ")


async def test_a_waiting_long_poll_does_not_delay_shutdown() -> None:
    async with Bridge(console_config()) as bridge:
        assert bridge.console is not None
        url = bridge.console.url
        seq = bridge.activity.seq
        errors: list[BaseException] = []

        async def hang() -> None:
            try:
                async with client() as http:
                    await http.get(f"{url}api/status?after={seq}")
            except httpx.HTTPError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(hang)
            await anyio.sleep(0.1)
            with anyio.fail_after(3):
                await bridge.aclose()
        assert errors  # the connection was dropped rather than answered


async def test_console_over_https_with_the_bridges_certificate(tmp_path: Path) -> None:
    bundle = certs.create_certificates(tmp_path)
    config = attrs.evolve(
        console_config(simulator=True),
        server=ServerConfig(port=0, cert=bundle.server.cert_path, key=bundle.server.key_path),
    )
    async with Bridge(config) as bridge:
        assert bridge.console is not None and bridge.console.url.startswith("https://localhost:")
        assert bridge.console.origins >= {f"https://localhost:{bridge.console.port}",
                                          f"https://127.0.0.1:{bridge.console.port}"}
        trusted = certs.client_ssl_context(bundle.ca.cert_path)
        async with httpx.AsyncClient(verify=trusted, trust_env=False) as http:
            snapshot = (await http.get(f"{bridge.console.url}api/status")).json()
        assert snapshot["listening"]["tls"] is True
        assert snapshot["listening"]["certificate"]["state"] == "ok"
        assert snapshot["console"]["bridge_url"].startswith("wss://localhost:")
        async with cris(bridge.url, ssl_context=trusted, origin=f"https://localhost:{bridge.console.port}"):
            pass
