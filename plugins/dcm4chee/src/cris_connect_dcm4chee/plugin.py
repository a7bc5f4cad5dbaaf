"""The pluggy side: hook implementations that hand each EVENT/READONLY to the running `Adapter`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cris_connect import hookimpl
from cris_connect_dcm4chee.adapter import Adapter
from cris_connect_dcm4chee.config import Dcm4cheeConfig

if TYPE_CHECKING:
    from cris_connect import Context, Event, ReadOnly, Session
    from cris_connect.bridge import Bridge


class Dcm4cheePlugin:
    """The `dcm4chee` adapter. The entry point is one shared instance (`cris_connect_dcm4chee:plugin`);
    code that runs two bridges at once in one process passes `plugins=[Dcm4cheePlugin()]` to each."""

    def __init__(self, name: str = "dcm4chee") -> None:
        self.name = name
        self.adapter: Adapter | None = None

    @hookimpl
    def register_config_class(self) -> type:
        return Dcm4cheeConfig

    @hookimpl
    def bridge_started(self, bridge: Bridge, config: Any) -> None:
        previous = self.adapter
        still_running = previous is not None and previous.bridge.health()["status"] == "ok"
        if previous is not None and previous.bridge is not bridge and still_running:
            raise RuntimeError(
                f"the {self.name} plugin object is already running in another bridge; give each bridge "
                "its own: Bridge(config, plugins=[Dcm4cheePlugin()])"
            )
        self.adapter = Adapter(bridge, config, source=self.name)
        bridge.studies.register_provider(self.name)

    @hookimpl
    async def bridge_stopping(self, bridge: Bridge) -> None:
        adapter, self.adapter = self.adapter, None
        if adapter is not None:
            await adapter.aclose()

    @hookimpl
    def on_event(self, message: Event, context: Context, session: Session) -> None:
        if self.adapter is not None:
            self.adapter.start_lookups(message.accession, nhs=message.nhs, chi=message.chi, prefetch=True)

    @hookimpl
    def on_readonly(self, message: ReadOnly, context: Context, session: Session) -> None:
        if self.adapter is not None:
            self.adapter.start_lookups(message.accession, nhs=message.nhs, chi=message.chi,
                                       prefetch=self.adapter.config.prefetch.on_readonly)
