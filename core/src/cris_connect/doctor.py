"""`cris-connect doctor`: is this workstation ready for CRIS Reporting? One line per check, with the fix.

Checks, in order: the config file is valid; the port is free (or held by a running cris-connect);
the certificate is there, valid for the host, not expiring, its key private and its CA file beside
it; browser origins are set; every enabled plugin loads and its section is valid; and whatever each
plugin checks through its `doctor_checks` hook (an archive answers, a folder is writable).
Nothing here starts the bridge or changes a file.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import inspect
import json
import os
import socket
import ssl
import stat
import sys
from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import anyio
import attrs
import pluggy
from cryptography import x509

from cris_connect import certs
from cris_connect import config as config_module
from cris_connect import plugins as plugin_loading
from cris_connect.config import Config, ConfigError, ServerConfig

#: Seconds a plugin's `doctor_checks` may take, all of its checks together.
PLUGIN_TIMEOUT = 10.0
#: Seconds to wait for whatever holds the port to answer `GET /healthz`.
PROBE_TIMEOUT = 3.0


@attrs.frozen
class Check:
    """One line of `cris-connect doctor`: what was checked, whether it passed, and the fix."""

    name: str
    ok: bool
    #: What was found, in one sentence: "https://pacs/dcm4chee-arc answered 200 in 35 ms".
    detail: str = ""
    #: What to do when it failed, in one sentence; empty for a passed check.
    fix: str = ""


def run_checks(config_path: Path | None) -> Iterator[Check]:
    """Every check, in order, as each finishes. Stops after a config that cannot be read."""
    try:
        if config_path is None:
            config = Config()
            config_module.check(config)
        else:
            config = config_module.load(config_path)
    except ConfigError as exc:
        where = f"{config_path}" if config_path else "the defaults (no --config given)"
        yield Check("config", False, f"{where}: {exc}",
                    "correct the key named above; `cris-connect check-config FILE` rechecks it")
        return
    source = str(config_path) if config_path else "the defaults (no --config given)"
    yield Check("config", True, f"{source} is valid ({config.server.scheme}://{config.server.host}:"
                                f"{config.server.port}/)")
    yield check_port(config.server)
    yield from check_certificate(config.server)
    yield check_origins(config.server)
    plugin_configs, callers = yield from check_plugins(config)
    for name, plugin_config in plugin_configs.items():
        caller = callers[name].get("doctor_checks")
        if caller is not None:
            yield from plugin_checks(name, caller, plugin_config)


# The port


def check_port(server: ServerConfig) -> Check:
    """Free, or held by a cris-connect that answers /healthz; anything else is in the way."""
    name = "port"
    if server.port == 0:
        return Check(name, True, "port 0: the operating system chooses a free port at start-up")
    where = f"{server.host}:{server.port}"
    try:
        addresses = {(*info[4][:2], info[0]) for info in socket.getaddrinfo(
            server.host, server.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)}
    except socket.gaierror as exc:
        return Check(name, False, f"{server.host} cannot be resolved ({exc.strerror})",
                     "set server.host to 127.0.0.1")
    for host, port, family in sorted(addresses, key=str):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            if os.name != "nt":  # as the bridge's listener does: TIME_WAIT leftovers do not count
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return _port_in_use(server, where)
                if exc.errno == errno.EACCES:
                    return Check(name, False, f"not allowed to listen on port {server.port}",
                                 "use a port above 1024 (server.port, default 9998)")
                if exc.errno == errno.EADDRNOTAVAIL:
                    continue  # e.g. ::1 on a host without IPv6; the bridge binds what it can
                return Check(name, False, f"cannot listen on {where}: {exc.strerror or exc}",
                             "check server.host and server.port")
    return Check(name, True, f"{where} is free")


def _port_in_use(server: ServerConfig, where: str) -> Check:
    health = probe_health(server)
    if health is not None:
        return Check("port", True, f"{where} is held by a running cris-connect {health.get('version', '?')} "
                                   f"({health.get('status')}, {health.get('sessions')} session(s))")
    return Check("port", False, f"{where} is in use by another program (it does not answer /healthz "
                                "as cris-connect does)",
                 "stop that program (another CRIS Connect server?), or choose another server.port")


def probe_health(server: ServerConfig) -> Mapping[str, Any] | None:
    """What a cris-connect on this port answers at /healthz, or None if it is not one."""
    host = "127.0.0.1" if server.host in ("0.0.0.0", "localhost") else server.host  # noqa: S104
    if server.host == "::":
        host = "::1"
    connection: http.client.HTTPConnection
    if server.plain:
        connection = http.client.HTTPConnection(host, server.port, timeout=PROBE_TIMEOUT)
    else:
        # Only asking who is there: nothing secret is sent or read, so the certificate is not checked.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, server.port, timeout=PROBE_TIMEOUT, context=context)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        if response.status != 200:
            return None
        body = json.loads(response.read(65536))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    if isinstance(body, dict) and {"status", "version", "sessions", "plugins"} <= set(body):
        return body
    return None


# TLS


def check_certificate(server: ServerConfig) -> Iterator[Check]:
    """Present, matching its key, valid for the host, not expiring, key private, CA file beside it."""
    name = "certificate"
    if server.plain:
        yield Check(name, True, "not used: plain ws:// on loopback (server.plain)")
        return
    assert server.cert is not None and server.key is not None  # config.check holds this
    try:
        status = certs.check_server_certificate(server.cert, server.key)
    except certs.CertificateError as exc:
        yield Check(name, False, str(exc), "run `cris-connect cert` and set server.cert and server.key")
        return
    renew = f'cris-connect cert --dir "{server.cert.parent}" --force'
    if status.state == "ok":
        yield Check(name, True, status.describe())
    else:
        yield Check(name, False, status.describe(), f"run `{renew}`, then restart the bridge")
    wanted = "localhost" if server.is_loopback else server.host
    if wanted in status.hostnames or wanted in status.addresses:
        yield Check("certificate names the host", True, f"valid for {wanted}")
    else:
        names = ", ".join((*status.hostnames, *status.addresses)) or "no names"
        yield Check("certificate names the host", False,
                    f"{server.cert} is for {names}, not {wanted}; browsers will refuse it",
                    f"run `{renew} --hostname {wanted}`")
    if os.name != "nt":
        mode = stat.S_IMODE(server.key.stat().st_mode)
        if mode & 0o077:
            yield Check("private key readable by its owner only", False,
                        f"{server.key} has mode {mode:03o}: other users can read it",
                        f"chmod 600 {server.key}")
        else:
            yield Check("private key readable by its owner only", True, f"{server.key} has mode {mode:03o}")
    yield check_ca(server.cert)


def check_ca(cert_path: Path) -> Check:
    """The CA browsers must trust: `ca.pem` beside the certificate, and it signed it."""
    name = "CA file"
    ca_path = cert_path.parent / certs.CA_CERT_NAME
    if not ca_path.exists():
        return Check(name, False, f"no {ca_path}: browsers must trust the CA that signed {cert_path.name}",
                     f'run `cris-connect cert --dir "{cert_path.parent}"`, or put your CA certificate there')
    try:
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
        leaf = x509.load_pem_x509_certificate(cert_path.read_bytes())
        leaf.verify_directly_issued_by(ca)
    except Exception as exc:  # unreadable PEM, cryptography's InvalidSignature, a key type mismatch
        return Check(name, False, f"{ca_path} did not sign {cert_path} ({type(exc).__name__})",
                     f'run `cris-connect cert --dir "{cert_path.parent}" --force` and trust the new CA')
    return Check(name, True, f"{ca_path} signed the certificate; trust it in the browser once")


def check_origins(server: ServerConfig) -> Check:
    name = "allowed origins"
    if "*" in server.allowed_origins:
        return Check(name, False, 'server.allowed_origins has "*": any web page the radiologist opens can '
                                  "connect and read what CRIS sends",
                     'set server.allowed_origins to CRIS Reporting\'s origin only, e.g. ["https://cris.example.nhs.uk"]')
    if not server.allowed_origins:
        return Check(name, False, "server.allowed_origins is empty: CRIS Reporting in a browser is refused",
                     'set server.allowed_origins = ["https://<your CRIS Reporting address>"]')
    return Check(name, True, ", ".join(server.allowed_origins))


# Plugins


PluginCallers = dict[str, dict[str, pluggy.HookCaller]]


def check_plugins(config: Config) -> Generator[Check, None, tuple[dict[str, Any], PluginCallers]]:
    """One line per enabled plugin: it imports, its hooks are known, its section is valid.

    Returns (to `yield from`) each valid plugin's structured config and its hook callers.
    """
    manager = plugin_loading.make_plugin_manager()
    entry_points = plugin_loading.installed()
    loaded: dict[str, object] = {}
    for name in config.plugins.enabled:
        try:
            plugin = plugin_loading.load_entry_point(name, entry_points)
            if isinstance(plugin, type):  # as the bridge does: an entry point naming a class
                plugin = plugin()
            manager.register(plugin, name=name)
        except plugin_loading.PluginError as exc:
            yield Check(f"plugin {name}", False, str(exc), "fix or reinstall the plugin's package, "
                                                          "or remove it from plugins.enabled")
            continue
        except (ValueError, pluggy.PluginValidationError) as exc:
            yield Check(f"plugin {name}", False, f"plugin {name!r} cannot be registered: {exc}",
                        "list it once in plugins.enabled; see docs/hooks.md for hook names")
            continue
        except Exception as exc:  # the adapter class's constructor failed
            yield Check(f"plugin {name}", False,
                        f"plugin {name!r} failed to start: {type(exc).__name__}: {exc}",
                        "fix or reinstall the plugin's package, or remove it from plugins.enabled")
            continue
        loaded[name] = plugin
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        yield Check("plugin hooks", False, str(exc), "see docs/hooks.md for the hook names")
        return {}, {}
    unused = sorted(set(config.plugins.settings) - set(config.plugins.enabled))
    for name in unused:
        yield Check(f"[plugins.{name}]", False, "section for a plugin that is not enabled",
                    "add it to plugins.enabled or remove the section")
    configs: dict[str, Any] = {}
    callers: PluginCallers = {}
    for name, plugin in loaded.items():
        callers[name] = plugin_loading.callers_for(manager, plugin)
        try:
            configs[name] = plugin_loading.plugin_config(
                name, callers[name], config.plugins.settings.get(name, {})
            )
        except ConfigError as exc:
            yield Check(f"plugin {name}", False, f"loads, but its section is invalid: {exc}",
                        f"correct [plugins.{name}]")
            continue
        yield Check(f"plugin {name}", True, "loads; " + (
            f"[plugins.{name}] is valid" if name in config.plugins.settings else "no section needed"))
    return configs, callers


def plugin_checks(name: str, caller: pluggy.HookCaller, config: Any) -> list[Check]:
    """Call one plugin's `doctor_checks` (plain or async), within PLUGIN_TIMEOUT."""

    async def call() -> list[Check]:
        with anyio.fail_after(PLUGIN_TIMEOUT):
            checks: list[Check] = []
            for result in caller(config=config):
                if inspect.isawaitable(result):
                    result = await result
                checks.extend(_as_checks(result))
            return checks

    try:
        checks = anyio.run(call)
    except TimeoutError:
        return [Check(f"{name}: checks", False, f"doctor_checks did not finish within {PLUGIN_TIMEOUT:g} s",
                      f"check what plugin {name} connects to; report a hang to its authors")]
    except Exception as exc:
        return [Check(f"{name}: checks", False, f"doctor_checks raised {type(exc).__name__}: {exc}",
                      f"a bug in plugin {name}; report it to its authors")]
    return [attrs.evolve(check, name=f"{name}: {check.name}") for check in checks]


