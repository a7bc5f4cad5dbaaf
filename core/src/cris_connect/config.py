"""The TOML config file: `[server]`, `[logging]`, `[console]`, `[plugins]` and one `[plugins.<name>]`
per adapter.

Loading is strict - a misspelt key is an error, not a silent default - and every error names the
key path and what to write instead (`server.port: expected an integer, got "nine"`). A string
value `"${NAME}"` is read from the environment variable NAME, so secrets stay out of the file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs

T = TypeVar("T")

DEFAULT_PORT = 9998
DEFAULT_CONSOLE_PORT = 9997


class ConfigError(ValueError):
    """A config file or section that cannot be used; the text names the key and the fix."""


@attrs.frozen
class ServerConfig:
    """Where and how the bridge listens. Defaults follow the vendor's examples: loopback, 9998."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: Plain `ws://` instead of `wss://` (the examples' `-http`); only sensible on loopback.
    plain: bool = False
    cert: Path | None = None
    key: Path | None = None
    #: Browser origins allowed to connect, e.g. the trust's CRIS Reporting URL; "*" allows any.
    allowed_origins: tuple[str, ...] = ()
    #: Clients that send no Origin header (not a browser) may connect from loopback.
    allow_no_origin: bool = True
    #: Listening beyond loopback must be asked for explicitly, and needs TLS.
    allow_remote: bool = False
    #: The vendor's C# example uses 64 KiB buffers; CRIS messages are far smaller.
    max_message_size: int = 65536
    max_sessions: int = 64
    #: Connections still sending their opening request; more are closed at once (slow-loris).
    max_pending_handshakes: int = 256
    handshake_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 5.0
    #: Time allowed to deliver a frame to one CRIS client before it is considered dead.
    send_timeout: float = 5.0
    #: Frames per second a session may send; the excess is refused (logged), the session kept.
    #: CRIS sends a few per minute; a page flooding the bridge is not CRIS.
    max_messages_per_second: float = 100.0
    #: Close a session that sent nothing for this long (seconds); None keeps idle sessions,
    #: as CRIS may sit on the worklist all day (pings still detect dead connections).
    idle_timeout: float | None = None
    #: Non-browser clients (no Origin) must send this in the `X-CRIS-Connect-Secret` header.
    shared_secret: str | None = attrs.field(default=None, repr=lambda v: "None" if v is None else "'***'")

    @property
    def scheme(self) -> str:
        return "ws" if self.plain else "wss"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@attrs.frozen
class LoggingConfig:
    level: str = "INFO"
    #: Show NHS and CHI numbers in logs unmasked (off by default: logs leave the ward).
    show_identifiers: bool = False


@attrs.frozen
class ConsoleConfig:
    """The web console (docs/console.md): off by default; served over TLS when `[server]` is."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_CONSOLE_PORT
    #: The CRIS Reporting simulator panel; its origin may then open the CRIS WebSocket.
    simulator: bool = False
    #: The panel that sends DISPLAY / CLEAR to CRIS (for integration testing).
    send_panel: bool = False
    #: `/metrics` in Prometheus text format; needs `pip install cris-connect[metrics]`.
    metrics: bool = False


@attrs.frozen
class PluginsConfig:
    """Which adapters run, and the limits the bridge holds each of them to."""

    enabled: tuple[str, ...] = ("log",)
    #: A hook running longer than this is cancelled and logged.
    hook_timeout: float = 10.0
    #: Commands queued per plugin before the overflow is reported and dropped.
    mailbox_size: int = 1000
    #: At shutdown, time allowed for plugins to finish what is queued.
    drain_timeout: float = 5.0
    #: `[plugins.<name>]` sections, raw until the plugin's config class structures them.
    #: Their values are not shown in the repr: an adapter's section may hold a password.
    settings: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=lambda sections: repr(
        {name: dict.fromkeys(section, "...") for name, section in sections.items()}))


@attrs.frozen
class Config:
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()
    plugins: PluginsConfig = PluginsConfig()
    console: ConsoleConfig = ConsoleConfig()
    #: The file this came from, for messages; None when built in code.
    source: Path | None = None


def _structure_path(value: object, _: type) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a path as a string, got {value!r}")
    return Path(value).expanduser()


def _strict(kind: type[T], noun: str) -> Any:
    def structure(value: object, _: type) -> T:
        # bool is an int in Python; `port = true` is still a mistake.
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return value  # type: ignore[return-value]
            raise ValueError(f"expected {noun}, got {value!r}")
        return value

    return structure


def _structure_names(value: object, _: type) -> tuple[str, ...]:
    # A lone string would otherwise become a tuple of its characters: enabled = "log".
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f'expected a list of strings like ["a", "b"], got {value!r}')
    return tuple(value)


def make_config_converter() -> cattrs.Converter:
    """Strict: unknown keys and wrong types are errors, never coerced."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(Path, _structure_path)
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict(float, "a number"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_names)
    return converter


