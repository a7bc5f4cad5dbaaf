"""`cris-connect doctor`: one pass/fail line per check, each failure with its fix, exit 1 on any."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import io
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from cris_connect import Bridge, certs, hookimpl
from cris_connect import plugins as plugin_loading
from cris_connect.config import Config, PluginsConfig, ServerConfig
from cris_connect.doctor import Check, report, run_checks

ROOT = Path(__file__).parents[2]
CRIS_ORIGIN = "https://cris.example.nhs.uk"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, server: str = "", plugins: str = "enabled = []", port: int | None = None) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f"[server]\nport = {port if port is not None else free_port()}\n"
                    f'allowed_origins = ["{CRIS_ORIGIN}"]\n{server}\n[plugins]\n{plugins}\n')
    return path


def checks_for(path: Path | None) -> dict[str, Check]:
    return {check.name: check for check in run_checks(path)}


def failed(checks: dict[str, Check]) -> dict[str, Check]:
    return {name: check for name, check in checks.items() if not check.ok}


def test_a_ready_plain_workstation_passes(tmp_path: Path) -> None:
    checks = checks_for(write_config(tmp_path, "plain = true", 'enabled = ["log"]'))
    assert not failed(checks)
    assert list(checks) == ["config", "port", "certificate", "allowed origins", "plugin log"]


def test_without_a_config_the_defaults_need_a_certificate() -> None:
    [check] = run_checks(None)
    assert check.name == "config" and not check.ok
    assert "server.cert and server.key are needed for wss://" in check.detail


def test_an_invalid_config_stops_at_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text("[server]\nport = 'nine'\n")
    [check] = run_checks(path)
    assert not check.ok and "server.port: expected an integer, got 'nine'" in check.detail
    assert "check-config" in check.fix


# The port


def test_a_port_held_by_another_program_fails(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("cris_connect.doctor.PROBE_TIMEOUT", 0.5)
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        check = checks_for(write_config(tmp_path, "plain = true", port=port))["port"]
    assert not check.ok and f"127.0.0.1:{port} is in use by another program" in check.detail
    assert "choose another server.port" in check.fix


@pytest.mark.anyio
async def test_a_port_held_by_a_running_bridge_passes(tmp_path: Path) -> None:
    async with Bridge(Config(server=ServerConfig(plain=True, port=0), plugins=PluginsConfig(enabled=[]))) as bridge:
        path = write_config(tmp_path, "plain = true", port=bridge.port)
        checks = await anyio.to_thread.run_sync(checks_for, path)  # doctor blocks; the bridge answers
    assert checks["port"].ok, checks["port"]
    assert f"127.0.0.1:{bridge.port} is held by a running cris-connect" in checks["port"].detail


# The certificate


def tls_config(tmp_path: Path, directory: Path) -> Path:
    return write_config(tmp_path, f'cert = "{directory / "server.pem"}"\nkey = "{directory / "server-key.pem"}"')


def test_a_good_certificate_passes(tmp_path: Path) -> None:
    certs.create_certificates(tmp_path / "tls")
    checks = checks_for(tls_config(tmp_path, tmp_path / "tls"))
    assert not failed(checks)
    assert {"certificate", "certificate names the host", "private key readable by its owner only",
            "CA file"} <= set(checks)


@pytest.mark.anyio
async def test_a_running_wss_bridge_is_recognised(tmp_path: Path) -> None:
    certs.create_certificates(tmp_path / "tls")
    server = ServerConfig(port=0, cert=tmp_path / "tls" / "server.pem", key=tmp_path / "tls" / "server-key.pem")
    async with Bridge(Config(server=server, plugins=PluginsConfig(enabled=[]))) as bridge:
        path = write_config(tmp_path, f'cert = "{server.cert}"\nkey = "{server.key}"', port=bridge.port)
        checks = await anyio.to_thread.run_sync(checks_for, path)
    assert checks["port"].ok and "held by a running cris-connect" in checks["port"].detail


def test_an_expired_certificate_fails_with_the_renew_command(tmp_path: Path) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    certs.create_certificates(tmp_path / "tls", days=10, now=past)
    check = checks_for(tls_config(tmp_path, tmp_path / "tls"))["certificate"]
    assert not check.ok and "expired on" in check.detail
    assert check.fix == f'run `cris-connect cert --dir "{tmp_path / "tls"}" --force`, then restart the bridge'


def test_an_expiring_certificate_fails(tmp_path: Path) -> None:
    certs.create_certificates(tmp_path / "tls", days=20)
    check = checks_for(tls_config(tmp_path, tmp_path / "tls"))["certificate"]
    assert not check.ok and "expires on" in check.detail


def test_a_certificate_for_another_host_fails(tmp_path: Path) -> None:
    certs.create_certificates(tmp_path / "tls", hostnames=("pacs.example",), addresses=())
    check = checks_for(tls_config(tmp_path, tmp_path / "tls"))["certificate names the host"]
    assert not check.ok and "is for pacs.example, not localhost" in check.detail
    assert check.fix.endswith("--force --hostname localhost`")


def test_a_missing_certificate_fails(tmp_path: Path) -> None:
    check = checks_for(tls_config(tmp_path, tmp_path / "nowhere"))["certificate"]
    assert not check.ok and "cris-connect cert" in check.fix


def test_a_private_key_others_can_read_fails(tmp_path: Path) -> None:
    certs.create_certificates(tmp_path / "tls")
    (tmp_path / "tls" / "server-key.pem").chmod(0o644)
    check = checks_for(tls_config(tmp_path, tmp_path / "tls"))["private key readable by its owner only"]
    assert not check.ok and check.fix == f"chmod 600 {tmp_path / 'tls' / 'server-key.pem'}"


def test_the_ca_file_must_be_there_and_must_have_signed_the_certificate(tmp_path: Path) -> None:
    certs.create_certificates(tmp_path / "tls")
    certs.create_certificates(tmp_path / "other")
    (tmp_path / "tls" / "ca.pem").unlink()
    check = checks_for(tls_config(tmp_path, tmp_path / "tls"))["CA file"]
    assert not check.ok and "browsers must trust the CA that signed server.pem" in check.detail
    shutil.copy(tmp_path / "other" / "ca.pem", tmp_path / "tls" / "ca.pem")
    check = checks_for(tls_config(tmp_path, tmp_path / "tls"))["CA file"]
    assert not check.ok and "did not sign" in check.detail


# Origins


@pytest.mark.parametrize(("origins", "detail"), [
    ("[]", "server.allowed_origins is empty"),
    ('["*"]', "any web page the radiologist opens can connect"),
])
def test_origins_must_name_cris(tmp_path: Path, origins: str, detail: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(f"[server]\nplain = true\nport = 0\nallowed_origins = {origins}\n")
    check = checks_for(path)["allowed origins"]
    assert not check.ok and detail in check.detail and "allowed_origins" in check.fix


# Plugins and their own checks


class Archive:
    """A plugin whose downstream answers."""

    @hookimpl
    def doctor_checks(self, config):
        return [Check("archive answers", True, "http://archive answered 200")]


class AsyncViewer:
    @hookimpl
    async def doctor_checks(self, config):
        await anyio.sleep(0)
        return [Check("browser debugging port", False, "127.0.0.1:9222 refused the connection",
                      "start Chromium with --remote-debugging-port=9222")]


class Raising:
    @hookimpl
    def doctor_checks(self, config):
        raise RuntimeError("boom")


class Hanging:
    @hookimpl
    async def doctor_checks(self, config):
        await anyio.sleep_forever()


class Confused:
    @hookimpl
    def doctor_checks(self, config):
        return ["all good"]


class Unstartable:
    def __init__(self) -> None:
        raise OSError("no licence file")


# What the fake entry points below load; an entry point may name a class (one instance per bridge).
archive, viewer, raising, hanging, confused = Archive(), AsyncViewer(), Raising(), Hanging(), Confused()
classy, unstartable = Archive, Unstartable
PLUGINS = ("archive", "viewer", "raising", "hanging", "confused", "classy", "unstartable")


@pytest.fixture
def fake_plugins(monkeypatch) -> None:
    entry_points = {name: importlib.metadata.EntryPoint(name=name, value=f"core.tests.test_doctor:{name}",
                                                        group="cris_connect")
                    for name in PLUGINS}
    real = plugin_loading.installed()
    monkeypatch.setattr(plugin_loading, "installed", lambda: {**real, **entry_points})
    monkeypatch.setattr("cris_connect.doctor.PLUGIN_TIMEOUT", 0.3)


def test_each_plugins_own_checks_are_run_and_named(tmp_path: Path, fake_plugins) -> None:
    path = write_config(tmp_path, "plain = true",
                        'enabled = ["log", "archive", "viewer", "raising", "hanging", "confused", "classy", "unstartable", '
                        '"nosuch"]\n'
                        "[plugins.journl]\npath = 'x'\n")
    checks = checks_for(path)
    assert checks["archive: archive answers"].ok and checks["classy: archive answers"].ok
    assert checks["plugin unstartable"].detail == "plugin 'unstartable' failed to start: OSError: no licence file"
    viewer = checks["viewer: browser debugging port"]
    assert not viewer.ok and viewer.fix == "start Chromium with --remote-debugging-port=9222"
    assert checks["raising: checks"].detail == "doctor_checks raised RuntimeError: boom"
    assert checks["hanging: checks"].detail == "doctor_checks did not finish within 0.3 s"
    assert "returned 'all good', not a cris_connect.doctor.Check" in checks["confused: checks"].detail
    assert "no plugin named 'nosuch' is installed" in checks["plugin nosuch"].detail
    assert not checks["[plugins.journl]"].ok
    assert checks["plugin log"].ok


def test_an_invalid_plugin_section_fails_that_plugin(tmp_path: Path) -> None:
    path = write_config(tmp_path, "plain = true", 'enabled = ["journal"]\n[plugins.journal]\nkeep = 0\n')
    check = checks_for(path)["plugin journal"]
    assert not check.ok and "plugins.journal.keep: must be at least 1, got 0" in check.detail


def test_the_journal_plugin_checks_its_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, "plain = true",
                        f'enabled = ["journal"]\n[plugins.journal]\npath = "{tmp_path / "j" / "journal.jsonl"}"\n')
    assert checks_for(path)["journal: journal folder writable"].ok


# Output and exit code


def test_the_report_prints_a_line_per_check_and_the_fix() -> None:
    out = io.StringIO()
    code = report([Check("port", True, "127.0.0.1:9998 is free"),
                   Check("allowed origins", False, "server.allowed_origins is empty", "set it")], out)
    assert code == 1
    assert out.getvalue().splitlines() == [
        "PASS  port: 127.0.0.1:9998 is free",
        "FAIL  allowed origins: server.allowed_origins is empty",
        "      fix: set it",
        "",
        "1 of 2 checks failed.",
    ]


def test_the_command_exits_non_zero_only_when_a_check_fails(tmp_path: Path) -> None:
    good = write_config(tmp_path, "plain = true")
    result = subprocess.run([sys.executable, "-m", "cris_connect", "doctor", "--config", str(good)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("All 4 checks passed.")
    result = subprocess.run([sys.executable, "-m", "cris_connect", "doctor"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL  config: the defaults (no --config given): server.cert and server.key")