def _as_checks(result: object) -> Iterable[Check]:
    if result is None:
        return []
    if isinstance(result, Check):
        return [result]
    items: list[Check] = []
    for item in result:  # type: ignore[attr-defined]
        if not isinstance(item, Check):
            raise TypeError(f"doctor_checks returned {item!r}, not a cris_connect.doctor.Check")
        items.append(item)
    return items


# The command


def report(checks: Iterable[Check], out: TextIO) -> int:
    """Print each check as it comes; the exit code is 1 when any failed."""
    total = failed = 0
    for check in checks:
        total += 1
        failed += not check.ok
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}".rstrip(": "), file=out,
              flush=True)
        if not check.ok and check.fix:
            print(f"      fix: {check.fix}", file=out, flush=True)
    if failed:
        print(f"\n{failed} of {total} checks failed.", file=out)
        return 1
    print(f"\nAll {total} checks passed.", file=out)
    return 0


def add_command(commands: Any) -> None:
    """`cris-connect doctor`: add the subcommand to the CLI's subparsers."""
    parser = commands.add_parser("doctor", help="check this workstation is ready: config, port, "
                                                "certificate, origins, plugins and what they drive")
    parser.add_argument("--config", "-c", help="TOML config file (as given to `serve`)")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    return report(run_checks(Path(args.config) if args.config else None), out or sys.stdout)
