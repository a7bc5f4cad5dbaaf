"""`cris-connect simulate`: CRIS Reporting on the command line, against any PACS-side server.

For a vendor whose server is written in anything (their C# or Electron one included):

    cris-connect simulate --url wss://localhost:9998/ --ca ca.pem --origin https://cris.example.nhs.uk
    cris> open RX123 CCHES 9434765919
      PACS -> CRIS  DISPLAY accession=RX123

    cris-connect simulate --url ws://localhost:9998/ --script session.jsonl    # or session.toml

For a server with `server.shared_secret`, put the secret in the environment variable
CRIS_CONNECT_SECRET (not on the command line, where every process could read it).

Scripted mode stops at the first expectation that is not met and exits 1 with a report of what
happened instead; 2 means it could not start (bad script, server unreachable). Passwords are never
printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream

from cris_connect_sdk.script import ScriptError, Step, load_script, run_step, step_from_words
from cris_connect_sdk.simulator import CrisReporting, ExpectationFailed, Received, SimulatorError, show

HELP = """\
  login [USERNAME [PASSWORD]]            LOGIN (the radiologist logs in)
  logout                                 LOGOUT
  open ACCESSION[,ACC...] [EXAM] [NHS] [CHI]   EVENT (a report is opened)
  select ACCESSION [EXAM] [NHS] [CHI]    EVENT (one exam's report is selected)
  historic ACCESSION [EXAM] [NHS] [CHI]  READONLY (a historic report is opened)
  save ACCESSION                         COMMIT, then RELEASE (the report is saved)
  skip ACCESSION                         RELEASE (skipped, cancelled or exited)
  send {"command": ...}                  any frame, as typed
  expect DISPLAY|CLEAR|LOGIN|LOGOUT|ANY [ACCESSION]   wait up to 2 s for it
  nothing [SECONDS]                      check nothing arrives
  help, quit"""


async def run_script(cris: CrisReporting, steps: list[Step], out: TextIO) -> int:
    """Run every step; on the first unmet expectation report it and return 1."""
    for number, step in enumerate(steps, 1):
        try:
            await run_step(cris, step)
        except (ExpectationFailed, SimulatorError) as exc:
            print(f"FAIL  {number:>3}  {step.describe()}   ({step.where})\n\n{step.where}: {exc}", file=out)
            print(f"\n{number - 1} of {len(steps)} steps passed.", file=out)
            return 1
        print(f"ok    {number:>3}  {step.describe()}", file=out)
    print(f"\nAll {len(steps)} steps passed.", file=out)
    return 0


async def console(cris: CrisReporting, out: TextIO, read_line: Callable[[], str]) -> int:
    """Type actions, see what the PACS side sends as it arrives; stops when the server hangs up."""

    def arrived(message: Received) -> None:
        print(f"  PACS -> CRIS  {show(message)}", file=out, flush=True)

    cris.on_receive(arrived)
    print(f"Connected to {cris.url} as CRIS Reporting. Type `help` for actions, `quit` to stop.",
          file=out, flush=True)
    cris.mark_seen()  # the console shows messages as they come; `expect` looks only at new ones
    status = 0
    async with anyio.create_task_group() as tasks:

        async def hang_up_watch() -> None:
            nonlocal status
            await cris.wait_closed()
            code = f" (code {cris.close_code})" if cris.close_code is not None else ""
            print(f"\nThe PACS side closed the connection{code}.", file=out, flush=True)
            status = 1
            tasks.cancel_scope.cancel()

        tasks.start_soon(hang_up_watch)
        await _read_actions(cris, out, read_line)
        tasks.cancel_scope.cancel()
    return status


def _typed_lines(read_line: Callable[[], str]) -> MemoryObjectReceiveStream[str]:
    """Lines from `read_line`, read by a daemon thread.

    Not `anyio.to_thread`: its worker thread, stuck in `readline` when the server hangs up, would
    keep the process from exiting.
    """
    send, receive = anyio.create_memory_object_stream[str]()
    token = anyio.lowlevel.current_token()

    def reader() -> None:
        try:
            while True:
                line = read_line()
                anyio.from_thread.run(send.send, line, token=token)  # waits until it is taken
                if not line:
                    return
        except (anyio.RunFinishedError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the console has finished

    threading.Thread(target=reader, name="console input", daemon=True).start()
    return receive


async def _read_actions(cris: CrisReporting, out: TextIO, read_line: Callable[[], str]) -> None:
    lines = _typed_lines(read_line)
    while True:
        print("cris> ", end="", file=out, flush=True)
        line = await lines.receive()
        if not line:  # end of input
            print(file=out)
            return
        command = line.strip()
        if command in ("quit", "exit"):
            return
        if command in ("help", "?"):
            print(HELP, file=out)
            continue
        if not command:
            continue
        try:
            step = step_from_words(command)
            if step.kind != "expect":
                cris.mark_seen()  # an `expect` typed after an action looks at what it caused
            await run_step(cris, step)
        except (ScriptError, ExpectationFailed, SimulatorError) as exc:
            print(f"  {exc}", file=out, flush=True)
        else:
            if step.kind.startswith("expect"):
                print("  ok", file=out, flush=True)


async def simulate(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    steps = load_script(Path(args.script)) if args.script else None
    try:
        secret = os.environ.get("CRIS_CONNECT_SECRET") or None
        async with CrisReporting(args.url, ca=args.ca, origin=args.origin, secret=secret) as cris:
            if steps is not None:
                return await run_script(cris, steps, out)
            return await console(cris, out, sys.stdin.readline)
    except SimulatorError as exc:
        print(f"cris-connect simulate: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    try:
        return int(anyio.run(simulate, args, backend=args.backend))
    except ScriptError as exc:
        print(f"cris-connect simulate: {exc}", file=sys.stderr)
        return 2


def add_command(commands: Any) -> None:
    """Entry point `cris_connect.commands`: adds `simulate` to the `cris-connect` command."""
    parser = commands.add_parser(
        "simulate", help="act as CRIS Reporting against any PACS-side server (interactive or scripted)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--url", default="wss://localhost:9998/", help="the server (default %(default)s)")
    parser.add_argument("--ca", type=Path, help="CA certificate file to trust for wss://")
    parser.add_argument("--origin", help="Origin header to send, as the browser would (CRIS's page origin)")
    parser.epilog = "A server's shared secret is read from the environment variable CRIS_CONNECT_SECRET."
    parser.add_argument("--script", help="JSON-lines or .toml script of actions and expectations")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.set_defaults(func=run)
