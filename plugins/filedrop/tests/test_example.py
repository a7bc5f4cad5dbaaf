"""examples/filedrop.toml runs as a newcomer runs it: `cris-connect serve --config ...`, in a
real process, with a real CRIS client sending to it and dropping a file for it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from cris_connect.client import connect

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "filedrop.toml"


def test_example_passes_check_config(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "cris_connect", "check-config", str(EXAMPLE)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "filedrop" in result.stdout


@pytest.mark.anyio
async def test_example_serves(tmp_path: Path, wait_for: Any, files_in: Any) -> None:
    outbox, inbox = tmp_path / "cris-filedrop" / "outbox", tmp_path / "cris-filedrop" / "inbox"
    command = [sys.executable, "-m", "cris_connect", "serve", "--config", str(EXAMPLE), "--port", "0"]
    async with await anyio.open_process(command, cwd=tmp_path, stderr=subprocess.PIPE) as process:
        assert process.stderr is not None
        log: list[str] = []

        async def read_log() -> None:
            async for chunk in TextReceiveStream(process.stderr):  # type: ignore[arg-type]
                log.append(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_log)
            found = await wait_for(lambda: re.search(r"listening on (ws://\S+)", "".join(log)),
                                   "the bridge to listen")
            async with connect(found.group(1)) as cris:
                await cris.send('{"command": "EVENT", "accession": ["RX1001"], "nhs": "9434765919"}')
                names = await wait_for(lambda: files_in(outbox), "the EVENT file in the outbox")
                (inbox / "show.json").write_text('{"command": "DISPLAY", "accession": ["RX1001"]}')
                with anyio.fail_after(15):
                    assert await cris.recv() == '{"command":"DISPLAY","accession":["RX1001"]}'
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(15):
                assert await process.wait() == 0
    text = (outbox / names[0]).read_text()
    assert text.startswith("COMMAND=EVENT\nACCESSION=RX1001\nNHS=9434765919\nSESSION=1\n")
    assert files_in(inbox / "done") == ["show.json"]
    assert "9434765919" not in "".join(log)