_converter = make_config_converter()


def _explain(exc: Exception, prefix: str) -> str:
    problems = []
    for line in cattrs.transform_error(exc, path="", format_exception=_format):
        problem, _, where = line.rpartition(" @ ")
        key = ".".join(part for part in (prefix, where.strip(".")) if part)
        key = re.sub(r"\[(\d+)\]", r"[\1]", key)
        problems.append(f"{key}: {problem}" if key else problem)
    return "; ".join(problems)


def _format(exc: BaseException, _: type | None) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key{'s' if len(exc.extra_fields) > 1 else ''} " + ", ".join(
            sorted(exc.extra_fields)
        ) + f" (known keys: {', '.join(f.name for f in attrs.fields(exc.cl))})"
    if isinstance(exc, KeyError):
        return f"required key {exc.args[0]!r} is missing"
    if isinstance(exc, ValueError):
        return str(exc)
    return f"invalid value ({exc})"


def structure(data: Mapping[str, Any], cls: type[T], *, where: str) -> T:
    """Structure one section into `cls`; errors name the key path under `where`.

    An attrs validator's error carries no key; `_locate` finds the field it came from, so an
    adapter's own checks are reported as `plugins.ohif.show: ...` like every other error.
    """
    try:
        return _converter.structure(data, cls)
    except Exception as exc:
        _locate(exc, data, cls)
        raise ConfigError(_explain(exc, where)) from None


def _locate(exc: BaseException, data: object, cls: type) -> None:
    """Attach the key path to validator errors inside `exc` by re-running each field's validator."""
    if not (attrs.has(cls) and isinstance(data, Mapping)):
        return
    errors = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    unplaced = [e for e in errors if not isinstance(e, BaseExceptionGroup) and not _has_path(e)]
    for field in attrs.fields(cls):
        if field.name not in data:
            continue
        if attrs.has(field.type) and isinstance(field.type, type):
            for group in (e for e in errors if isinstance(e, BaseExceptionGroup)):
                if _note_names(group) == {field.name}:
                    _locate(group, data[field.name], field.type)
            continue
        if field.validator is None or not unplaced:
            continue
        try:
            value = _converter.structure(data[field.name], field.type)
            field.validator(None, field, value)
        except Exception as found:
            for error in unplaced:
                if str(error) == str(found):
                    note = cattrs.AttributeValidationNote(f"@ {field.name}", field.name, field.type)
                    error.__notes__ = [*getattr(error, "__notes__", []), note]


def _has_path(exc: BaseException) -> bool:
    return any(isinstance(note, cattrs.AttributeValidationNote) for note in getattr(exc, "__notes__", ()))


def _note_names(exc: BaseException) -> set[str]:
    notes = getattr(exc, "__notes__", ())
    return {note.name for note in notes if isinstance(note, cattrs.AttributeValidationNote)}


