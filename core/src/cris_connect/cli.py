"""`cris-connect`: serve, demo, cert, check-config, plugins, doctor, journal.

Every failure a user can cause ends in one line that says what is wrong and how to fix it, and a
non-zero exit code; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from cris_connect import config as config_module
from cris_connect import plugins as plugin_loading
from cris_connect.__about__ import __version__
from cris_connect.bridge import Bridge
from cris_connect.config import Config, ConfigError, ServerConfig
from cris_connect.dispatch import StartupFailed
from cris_connect.plugins import PluginError
from cris_connect.server import StartupError

USER_ERRORS = (ConfigError, PluginError, StartupError, StartupFailed)


def _load(args: argparse.Namespace) -> Config:
    """The config file (if any) with command-line overrides applied."""
    data = config_module.read_toml(Path(args.config)) if args.config is not None else {}
    server = dict(data.get("server", {}))
    for key in ("host", "port"):
        if getattr(args, key, None) is not None:
            server[key] = getattr(args, key)
    if getattr(args, "plain", False):
        server["plain"] = True
    data = {**data, "server": server}
    try:
        return config_module.from_mapping(data, source=Path(args.config) if args.config else None)
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}" if args.config else str(exc)) from None


def configure_logging(level: str, *, verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


async def _serve_until_signal(config: Config, plugins: Sequence[object] = (),
                              after_start: Callable[[Bridge], object] | None = None) -> None:
    async with Bridge(config, plugins=plugins) as bridge:
        if after_start is not None:
            await after_start(bridge)  # type: ignore[misc]
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                logging.getLogger("cris_connect").info(
                    "%s received; shutting down", signal.Signals(signum).name
                )
                break


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    configure_logging(config.logging.level, verbose=args.verbose)
    anyio.run(_serve_until_signal, config, backend=args.backend)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cris_connect import demo

    configure_logging("WARNING", verbose=args.verbose)
    config = Config(server=ServerConfig(host="127.0.0.1", port=args.port, plain=True))
    anyio.run(demo.run, config, not args.once, backend=args.backend)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = config_module.load(Path(args.file))
    manager = plugin_loading.make_plugin_manager()
    loaded = plugin_loading.register(manager, config.plugins)
    plugin_loading.check_sections(config.plugins, loaded)
    for name, plugin in loaded.items():
        callers = plugin_loading.callers_for(manager, plugin)
        plugin_loading.plugin_config(name, callers, config.plugins.settings.get(name, {}))
    if not config.server.plain:
        from cris_connect.tls import server_context

        server_context(config.server)
    print(f"{args.file}: valid ({config.server.scheme}://{config.server.host}:{config.server.port}/, "
          f"plugins: {', '.join(loaded) or 'none'})")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    entry_points = plugin_loading.installed()
    if not entry_points:
        print("no plugins installed")
        return 0
    for name in sorted(entry_points):
        info = plugin_loading.Available.from_entry_point(entry_points[name])
        try:
            manager = plugin_loading.make_plugin_manager()
            plugin = plugin_loading.load_entry_point(name, entry_points)
            manager.register(plugin, name=name)
            hooks = ", ".join(plugin_loading.implemented_hooks(manager, plugin)) or "no hooks"
        except Exception as exc:  # listing must go on past one broken plugin
            hooks = f"FAILS TO LOAD: {exc}"
        print(f"{name:<12} {info.distribution or '?'} {info.version or '?'}  ({info.target})\n"
              f"{'':<12} hooks: {hooks}")
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    from cris_connect import certs  # cryptography costs start-up time; only `cert` needs it here

    try:
        bundle = certs.create_certificates(
            Path(args.dir), hostnames=args.hostname or ("localhost",), force=args.force
        )
    except certs.CertificateError as exc:
        print(f"cris-connect: {exc}", file=sys.stderr)
        return 2
    print(f"{'Reused' if bundle.ca_reused else 'Made'} the local CA: {bundle.ca.cert_path}")
    print(f"Made the server certificate: {bundle.server.cert_path} (key {bundle.server.key_path})")
    print("\nIn the config file:\n  [server]\n"
          f'  cert = "{bundle.server.cert_path}"\n  key = "{bundle.server.key_path}"\n')
    print(certs.trust_instructions(bundle.ca.cert_path))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cris-connect", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cris-connect {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the bridge")
    serve.add_argument("--config", "-c", help="TOML config file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 9998)")
    serve.add_argument("--plain", action="store_true", help="ws:// instead of wss:// (loopback only)")
    serve.set_defaults(func=cmd_serve)

    demo = commands.add_parser("demo", help="run the bridge and a scripted CRIS Reporting session")
    demo.add_argument("--port", type=int, default=config_module.DEFAULT_PORT)
    demo.add_argument("--once", action="store_true", help="stop after the script instead of serving")
    demo.set_defaults(func=cmd_demo)

    for sub in (serve, demo):
        sub.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
        sub.add_argument("--verbose", "-v", action="store_true")

    check = commands.add_parser("check-config", help="validate a config file and its plugins' sections")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    listing = commands.add_parser("plugins", help="list installed plugins and the hooks they implement")
    listing.set_defaults(func=cmd_plugins)

    cert = commands.add_parser("cert", help="make a local CA and a localhost server certificate")
    cert.add_argument("--dir", default=str(Path.home() / ".cris-connect" / "tls"))
    cert.add_argument("--hostname", action="append", help="extra name for the certificate (repeatable)")
    cert.add_argument("--force", action="store_true", help="replace an existing server certificate")
    cert.set_defaults(func=cmd_cert)

    # `doctor` and `journal` keep their arguments and output next to what they check and read.
    from cris_connect import doctor
    from cris_connect.builtin import journal

    doctor.add_command(commands)
    journal.add_command(commands)

    # Other distributions add commands (the SDK: `simulate`, `new-adapter`) through an entry point
    # whose target takes this subparsers object and adds its parser with `set_defaults(func=...)`.
    for entry_point in importlib.metadata.entry_points(group="cris_connect.commands"):
        try:
            entry_point.load()(commands)
        except Exception as exc:  # a broken extra command must not take the others down
            print(f"cris-connect: command {entry_point.name!r} unavailable: {exc}", file=sys.stderr)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except USER_ERRORS as exc:
        print(f"cris-connect: {exc}", file=sys.stderr)
        return 2

    except ValueError as exc:  # bad arguments to `cert` (an invalid address, say)
        print(f"cris-connect: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

