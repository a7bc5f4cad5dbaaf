"""The `filedrop` plugin: glue between the bridge's hooks and the outbox writer and inbox reader.

The entry point loads the `filedrop` object below. A `FileDrop` serves one bridge at a time (its
hooks are not told which bridge called them); to embed several bridges in one process, give each
its own `FileDrop()` in `Bridge(config, plugins=[...])`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cris_connect import Bridge, hookimpl
from cris_connect.context import Context
from cris_connect.masking import describe
from cris_connect.messages import CrisCommand, UnknownCommand
from cris_connect.session import Session
from cris_connect_filedrop.config import FiledropConfig
from cris_connect_filedrop.formats import Received, Renderer, make_renderer
from cris_connect_filedrop.inbox import InboxReader
from cris_connect_filedrop.outbox import OutboxFile, OutboxWriter
from cris_connect_filedrop.watch import FolderWatch

log = logging.getLogger("cris_connect_filedrop")


class FileDrop:
    """CRIS commands out as files (`outbox`), command files in (`inbox`)."""

    name = "filedrop"

    def __init__(self) -> None:
        self.config: FiledropConfig | None = None
        self.outbox: OutboxWriter | None = None
        self.inbox: InboxReader | None = None
        #: What was still queued for the outbox at the last shutdown (also logged).
        self.lost_at_shutdown: list[OutboxFile] = []
        self._render: Renderer | None = None
        self._commands: frozenset[str] = frozenset()
        self._show_identifiers = False

    @hookimpl
    def register_config_class(self) -> type:
        return FiledropConfig

    @hookimpl
    def bridge_started(self, bridge: Bridge, config: FiledropConfig) -> None:
        self.config = config
        self._show_identifiers = bridge.config.logging.show_identifiers
        self.outbox = self.inbox = None
        self.lost_at_shutdown = []
        if config.outbox is not None:
            self._render = make_renderer(config)
            self._commands = frozenset(name.upper() for name in config.commands)
            self.outbox = OutboxWriter(
                config.outbox, extension=config.outbox_extension,
                retry_initial=config.retry_initial, retry_max=config.retry_max,
            )
            bridge.start_soon(self.outbox.run, name="filedrop outbox")
        if config.inbox is not None:
            watch = FolderWatch(config.inbox, poll=config.poll, poll_interval=config.poll_interval)
            self.inbox = InboxReader(
                config.inbox, bridge, encoding=config.encoding, settle_time=config.settle_time,
                session_wait=config.session_wait, watch=watch, show_identifiers=self._show_identifiers,
            )
            bridge.start_soon(self.inbox.run, name="filedrop inbox")
        log.info(
            "filedrop: %s%s%s",
            f"outbox {config.outbox} ({config.format}: {', '.join(sorted(self._commands))})"
            if self.outbox else "",
            "; " if self.outbox and self.inbox else "",
            f"inbox {config.inbox} ({'polled' if self.inbox.watch.polling else 'watched'})"
            if self.inbox else "",
        )

    @hookimpl
    def on_command(self, message: CrisCommand | UnknownCommand, context: Context, session: Session) -> None:
        if self.outbox is None or self._render is None or not isinstance(message, CrisCommand):
            return
        if message.command not in self._commands:
            return
        assert self.config is not None
        name, received, sequence = self.outbox.next_name(message.command, datetime.now(UTC))
        text = self._render(Received(message, session.id, received, sequence))
        self.outbox.put(OutboxFile(
            name=name,
            content=text.encode(self.config.encoding, errors="replace"),
            what=describe(message, show_identifiers=self._show_identifiers),
        ))

    @hookimpl
    def session_opened(self, session: Session) -> None:
        if self.inbox is not None:
            self.inbox.session_opened()

    @hookimpl
    async def bridge_stopping(self, bridge: Bridge) -> None:
        if self.inbox is not None:
            self.inbox.watch.stop()
        if self.outbox is not None:
            self.lost_at_shutdown = await self.outbox.close()


#: The entry point's target (`filedrop = "cris_connect_filedrop.plugin:filedrop"`).
filedrop = FileDrop()

__all__ = ["FileDrop", "filedrop"]
