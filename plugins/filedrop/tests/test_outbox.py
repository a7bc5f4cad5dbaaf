"""The outbox with a real bridge and a real CRIS client: every command in each format, atomic
files, arrival order under a burst, and nothing lost while the folder is unusable.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

# What CRIS sends while a radiologist works, one of each command.
SESSION_SCRIPT = [
    ("LOGIN", {"username": "drsmith", "password": "hunter2"}),  # CRIS sends none; never write one
    ("EVENT", {"accession": ["RX1001", "RX1002"], "examCode": "CCHES", "nhs": "9434765919",
               "chi": "0101011234"}),
    ("READONLY", {"accession": ["RX0907"], "examCode": "CCHES", "nhs": "9434765919"}),
    ("COMMIT", {"accession": ["RX1001"]}),
    ("RELEASE", {"accession": ["RX1001"]}),
    ("LOGOUT", {}),
]
NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-(\d{8})-([A-Z]+)\.(\w+)$")


async def play_session(cris: Any) -> None:
    for command, fields in SESSION_SCRIPT:
        await cris.send(command, **fields)


async def test_every_command_as_json(outbox: Path, run_filedrop: Any, connect_cris: Any, wait_for: Any,
                                     files_in: Any) -> None:
    async with run_filedrop({"outbox": str(outbox)}) as (bridge, _), connect_cris(bridge) as cris:
        await play_session(cris)
        names = await wait_for(lambda: len(files_in(outbox)) == 6 and files_in(outbox), "6 outbox files")
        session = bridge.sessions[0].id
    assert [NAME.match(n).groups() for n in names] == [  # type: ignore[union-attr]
        (f"{i:08d}", command, "json") for i, (command, _) in enumerate(SESSION_SCRIPT, start=1)
    ]
    contents = [json.loads((outbox / name).read_text(encoding="utf-8")) for name in names]
    for content, (command, fields) in zip(contents, SESSION_SCRIPT, strict=True):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", content.pop("received"))
        expected = {"command": command, **fields, "session": session}
        expected.pop("password", None)
        assert content == expected


async def test_every_command_as_keyvalue(outbox: Path, run_filedrop: Any, connect_cris: Any,
                                         wait_for: Any, files_in: Any) -> None:
    async with run_filedrop({"outbox": str(outbox), "format": "keyvalue"}) as (bridge, _), \
            connect_cris(bridge) as cris:
        await play_session(cris)
        names = await wait_for(lambda: len(files_in(outbox)) == 6 and files_in(outbox), "6 outbox files")
        session = bridge.sessions[0].id
    texts = [(outbox / name).read_text(encoding="utf-8") for name in names]
    assert all(name.endswith(".txt") for name in names)
    lines = [re.sub(r"RECEIVED=\S+\n", "RECEIVED=...\n", text) for text in texts]
    s = f"SESSION={session}\nRECEIVED=...\n"
    assert lines == [
        "COMMAND=LOGIN\nUSERNAME=drsmith\n" + s,
        "COMMAND=EVENT\nACCESSION=RX1001,RX1002\nEXAM_CODE=CCHES\nNHS=9434765919\nCHI=0101011234\n" + s,
        "COMMAND=READONLY\nACCESSION=RX0907\nEXAM_CODE=CCHES\nNHS=9434765919\n" + s,
        "COMMAND=COMMIT\nACCESSION=RX1001\n" + s,
        "COMMAND=RELEASE\nACCESSION=RX1001\n" + s,
        "COMMAND=LOGOUT\n" + s,
    ]


async def test_every_command_through_a_template(tmp_path: Path, outbox: Path, run_filedrop: Any,
                                                connect_cris: Any, wait_for: Any, files_in: Any) -> None:
    template = tmp_path / "viewer.ini"
    template.write_text("[cris]\naction=$command\nstudy=$first_accession\nall=$accession\n"
                        "exam=$exam_code\npatient=$nhs$chi\nuser=$username\n", encoding="utf-8")
    settings = {"outbox": str(outbox), "format": "template", "template": str(template)}
    async with run_filedrop(settings) as (bridge, _), connect_cris(bridge) as cris:
        await play_session(cris)
        names = await wait_for(lambda: len(files_in(outbox)) == 6 and files_in(outbox), "6 outbox files")
    assert all(name.endswith(".ini") for name in names)
    texts = [(outbox / name).read_text(encoding="utf-8") for name in names]
    assert texts == [
        "[cris]\naction=LOGIN\nstudy=\nall=\nexam=\npatient=\nuser=drsmith\n",
        "[cris]\naction=EVENT\nstudy=RX1001\nall=RX1001,RX1002\nexam=CCHES\npatient=94347659190101011234\n"
        "user=\n",
        "[cris]\naction=READONLY\nstudy=RX0907\nall=RX0907\nexam=CCHES\npatient=9434765919\nuser=\n",
        "[cris]\naction=COMMIT\nstudy=RX1001\nall=RX1001\nexam=\npatient=\nuser=\n",
        "[cris]\naction=RELEASE\nstudy=RX1001\nall=RX1001\nexam=\npatient=\nuser=\n",
        "[cris]\naction=LOGOUT\nstudy=\nall=\nexam=\npatient=\nuser=\n",
    ]


async def test_only_the_chosen_commands(outbox: Path, run_filedrop: Any, connect_cris: Any,
                                        wait_for: Any, files_in: Any) -> None:
    settings = {"outbox": str(outbox), "commands": ["event", "RELEASE"]}
    async with run_filedrop(settings) as (bridge, plugin), connect_cris(bridge) as cris:
        await play_session(cris)
        await cris.send("EVENT", accession=["LAST"])
        await wait_for(lambda: plugin.outbox.written == 3, "3 outbox files")
    assert [NAME.match(n).group(2) for n in files_in(outbox)] == ["EVENT", "RELEASE", "EVENT"]  # type: ignore[union-attr]


async def test_no_password_or_clear_identifier_in_logs(outbox: Path, run_filedrop: Any, connect_cris: Any,
                                                       wait_for: Any, files_in: Any, all_logs: Any) -> None:
    async with run_filedrop({"outbox": str(outbox)}, enabled=("log",)) as (bridge, _), \
            connect_cris(bridge) as cris:
        await play_session(cris)
        await wait_for(lambda: len(files_in(outbox)) == 6, "6 outbox files")
    # websockets.client is CRIS's side of the test; everything else is the bridge's.
    bridge_logs = "\n".join(
        r.getMessage() for r in all_logs.records if not r.name.startswith("websockets.client")
    )
    assert "hunter2" not in bridge_logs
    assert "9434765919" not in bridge_logs
    assert "0101011234" not in bridge_logs
    assert "*******919" in bridge_logs


async def test_a_reader_never_sees_a_partial_file(outbox: Path, run_filedrop: Any, connect_cris: Any,
                                                  wait_for: Any, files_in: Any) -> None:
    """A viewer polling the folder as fast as it can: every file it opens is complete JSON."""
    done = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []
    big = "X" * 20000  # large files make a partial read likelier, were writes not atomic

    def viewer() -> None:
        while not done.is_set():
            for path in list(outbox.iterdir()) if outbox.is_dir() else []:
                if path.name.startswith(".") or path.name in seen:
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except FileNotFoundError:  # pragma: no cover - nothing removes files here
                    continue
                try:
                    if json.loads(text)["examCode"] != big:
                        problems.append(f"{path.name}: wrong content")
                except (ValueError, KeyError) as exc:
                    problems.append(f"{path.name}: {exc!r}")
                seen.add(path.name)

    reader = threading.Thread(target=viewer, daemon=True)
    reader.start()
    try:
        async with run_filedrop({"outbox": str(outbox)}) as (bridge, _), connect_cris(bridge) as cris:
            for i in range(200):
                await cris.send("EVENT", accession=[f"RX{i}"], examCode=big)
            await wait_for(lambda: len(files_in(outbox)) == 200, "200 outbox files")
            await wait_for(lambda: len(seen) == 200, "the viewer to read all 200 files")
    finally:
        done.set()
        reader.join()
    assert problems == []


async def test_arrival_order_under_a_burst(outbox: Path, run_filedrop: Any, connect_cris: Any,
                                           wait_for: Any, files_in: Any) -> None:
    async with run_filedrop({"outbox": str(outbox), "format": "keyvalue"}) as (bridge, _), \
            connect_cris(bridge) as cris:
        for i in range(1000):
            await cris.send("EVENT", accession=[f"RX{i:04d}"])
        names = await wait_for(lambda: len(files_in(outbox)) == 1000 and files_in(outbox), "1000 files",
                               timeout=60)
    accessions = [(outbox / n).read_text().splitlines()[1] for n in names]
    assert accessions == [f"ACCESSION=RX{i:04d}" for i in range(1000)]
    assert [n.split("-")[1] for n in names] == [f"{i:08d}" for i in range(1, 1001)]


async def test_unwritable_at_run_time_keeps_order_and_loses_nothing(
    tmp_path: Path, outbox: Path, run_filedrop: Any, connect_cris: Any, wait_for: Any, files_in: Any,
    all_logs: Any,
) -> None:
    """The outbox folder is replaced by a regular file (root ignores permission bits, a file in
    the way stops everyone); commands queue in order and are written once it is a folder again."""
    settings = {"outbox": str(outbox), "format": "keyvalue", "retry_initial": 0.02, "retry_max": 0.1}
    async with run_filedrop(settings) as (bridge, plugin), connect_cris(bridge) as cris:
        for i in range(3):
            await cris.send("EVENT", accession=[f"RX{i}"])
        await wait_for(lambda: len(files_in(outbox)) == 3, "the first 3 files")
        shutil.move(outbox, tmp_path / "first")
        outbox.write_text("in the way")
        for i in range(3, 10):
            await cris.send("EVENT", accession=[f"RX{i}"])
        await wait_for(lambda: len(plugin.outbox.pending) == 7, "7 commands queued")
        retries = lambda: [r for r in all_logs.records if "still cannot write" in r.getMessage()]  # noqa: E731
        await wait_for(lambda: len(retries()) >= 3, "3 retries")
        assert plugin.outbox.failing
        outbox.unlink()  # writable again: the writer makes the folder anew
        await wait_for(lambda: len(files_in(outbox)) == 7, "the 7 queued files")
        assert not plugin.outbox.failing
    written = [(outbox / n).read_text().splitlines()[1] for n in files_in(outbox)]
    assert written == [f"ACCESSION=RX{i}" for i in range(3, 10)]
    assert plugin.lost_at_shutdown == []
    failures = [r for r in all_logs.records
                if "cannot write" in r.getMessage() and r.levelno >= logging.ERROR]
    assert len(failures) == 1, "logged once per failure streak"
    assert "keeping it and every later command queued in order" in failures[0].getMessage()
    assert any("is writable again" in r.getMessage() for r in all_logs.records)


async def test_what_is_pending_at_shutdown_is_reported(outbox: Path, run_filedrop: Any, connect_cris: Any,
                                                       wait_for: Any, all_logs: Any) -> None:
    settings = {"outbox": str(outbox), "retry_initial": 0.02, "retry_max": 0.1}
    async with run_filedrop(settings) as (bridge, plugin), connect_cris(bridge) as cris:
        outbox.rmdir()
        outbox.write_text("in the way")
        await cris.send("EVENT", accession=["RX1"], nhs="9434765919")
        await cris.send("RELEASE", accession=["RX1"])
        await wait_for(lambda: plugin.outbox.failing and len(plugin.outbox.pending) == 2, "2 queued")
    assert [f.what for f in plugin.lost_at_shutdown] == ["EVENT accession=RX1 nhs=*******919",
                                                        "RELEASE accession=RX1"]
    report = [r.getMessage() for r in all_logs.records if "lost at shutdown" in r.getMessage()]
    assert len(report) == 1
    assert report[0].startswith(f"outbox {outbox}: 2 command(s) were never written and are lost at "
                                "shutdown: ")
    assert "EVENT accession=RX1 nhs=*******919" in report[0]


async def test_through_the_entry_point(outbox: Path, wait_for: Any, files_in: Any) -> None:
    """As `cris-connect serve` runs it: `plugins.enabled = ["filedrop"]`."""
    from cris_connect import Bridge
    from cris_connect.client import connect
    from cris_connect.config import from_mapping

    config = from_mapping({
        "server": {"plain": True, "port": 0, "ping_interval": 5.0},
        "plugins": {"enabled": ["filedrop"], "filedrop": {"outbox": str(outbox)}},
    })
    async with Bridge(config) as bridge, connect(bridge.url) as websocket:
        await websocket.send('{"command":"EVENT","accession":["RX1"]}')
        names = await wait_for(lambda: files_in(outbox), "an outbox file")
    assert json.loads((outbox / names[0]).read_text())["accession"] == ["RX1"]