def _expand_env(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {key: _expand_env(item, f"{where}.{key}" if where else key) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_env(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value)
        if match:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"{where}: environment variable {name} is not set; set it or write the value"
                )
            return os.environ[name]
    return value


def from_mapping(data: Mapping[str, Any], *, source: Path | None = None) -> Config:
    """Build a Config from parsed TOML (or any mapping of the same shape)."""
    data = _expand_env(dict(data), "")
    unknown = set(data) - {"server", "logging", "plugins", "console"}
    if unknown:
        raise ConfigError(
            f"{', '.join(sorted(unknown))}: unknown section; the sections are [server], [logging], "
            "[console] and [plugins]"
        )
    for section in ("server", "logging", "plugins", "console"):
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"{section}: expected a table ([{section}])")
    plugins = dict(data.get("plugins", {}))
    # Sub-tables of [plugins] are the adapters' own sections, structured later by each adapter.
    settings = {name: plugins.pop(name) for name in list(plugins) if isinstance(plugins[name], dict)}
    config = Config(
        server=structure(data.get("server", {}), ServerConfig, where="server"),
        logging=structure(data.get("logging", {}), LoggingConfig, where="logging"),
        plugins=attrs.evolve(structure(plugins, PluginsConfig, where="plugins"), settings=settings),
        console=structure(data.get("console", {}), ConsoleConfig, where="console"),
        source=source,
    )
    check(config)
    return config


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or a ConfigError saying why it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check the path") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load(path: Path) -> Config:
    """Read and check a config file."""
    data = read_toml(path)
    try:
        return from_mapping(data, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def check(config: Config) -> None:
    """Rules across keys: TLS material, remote listening, sane limits."""
    server = config.server
    if not 0 <= server.port <= 65535:
        raise ConfigError(f"server.port: {server.port} is not a TCP port; use 1025..49151 (default 9998)")
    if not server.plain and (server.cert is None or server.key is None):
        raise ConfigError(
            "server.cert and server.key are needed for wss://; run `cris-connect cert` and set them, "
            "or set server.plain = true (--plain) for ws:// on loopback"
        )
    if not server.is_loopback:
        if not server.allow_remote:
            raise ConfigError(
                f"server.host: {server.host} is not loopback; CRIS runs on the same workstation, so "
                "keep 127.0.0.1, or set server.allow_remote = true (TLS required)"
            )
        if server.plain:
            raise ConfigError(
                f"server.plain: listening on {server.host} beyond loopback needs TLS; set "
                "server.cert and server.key and remove plain"
            )
    for name in ("max_message_size", "max_sessions", "handshake_timeout", "close_timeout", "send_timeout",
                 "max_messages_per_second", "max_pending_handshakes"):
        if getattr(server, name) <= 0:
            raise ConfigError(f"server.{name}: must be greater than 0")
    if config.plugins.mailbox_size <= 0 or config.plugins.hook_timeout <= 0:
        raise ConfigError("plugins.mailbox_size and plugins.hook_timeout: must be greater than 0")
    _check_console(config)


def _check_console(config: Config) -> None:
    console = config.console
    if not console.enabled:
        wanted = [name for name in ("simulator", "send_panel", "metrics") if getattr(console, name)]
        if wanted:
            raise ConfigError(f"console.{wanted[0]}: the console is off; set console.enabled = true")
        return
    if not 0 <= console.port <= 65535:
        raise ConfigError(f"console.port: {console.port} is not a TCP port; use 1025..49151 (default 9997)")
    if console.port and console.port == config.server.port and console.host == config.server.host:
        raise ConfigError(
            f"console.port: {console.port} is the WebSocket's port (server.port); the console needs its "
            "own, e.g. 9997"
        )
    loopback = ServerConfig(host=console.host).is_loopback
    if not loopback and not config.server.allow_remote:
        raise ConfigError(
            f"console.host: {console.host} is not loopback; the console shows who is working on what, so "
            "keep 127.0.0.1, or set server.allow_remote = true (TLS required)"
        )
    if not loopback and config.server.plain:
        raise ConfigError(f"console.host: serving the console on {console.host} beyond loopback needs TLS; "
                          "set server.cert and server.key and remove server.plain")
