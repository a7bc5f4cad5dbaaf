"""The bridge as a benchmark target: `python -m benchmarks.bridge_target --backend trio --plugins 5`.

Runs `Bridge` in its own process (so the load client never shares its event loop) with plugins that
use only the public API: `answer` replies to each EVENT with a DISPLAY through `bridge.send`, the
`--plugins` count is made up with listeners that implement `on_event` and do nothing, and
`--sleeper` adds a sibling that sleeps 5 s on every command (the isolation figure). Prints
`{"port": N, "pid": N}` on stdout once listening; SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import attrs

from benchmarks.load import raise_open_file_limit
from cris_connect import Bridge, Config, Display, Event, ServerConfig, Session, hookimpl
from cris_connect.config import PluginsConfig


class Answer:
    """What a viewer adapter does at its simplest: EVENT in, DISPLAY of the same accession out."""

    name = "answer"

    @hookimpl
    def bridge_started(self, bridge: Bridge) -> None:
        self.bridge = bridge

    @hookimpl
    async def on_event(self, message: Event, session: Session) -> None:
        await self.bridge.send(Display(accession=message.accession), to=session)


class Listener:
    """A plugin that implements the EVENT hook and does nothing: pure dispatch cost."""

    def __init__(self, index: int) -> None:
        self.name = f"listener-{index}"

    @hookimpl
    async def on_event(self, message: Event) -> None:
        pass


class Sleeper:
    """A slow sibling: 5 s per command, as an adapter waiting on an unreachable archive would."""

    name = "sleeper"

    @hookimpl
    async def on_event(self, message: Event) -> None:
        await anyio.sleep(5)


def bench_plugins(count: int, sleeper: bool) -> list[object]:
    plugins: list[object] = [Answer(), *(Listener(i) for i in range(1, count))]
    return [*plugins, Sleeper()] if sleeper else plugins


async def serve(config: Config, plugins: list[object]) -> None:
    async with Bridge(config, plugins=plugins) as bridge:
        print(json.dumps({"port": bridge.port, "pid": os.getpid()}), flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bridge_target")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--plugins", type=int, default=1, help="plugins implementing on_event (>= 1)")
    parser.add_argument("--sleeper", action="store_true", help="add a sibling that sleeps 5 s per command")
    parser.add_argument("--max-sessions", type=int, default=64)
    parser.add_argument("--enable", action="append", default=[], help="an installed adapter to enable")
    parser.add_argument("--setting", action="append", default=[], metavar="PLUGIN.KEY=VALUE")
    parser.add_argument("--profile", type=Path, help="write a pyinstrument profile (HTML) here at exit")
    args = parser.parse_args(argv)
    raise_open_file_limit()
    settings: dict[str, dict[str, Any]] = {}
    for item in args.setting:
        key, _, value = item.partition("=")
        plugin, _, name = key.partition(".")
        settings.setdefault(plugin, {})[name] = value
    server = {
        "plain": True, "port": 0, "max_sessions": args.max_sessions,
        # The per-session rate limit (100 frames/s by default) guards against a page flooding the
        # bridge; the benchmark measures capacity, so it is lifted (its check still runs).
        "max_messages_per_second": 1e9,
    }
    known = attrs.fields_dict(ServerConfig)  # the core may not have every option yet
    config = Config(
        server=ServerConfig(**{key: value for key, value in server.items() if key in known}),
        plugins=PluginsConfig(
            enabled=tuple(args.enable),
            # The sleeper queues one command per round trip; the isolation figure is about its
            # sibling's latency, not about overflow, so its mailbox must not fill during a run.
            **({"mailbox_size": 1_000_000} if args.sleeper else {}),
            drain_timeout=1.0,
            settings=settings,
        ),
    )
    plugins = bench_plugins(args.plugins, args.sleeper) if not args.enable else []
    if args.profile is None:
        anyio.run(serve, config, plugins, backend=args.backend)
        return 0
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    with profiler:
        anyio.run(serve, config, plugins, backend=args.backend)
    args.profile.write_text(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
