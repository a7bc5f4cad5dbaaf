"""The command line as a user meets it: real processes, real ports, one-sentence errors."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from core.tests.support import cris, recv_json, send_json
from cris_connect import Bridge, Clear, Config, ServerConfig, certs
from cris_connect.config import PluginsConfig

ROOT = Path(__file__).parents[2]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cris_connect", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_plays_the_whole_script() -> None:
    result = run_cli("demo", "--once", "--port", "0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for step in ('"command": "LOGIN"', '"command": "EVENT"', '"command": "READONLY"', '"command": "COMMIT"',
                 '"command": "RELEASE"', '"command": "LOGOUT"', 'PACS -> CRIS  {"command":"DISPLAY"',
                 'PACS -> CRIS  {"command":"CLEAR"}'):
        assert step in out
    assert "context: logged in, report open, read-only" in out
    assert "9434765919" in out  # the client's own JSON is shown as sent...
    assert "plugin sees EVENT accession=RX1001 examCode=CCHES nhs=*******919" in out  # ...the bridge masks


def test_serve_on_a_port_in_use_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--plain", "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"cris-connect: port {port} on 127.0.0.1 is already in use (another cris-connect or CRIS Connect "
        "program?); stop it, or choose another port with --port or server.port"
    )


def test_serve_without_certificate_says_how_to_make_one(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(f'[server]\ncert = "{tmp_path}/missing.pem"\nkey = "{tmp_path}/missing-key.pem"\n')
    result = run_cli("serve", "--config", str(config), "--port", "0")
    assert result.returncode == 2
    assert "missing.pem" in result.stderr and "cris-connect cert" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_an_unreadable_config() -> None:
    result = run_cli("serve", "--config", "/nonexistent/site.toml")
    assert result.returncode == 2
    assert "config file /nonexistent/site.toml does not exist" in result.stderr


def test_check_config(tmp_path: Path) -> None:
    good = run_cli("check-config", str(ROOT / "examples" / "site.toml"))
    assert good.returncode == 0 and "valid" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nplain = true\n[plugins]\nenabled = ['log', 'nosuch']\n")
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "no plugin named 'nosuch' is installed" in result.stderr


def test_plugins_lists_the_built_in_log_plugin() -> None:
    result = run_cli("plugins")
    assert result.returncode == 0
    assert "log " in result.stdout and "cris-connect" in result.stdout
    assert "on_command" in result.stdout and "on_sent" in result.stdout


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "cris_connect", "serve", "--plain", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("serve never accepted a connection")
        process.terminate()
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "SIGTERM received; shutting down" in err and "stopped" in err
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.anyio
async def test_wss_with_a_certificate_from_the_cert_command(tmp_path: Path) -> None:
    result = run_cli("cert", "--dir", str(tmp_path / "tls"))
    assert result.returncode == 0, result.stderr
    assert "server.pem" in result.stdout
    tls = tmp_path / "tls"
    assert (tls / "server-key.pem").stat().st_mode & 0o077 == 0  # the key is the owner's alone
    config = Config(server=ServerConfig(port=0, cert=tls / "server.pem", key=tls / "server-key.pem"),
                    plugins=PluginsConfig(enabled=[]))
    async with Bridge(config) as bridge:
        assert bridge.url.startswith("wss://localhost:")
        trusted = certs.client_ssl_context(tls / "ca.pem")
        async with cris(bridge.url, ssl_context=trusted) as ws:
            await send_json(ws, {"command": "LOGIN"})
            await bridge.send(Clear())
            assert await recv_json(ws) == {"command": "CLEAR"}
        with pytest.raises(Exception) as refused:
            async with cris(bridge.url, ssl_context=ssl.create_default_context()):
                pass  # a client that has not trusted the CA is refused
        cause = refused.value.__cause__ or refused.value
        assert isinstance(cause, ssl.SSLCertVerificationError), repr(refused.value)


@pytest.mark.anyio
async def test_a_plain_client_on_a_tls_port_is_refused_and_logged(tmp_path: Path, logs) -> None:
    bundle = certs.create_certificates(tmp_path)
    config = Config(server=ServerConfig(port=0, cert=bundle.server.cert_path, key=bundle.server.key_path),
                    plugins=PluginsConfig(enabled=[]))
    async with Bridge(config) as bridge:
        stream = await anyio.connect_tcp("127.0.0.1", bridge.port)
        await stream.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()
        with anyio.fail_after(5):
            while not any("TLS handshake failed" in m for m in logs.messages()):
                await anyio.sleep(0.01)
