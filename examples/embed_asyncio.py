"""Embedding cris-connect in an asyncio program: the bridge is one task among the program's own.

Run: python examples/embed_asyncio.py [--once]
With --once it connects a CRIS client of its own, shows the round trip and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys

from cris_connect import Bridge, Config, Display, ServerConfig, hookimpl
from cris_connect.client import connect


class ShowImages:
    """Answers every EVENT with a DISPLAY, the way a viewer integration confirms a report."""

    @hookimpl
    def bridge_started(self, bridge: Bridge) -> None:
        self.bridge = bridge

    @hookimpl
    async def on_event(self, message, session) -> None:  # type: ignore[no-untyped-def]
        print(f"CRIS opened {', '.join(message.accession)}; the program's own code runs here")
        await self.bridge.send(Display(accession=message.accession), to=session)


async def main(once: bool) -> None:
    config = Config(server=ServerConfig(plain=True, port=0 if once else 9998))
    async with Bridge(config, plugins=[ShowImages()]) as bridge:
        print(f"listening on {bridge.url}")
        if not once:
            await asyncio.Event().wait()  # the program's own work would go here
        async with connect(bridge.url) as cris:
            await cris.send(json.dumps({"command": "EVENT", "accession": ["RX1001"]}))
            print("CRIS received", await asyncio.wait_for(cris.recv(), 5))


if __name__ == "__main__":
    asyncio.run(main("--once" in sys.argv))
