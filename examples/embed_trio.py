"""Embedding cris-connect in a trio program: the same plugin as in embed_asyncio.py, another loop.

Run: python examples/embed_trio.py [--once]
With --once it connects a CRIS client of its own, shows the round trip and exits.
"""

from __future__ import annotations

import json
import sys

import trio
from embed_asyncio import ShowImages  # the plugin does not care which loop runs it

from cris_connect import Bridge, Config, ServerConfig
from cris_connect.client import connect


async def main(once: bool) -> None:
    config = Config(server=ServerConfig(plain=True, port=0 if once else 9998))
    async with Bridge(config, plugins=[ShowImages()]) as bridge:
        print(f"listening on {bridge.url}")
        if not once:
            await trio.sleep_forever()  # the program's own work would go here
        async with connect(bridge.url) as cris:
            await cris.send(json.dumps({"command": "EVENT", "accession": ["RX1001"]}))
            with trio.fail_after(5):
                print("CRIS received", await cris.recv())


if __name__ == "__main__":
    trio.run(main, "--once" in sys.argv)
