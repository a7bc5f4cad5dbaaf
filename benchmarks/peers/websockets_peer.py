"""websockets' own asyncio server doing the bridge's job: parse the EVENT, answer a DISPLAY.

`python -m benchmarks.peers.websockets_peer` prints `{"port": N, "pid": N}` once listening; SIGTERM
stops it. No compression is offered by the load client, so none is negotiated (as with the bridge).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from websockets.asyncio.server import ServerConnection, serve

from benchmarks.load import raise_open_file_limit


async def answer(websocket: ServerConnection) -> None:
    async for text in websocket:
        event = json.loads(text)
        await websocket.send(json.dumps({"command": "DISPLAY", "accession": event["accession"]},
                                        separators=(",", ":")))


async def main() -> None:
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    async with serve(answer, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
        await stop


if __name__ == "__main__":
    raise_open_file_limit()
    asyncio.run(main())
