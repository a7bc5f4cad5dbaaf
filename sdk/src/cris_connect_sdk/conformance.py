"""The adapter conformance kit: what every adapter must do to be safe on a radiologist's workstation.

An adapter package runs it against itself by subclassing, in its own tests:

    from cris_connect_sdk.conformance import AdapterConformance

    class TestConformance(AdapterConformance):
        plugin_name = "myviewer"                       # its entry point in group `cris_connect`
        example_config = {"url": "http://localhost:3000"}   # its documented [plugins.myviewer]

(or `pytest --cris-conformance myviewer`). The adapter is loaded from its entry point, exactly as
`cris-connect serve` would load it, and driven by a simulated CRIS Reporting over a real socket.
Every failure says what the adapter did and what to change.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from cris_connect import Bridge, ConfigError, Login, hookimpl
from cris_connect import plugins as plugin_loading
from cris_connect.config import PluginsConfig
from cris_connect.messages import CrisCommand, UnknownCommand
from cris_connect_sdk.bridges import CrisBridges
from cris_connect_sdk.recorder import HookRecorder
from cris_connect_sdk.simulator import CrisReporting

#: Hooks that CRIS commands reach; the kit checks each one the adapter implements is called.
COMMAND_HOOKS = ("on_command", "on_event", "on_readonly", "on_commit", "on_release", "on_login",
                 "on_logout", "on_unknown_command", "on_refused")


#: What the kit sends as a LOGIN password when it is not checking for leaks.
TEST_PASSWORD = "not-a-real-password"  # noqa: S105 - test data, sent to the adapter under test


async def radiologist_session(cris: CrisReporting, *, password: str = TEST_PASSWORD) -> None:
    """Every command CRIS sends, then what CRIS should never send but might: all of it must be survived."""
    await cris.login(username="conformance", password=password)
    await cris.open_report("CONF001", exam_code="CCHES", nhs="9434765919")
    await cris.select_exam("CONF001", exam_code="CCHES", nhs="9434765919")
    await cris.open_historic(["CONF000"], exam_code="XCHES", chi="0101011234")
    await cris.save_report("CONF001")
    await cris.open_report(["CONF002", "CONF003"], exam_code="MHEAD")
    await cris.skip_report(["CONF002", "CONF003"])
    await cris.send_text('{"command":"PREFETCH","accession":["CONF004"],"priority":1}')  # unknown
    await cris.send_text('{"command":"EVENT","accession":[12345]}')  # a malformed field
    await cris.send_text("not JSON at all")
    await cris.logout()


class _Witness:
    """Another plugin on the same bridge: notes when each command reaches it."""

    name = "conformance-witness"

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.changed = anyio.Event()

    @hookimpl
    def on_command(self, message: CrisCommand | UnknownCommand) -> None:
        self.arrived.append(time.monotonic())
        self.changed.set()
        self.changed = anyio.Event()


def _records(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(logger) and r.levelno >= level]


def _lines(records: list[logging.LogRecord]) -> str:
    def line(record: logging.LogRecord) -> str:
        text = f"  {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        return text

    return "\n".join(line(record) for record in records)


class AdapterConformance:
    """Subclass as `class TestConformance(AdapterConformance)` and set the attributes below."""

    #: The adapter's entry-point name in group `cris_connect` (`[project.entry-points.cris_connect]`).
    plugin_name: ClassVar[str] = ""
    #: Its documented `[plugins.<name>]` section: a mapping, or the path of a TOML config file that
    #: has one (the example file the README shows). None for an adapter that takes no settings.
    example_config: ClassVar[Mapping[str, Any] | Path | None] = None
    #: A section it must refuse. The default, an unknown key, is refused by any adapter that
    #: declares its settings with `register_config_class`; give a wrong type to test more.
    broken_config: ClassVar[Mapping[str, Any]] = {"no_such_setting": "conformance"}
    #: The key path the refusal must name; defaults to `plugins.<name>`.
    broken_config_key: ClassVar[str | None] = None
    #: How long the adapter may make another plugin wait, in seconds.
    blocking_allowance: ClassVar[float] = 0.5
    #: Shutdown must finish within this (the bridge's default `plugins.drain_timeout`).
    shutdown_within: ClassVar[float] = 5.0

    # Helpers an adapter's own tests may use too

    def settings(self) -> dict[str, Any]:
        """The example `[plugins.<name>]` section as a dict."""
        example = self.example_config
        if example is None:
            return {}
        if isinstance(example, Path):
            data = tomllib.loads(example.read_text(encoding="utf-8"))
            section = data.get("plugins", {}).get(self.plugin_name)
            if section is None:
                pytest.fail(f"{example} has no [plugins.{self.plugin_name}] section; add the adapter's "
                            "documented example settings there, or set example_config to a mapping")
            return dict(section)
        return dict(example)

    @contextlib.asynccontextmanager
    async def running(
        self, *extra_plugins: object, **limits: Any
    ) -> AsyncIterator[tuple[Bridge, CrisReporting]]:
        """The adapter, loaded from its entry point with its example config, and a connected CRIS."""
        if not self.plugin_name:
            pytest.fail(f"{type(self).__name__}: set plugin_name to the adapter's entry-point name")
        async with contextlib.AsyncExitStack() as stack:
            bridges = CrisBridges(stack, self._recorder)
            config = {"plugins": {"enabled": [self.plugin_name], **limits,
                                  self.plugin_name: self.settings()}}
            bridge = await bridges.start(*extra_plugins, config=config)
            cris = await bridges.connect(bridge)
            yield bridge, cris

    _recorder: HookRecorder | None = None

    @pytest.fixture(autouse=True)
    def _cris_conformance_recorder(self, hook_recorder: HookRecorder) -> None:
        self._recorder = hook_recorder

    # The checks

    def test_loads_from_its_entry_point(self) -> None:
        name = self.plugin_name
        if not name:
            pytest.fail(f"{type(self).__name__}: set plugin_name to the adapter's entry-point name")
        installed = plugin_loading.installed()
        if name not in installed:
            pytest.fail(
                f"no entry point {name!r} in group 'cris_connect' (installed: "
                f"{', '.join(sorted(installed)) or 'none'}); declare it in pyproject.toml:\n"
                f'  [project.entry-points.cris_connect]\n  {name} = "your_package.adapter:adapter"\n'
                "then reinstall the package (pip install -e .)"
            )
        try:
            plugin = plugin_loading.load_entry_point(name, installed)
            manager = plugin_loading.make_plugin_manager()
            plugin_loading.register(manager, PluginsConfig(enabled=()), [plugin])
        except plugin_loading.PluginError as exc:
            pytest.fail(str(exc))
        hooks = plugin_loading.implemented_hooks(manager, plugin)
        if not hooks:
            pytest.fail(f"{name} implements no hook; mark its methods with @cris_connect.hookimpl "
                        "and use the hook names in docs/writing-an-adapter.md")

    @pytest.mark.anyio
    async def test_accepts_its_example_config(self) -> None:
        try:
            async with self.running():
                pass
        except ConfigError as exc:
            pytest.fail(f"{self.plugin_name} refused its own example config {self.settings()!r}: {exc}. "
                        "The documented example and the config class disagree; fix one of them")

    @pytest.mark.anyio
    async def test_refuses_a_broken_config_with_the_key_path(self) -> None:
        name = self.plugin_name
        key = self.broken_config_key or f"plugins.{name}"
        broken = {**self.settings(), **self.broken_config}
        async with contextlib.AsyncExitStack() as stack:
            try:
                await CrisBridges(stack).start(
                    config={"plugins": {"enabled": [name], name: broken}}
                )
            except ConfigError as exc:
                if key not in str(exc):
                    pytest.fail(f"{name} refused the broken config {broken!r}, but its message does "
                                f"not name the key {key!r}: {exc}")
                return
        pytest.fail(
            f"{name} accepted the broken config {broken!r}; declare its settings as an attrs class "
            "returned from the register_config_class hook, so the bridge refuses unknown keys and "
            f"wrong types with their key path ({key}...) before start-up"
        )

    @pytest.mark.anyio
    async def test_every_command_reaches_it_without_an_exception(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        name = self.plugin_name
        caplog.set_level(logging.INFO)
        async with self.running() as (bridge, cris):
            await radiologist_session(cris)
            await bridge.aclose()  # drains every plugin's mailbox: all hooks have now run
            runner = bridge.runners[name]
        errors = _records(caplog, f"cris_connect.plugins.{name}", logging.ERROR)
        if runner.failures or errors:
            pytest.fail(
                f"{name}'s hooks failed {runner.failures} time(s) during an ordinary CRIS session:\n"
                f"{_lines(errors)}\nA hook must handle its own errors (an unreachable viewer, a "
                "command without an accession): catch them and log one line that says what failed "
                "and why. The bridge goes on, but the radiologist's screen is left behind"
            )
        assert self._recorder is not None
        missed = [hook for hook in COMMAND_HOOKS if runner.implements(hook)
                  and not self._recorder.calls_of(hook, plugin=name)]
        if missed:
            pytest.fail(f"{name} implements {', '.join(missed)} but the bridge never called them in a "
                        "session that sends every command; check the hook signatures")

    @pytest.mark.anyio
    async def test_does_not_block_another_plugin(self, caplog: pytest.LogCaptureFixture) -> None:
        name = self.plugin_name
        caplog.set_level(logging.INFO)
        witness = _Witness()
        delays: list[float] = []
        async with self.running(witness) as (_, cris):
            # The same commands as a session, one at a time, timing how long the witness waits.
            # (action, how many commands it sends)
            steps: list[tuple[Callable[[], Awaitable[None]], int]] = [
                (lambda: cris.login(username="conformance", password=TEST_PASSWORD), 1),
                (lambda: cris.open_report("CONF001", exam_code="CCHES", nhs="9434765919"), 1),
                (lambda: cris.open_historic("CONF000"), 1),
                (lambda: cris.save_report("CONF001"), 2),
                (lambda: cris.skip_report("CONF002"), 1),
                (lambda: cris.send_text('{"command":"PREFETCH"}'), 1),
                (lambda: cris.logout(), 1),
            ]
            for step, commands in steps:
                wanted = len(witness.arrived) + commands
                sent = time.monotonic()
                await step()
                with anyio.move_on_after(self.blocking_allowance + 10):
                    while len(witness.arrived) < wanted:
                        await witness.changed.wait()
                arrived = witness.arrived[-1] if len(witness.arrived) >= wanted else time.monotonic()
                delays.append(arrived - sent)
        blocked = [r for r in _records(caplog, f"cris_connect.plugins.{name}", logging.WARNING)
                   if "blocked the event loop" in r.getMessage()]
        worst = max(delays)
        if worst > self.blocking_allowance or blocked:
            pytest.fail(
                f"{name} made another plugin wait {worst:.2f} s for a CRIS command (allowed: "
                f"{self.blocking_allowance:g} s):\n{_lines(blocked)}\nA sync hook runs on the event "
                "loop that serves every plugin and CRIS session: make it `async def` and await, or "
                "move blocking work (HTTP calls, file I/O, time.sleep) to anyio.to_thread.run_sync"
            )

    @pytest.mark.anyio
    async def test_shuts_down_within_5_s(self, caplog: pytest.LogCaptureFixture) -> None:
        name = self.plugin_name
        caplog.set_level(logging.INFO)
        async with self.running(drain_timeout=self.shutdown_within) as (bridge, cris):
            await radiologist_session(cris)
            started = time.monotonic()
            await bridge.aclose()
            took = time.monotonic() - started
        overran = [r for r in caplog.records if "did not finish within" in r.getMessage()]
        if took > self.shutdown_within or overran:
            pytest.fail(
                f"{name} kept the bridge from stopping for {took:.1f} s (allowed "
                f"{self.shutdown_within:g} s):\n{_lines(overran)}\nbridge_stopping must return "
                "promptly and hooks must be cancellable (await, don't block); start long-running "
                "work with bridge.start_soon so the bridge can cancel it"
            )

    @pytest.mark.anyio
    async def test_never_logs_a_password(self, caplog: pytest.LogCaptureFixture,
                                         capfd: pytest.CaptureFixture[str]) -> None:
        name = self.plugin_name
        caplog.set_level(logging.DEBUG)
        password = f"conformance-{secrets.token_hex(6)}"
        async with self.running() as (bridge, cris):
            await radiologist_session(cris, password=password)
            await cris.send_text(f'{{"command":"LOGIN","username":"x","password":"{password}","pin":1}}')
            await bridge.send(Login(username="conformance", password=password))
            await bridge.aclose()
        leaks = [r for r in caplog.records if password in r.getMessage()
                 or (r.exc_info and password in logging.Formatter().formatException(r.exc_info))]
        output = capfd.readouterr()
        where = [f"  {r.levelname} {r.name}: {r.getMessage().replace(password, '<password>')}" for r in leaks]
        where += [f"  {stream}" for stream, text in (("stdout", output.out), ("stderr", output.err))
                  if password in text]
        if where:
            pytest.fail(
                f"{name} wrote the password from a LOGIN to the logs or the console:\n"
                + "\n".join(where)
                + "\nNever log message.password, the raw frame or a message's fields one by one; "
                "log cris_connect.masking.describe(message), which leaves passwords out"
            )

