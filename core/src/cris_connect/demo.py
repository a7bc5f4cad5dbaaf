"""`cris-connect demo`: the bridge and a scripted CRIS Reporting session, narrated step by step.

The first thing a newcomer runs: it shows what CRIS sends when a radiologist works, what the bridge
and its plugins make of it, and what the PACS side can send back - then keeps serving so they can
point their own client (or the SDK's simulator) at it, or open the web console, whose simulator
panel is a CRIS Reporting client driven with buttons.
"""

from __future__ import annotations

import json

import anyio
import attrs

from cris_connect import codec
from cris_connect.bridge import Bridge
from cris_connect.client import connect
from cris_connect.config import Config
from cris_connect.context import Context
from cris_connect.hookspecs import hookimpl
from cris_connect.masking import describe
from cris_connect.messages import Clear, CrisCommand, Display, Event, UnknownCommand
from cris_connect.session import Session

STEPS = [
    ("The radiologist logs in", {"command": "LOGIN"}),
    ("Opens a report", {"command": "EVENT", "accession": ["RX1001"], "examCode": "CCHES",
                        "nhs": "9434765919"}),
    ("Selects one exam of it", {"command": "EVENT", "accession": ["RX1001"], "examCode": "CCHES",
                                "nhs": "9434765919"}),
    ("Opens a historic report", {"command": "READONLY", "accession": ["RX0907"], "examCode": "CCHES",
                                 "nhs": "9434765919"}),
    ("Saves the report", {"command": "COMMIT", "accession": ["RX1001"]}),
    ("... and leaves it", {"command": "RELEASE", "accession": ["RX1001"]}),
    ("Logs out", {"command": "LOGOUT"}),
]


class Narrator:
    """A demo plugin: says what the PACS side sees, with the session's context."""

    name = "demo"

    def __init__(self) -> None:
        self.seen = anyio.Event()

    @hookimpl
    def on_command(self, message: CrisCommand | UnknownCommand, context: Context, session: Session) -> None:
        state = "report open" if context.report_open else "no report open"
        if context.read_only:
            state += ", read-only"
        print(f"      plugin sees {describe(message)} -> context: "
              f"{'logged in' if context.logged_in else 'logged out'}, {state}")
        self.seen.set()

    @hookimpl
    def on_event(self, message: Event) -> None:
        print(f"      (a viewer adapter would now show the images for {', '.join(message.accession)})")


def with_console(config: Config) -> Config:
    """The demo's config: the console on, with its simulator, on the port below the bridge's
    (9997 for 9998, so `demo --port` moves both), or on a free one when the bridge's is."""
    port = config.server.port - 1 if config.server.port > 1025 else 0
    console = attrs.evolve(config.console, enabled=True, simulator=True, port=port)
    return attrs.evolve(config, console=console)


async def run(config: Config, keep_serving: bool = True) -> None:
    narrator = Narrator()
    async with Bridge(with_console(config), plugins=[narrator]) as bridge:
        print(f"cris-connect is listening on {bridge.url} (plugins: {', '.join(bridge.runners)})")
        if bridge.console is not None:
            print(f"Web console: {bridge.console.url} (its simulator panel is a CRIS Reporting client)")
        print()
        async with connect(bridge.url) as cris:
            print("A CRIS Reporting client connected.\n")
            for title, message in STEPS:
                narrator.seen = anyio.Event()
                print(f"  {title}:\n    CRIS -> PACS  {json.dumps(message)}")
                await cris.send(json.dumps(message))
                with anyio.fail_after(5):
                    await narrator.seen.wait()
            for title, outgoing in (("The PACS asks CRIS to show a report", Display(accession=["RX1001"])),
                                    ("The PACS asks CRIS to clear it", Clear())):
                print(f"\n  {title}:")
                await bridge.send(outgoing)
                with anyio.fail_after(5):
                    received = await cris.recv()
                print(f"    PACS -> CRIS  {received}  ({codec.decode_for_cris(received).command} "
                      "received by the client)")
        print("\nThe scripted session is over.")
        if keep_serving:
            print(f"Still serving on {bridge.url}: connect your own client, or open the console at "
                  f"{bridge.console.url if bridge.console else '(off)'} and use its simulator; "
                  "press Ctrl-C to stop.")
            await anyio.sleep_forever()
