"""The pluggy side: hook implementations that hand each command to the running `OhifAdapter`."""

from __future__ import annotations

import logging
import webbrowser
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cris_connect import Clear, Logout, hookimpl
from cris_connect_ohif.adapter import OhifAdapter
from cris_connect_ohif.config import OhifConfig

if TYPE_CHECKING:
    from cris_connect import Bridge, Context, Event, LoggedOut, PacsCommand, ReadOnly, Release, Session
    from cris_connect.studies import StudyLookup

log = logging.getLogger("cris_connect_ohif")


class OhifPlugin:
    """The `ohif` adapter. The entry point names this class, so each bridge gets its own instance;
    code that embeds a bridge may pass `plugins=[OhifPlugin()]` instead of enabling it by name."""

    def __init__(self, name: str = "ohif", *, opener: Callable[[str], bool] = webbrowser.open) -> None:
        self.name = name
        self.opener = opener
        self.adapter: OhifAdapter | None = None

    @hookimpl
    def register_config_class(self) -> type:
        return OhifConfig

    @hookimpl
    def bridge_started(self, bridge: Bridge, config: Any) -> None:
        if config is None:
            raise ValueError(f"plugins.{self.name}: the section is missing; add [plugins.{self.name}] "
                             'with at least url = "https://your-ohif-server"')
        if self.adapter is not None and self.adapter.bridge is not bridge:
            raise RuntimeError(
                f"the {self.name} plugin object is already running in another bridge; give each bridge "
                "its own: Bridge(config, plugins=[OhifPlugin()])"
            )
        hook_timeout = bridge.config.plugins.hook_timeout
        if config.command_timeout >= hook_timeout:
            log.warning("plugins.%s.command_timeout (%g s) is not below plugins.hook_timeout (%g s): a "
                        "slow browser or archive will be cut off by the bridge instead of reported here",
                        self.name, config.command_timeout, hook_timeout)
        self.adapter = OhifAdapter(bridge, config, name=self.name, opener=self.opener)
        self.adapter.start()

    @hookimpl
    def bridge_stopping(self, bridge: Bridge) -> None:
        self.adapter = None  # its background tasks are cancelled by the bridge

    @hookimpl
    async def on_event(self, message: Event, context: Context, session: Session) -> None:
        if self.adapter is not None and message.accession:
            await self.adapter.show(message.accession, "EVENT")

    @hookimpl
    async def on_readonly(self, message: ReadOnly, context: Context, session: Session) -> None:
        if self.adapter is not None and message.accession:
            await self.adapter.show(message.accession, "READONLY")

    @hookimpl
    async def on_release(self, message: Release, context: Context, session: Session) -> None:
        if self.adapter is not None:
            await self.adapter.clear("RELEASE")

    @hookimpl
    async def on_logout(self, message: LoggedOut, context: Context, session: Session) -> None:
        if self.adapter is not None:
            await self.adapter.clear("LOGOUT")

    @hookimpl
    async def on_sent(self, message: PacsCommand, sessions: tuple[Session, ...]) -> None:
        # CLEAR (or LOGOUT) sent to CRIS by any plugin closes the report: clear the viewer too.
        if self.adapter is not None and isinstance(message, (Clear, Logout)):
            await self.adapter.clear(f"{message.command} sent to CRIS")

    @hookimpl
    def on_studies_found(self, lookup: StudyLookup) -> None:
        if self.adapter is not None:
            self.adapter.remember(lookup)
