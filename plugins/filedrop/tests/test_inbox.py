"""The inbox with a real bridge and a real CRIS client: each command, partial writes, each
refusal, LOGIN files, files present at start-up, polling.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.anyio  # the sync tests below ignore it

FAST = {"settle_time": 0.1}


def drop(folder: Path, name: str, text: str) -> Path:
    """Drop a command file the way a careful writer does: write under a .tmp name, then rename."""
    temporary = folder / f"{name}.tmp"
    temporary.write_text(text, encoding="utf-8")
    temporary.rename(folder / name)
    return folder / name


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
async def test_each_command_reaches_cris(inbox: Path, run_filedrop: Any, connect_cris: Any, wait_for: Any,
                                         files_in: Any, poll: bool) -> None:
    settings = {"inbox": str(inbox), "poll": poll, "poll_interval": 0.05, **FAST}
    async with run_filedrop(settings) as (bridge, plugin), connect_cris(bridge) as cris:
        assert plugin.inbox.watch.polling is poll
        drop(inbox, "01.json", '{"command": "DISPLAY", "accession": ["RX1", "RX2"], "examCode": "CT"}')
        assert await cris.receive() == {"command": "DISPLAY", "accession": ["RX1", "RX2"], "examCode": "CT"}
        drop(inbox, "02.txt", "COMMAND=DISPLAY\nACCESSION=RX3\nNHS=9434765919\n")
        assert await cris.receive() == {"command": "DISPLAY", "accession": ["RX3"], "nhs": "9434765919"}
        drop(inbox, "03.json", '{"command": "CLEAR"}')
        assert await cris.receive() == {"command": "CLEAR"}
        drop(inbox, "04.txt", "COMMAND=LOGOUT")
        assert await cris.receive() == {"command": "LOGOUT"}
        drop(inbox, "05.json", '{"command": "LOGIN", "username": "drsmith", "password": "hunter2"}')
        assert await cris.receive() == {"command": "LOGIN", "username": "drsmith", "password": "hunter2"}
        await wait_for(lambda: plugin.inbox.sent == 5, "5 files handled")
    assert files_in(inbox / "done") == ["01.json", "02.txt", "03.json", "04.txt"]
    assert files_in(inbox) == []
    assert files_in(inbox / "failed") == []


async def test_incomplete_files_wait_until_renamed(inbox: Path, run_filedrop: Any, connect_cris: Any,
                                                   wait_for: Any, files_in: Any) -> None:
    async with run_filedrop({"inbox": str(inbox), **FAST}) as (bridge, _), connect_cris(bridge) as cris:
        for name in (".hidden.json", "a.json.part", "b.TMP", "c.json.tmp"):
            (inbox / name).write_text('{"command": "DISPLAY", "accession": ["EARLY"]}')
        drop(inbox, "z.json", '{"command": "DISPLAY", "accession": ["Z"]}')
        # The inbox handles files in name order, so "z" comes after every other name was seen.
        assert await cris.receive() == {"command": "DISPLAY", "accession": ["Z"]}
        await wait_for(lambda: files_in(inbox / "done") == ["z.json"], "z.json filed in done/")
        assert sorted(os.listdir(inbox)) == [".hidden.json", "a.json.part", "b.TMP", "c.json.tmp", "done",
                                             "failed"]
        (inbox / "a.json.part").rename(inbox / "a.json")
        assert await cris.receive() == {"command": "DISPLAY", "accession": ["EARLY"]}
    assert files_in(inbox / "done") == ["a.json", "z.json"]


async def test_a_file_still_growing_is_waited_for(inbox: Path, run_filedrop: Any, connect_cris: Any,
                                                  files_in: Any) -> None:
    """A writer that writes in place, a few bytes at a time, more often than settle_time."""
    text = '{"command": "DISPLAY", "accession": ["RX1", "RX2", "RX3"], "examCode": "CCHES"}'
    async with run_filedrop({"inbox": str(inbox), "settle_time": 0.3}) as (bridge, plugin), \
            connect_cris(bridge) as cris:
        with open(inbox / "slow.json", "w", encoding="utf-8") as file:
            for start in range(0, len(text), 8):
                file.write(text[start:start + 8])
                file.flush()
                await anyio.sleep(0.05)  # the slow writer being simulated, not a wait for the result
        assert await cris.receive() == {"command": "DISPLAY", "accession": ["RX1", "RX2", "RX3"],
                                        "examCode": "CCHES"}
        assert plugin.inbox.refused == 0
    assert files_in(inbox / "done") == ["slow.json"]
    assert files_in(inbox / "failed") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"command": "DISPLAY", "accession": ["RX1"]', "the file is not valid JSON (Expecting ',' "
                                                         "delimiter: line 1 column 44 (char 43))"),
        ('{"command": "REFRESH"}', "unknown command 'REFRESH'; a command file holds one of DISPLAY, "
                                   "CLEAR, LOGOUT, LOGIN"),
        ('{"command": "DISPLAY"}', "DISPLAY needs at least one accession number in 'accession'"),
        ("COMMAND=DISPLAY\nACCESSION=\n", "DISPLAY needs at least one accession number in 'accession'"),
        ("COMMAND=DISPLAY\nACESSION=RX1\n", "line 2: unknown key 'ACESSION'; the keys are COMMAND, "
                                            "ACCESSION, EXAM_CODE, NHS, CHI, USERNAME, PASSWORD"),
        ("", 'the file is empty; write a command such as {"command": "CLEAR"}'),
    ],
    ids=["bad-json", "unknown-command", "display-without-accession", "keyvalue-empty-accession",
         "keyvalue-unknown-key", "empty"],
)
async def test_refused_files_go_to_failed_with_the_reason(
    inbox: Path, run_filedrop: Any, connect_cris: Any, wait_for: Any, files_in: Any, text: str, reason: str,
) -> None:
    async with run_filedrop({"inbox": str(inbox), **FAST}) as (bridge, plugin), connect_cris(bridge) as cris:
        drop(inbox, "bad.json", text)
        drop(inbox, "good.json", '{"command": "CLEAR"}')
        assert await cris.receive() == {"command": "CLEAR"}  # the refusal did not stop the inbox
        assert plugin.inbox.refused == 1
    assert files_in(inbox / "failed") == ["bad.json", "bad.json.error"]
    assert (inbox / "failed" / "bad.json").read_text(encoding="utf-8") == text
    assert (inbox / "failed" / "bad.json.error").read_text(encoding="utf-8") == reason + "\n"
    assert files_in(inbox / "done") == ["good.json"]


async def test_refused_when_no_cris_session_is_connected(inbox: Path, run_filedrop: Any, wait_for: Any,
                                                         files_in: Any, all_logs: Any) -> None:
    settings = {"inbox": str(inbox), "session_wait": 0.2, **FAST}
    async with run_filedrop(settings) as (_, plugin):
        drop(inbox, "show.json", '{"command": "DISPLAY", "accession": ["RX1"]}')
        await wait_for(lambda: plugin.inbox.refused == 1, "the refusal")
    assert files_in(inbox / "failed") == ["show.json", "show.json.error"]
    assert (inbox / "failed" / "show.json.error").read_text() == (
        "no CRIS Reporting session connected within 0.2 s, so DISPLAY was not sent (no CRIS Reporting "
        "session is connected; DISPLAY not sent)\n"
    )
    assert any(r.getMessage().startswith("inbox: show.json refused: no CRIS Reporting session")
               for r in all_logs.records)


async def test_a_command_waits_for_cris_to_connect(inbox: Path, run_filedrop: Any, connect_cris: Any,
                                                   wait_for: Any, files_in: Any, all_logs: Any) -> None:
    async with run_filedrop({"inbox": str(inbox), "session_wait": 30, **FAST}) as (bridge, plugin):
        drop(inbox, "show.json", '{"command": "DISPLAY", "accession": ["RX1"]}')
        await wait_for(lambda: any("show.json waits up to 30 s for a CRIS Reporting session" in r.getMessage()
                                   for r in all_logs.records), "the file to wait for CRIS")
        async with connect_cris(bridge) as cris:
            assert await cris.receive() == {"command": "DISPLAY", "accession": ["RX1"]}
    assert plugin.inbox.refused == 0
    assert files_in(inbox / "done") == ["show.json"]


async def test_login_file_is_deleted_and_its_password_never_logged(
    inbox: Path, run_filedrop: Any, connect_cris: Any, wait_for: Any, files_in: Any, all_logs: Any,
) -> None:
    async with run_filedrop({"inbox": str(inbox), **FAST}, enabled=("log",)) as (bridge, plugin), \
            connect_cris(bridge) as cris:
        drop(inbox, "login.txt", "COMMAND=LOGIN\nUSERNAME=drsmith\nPASSWORD=s3cret-Pa55\n")
        assert await cris.receive() == {"command": "LOGIN", "username": "drsmith", "password": "s3cret-Pa55"}
        await wait_for(lambda: plugin.inbox.sent == 1, "the LOGIN file handled")
    assert not any(files_in(folder) for folder in (inbox, inbox / "done", inbox / "failed"))
    bridge_logs = [r.getMessage() for r in all_logs.records if not r.name.startswith("websockets.client")]
    assert any("login.txt sent to CRIS (LOGIN username=drsmith password=***); file deleted" in line
               for line in bridge_logs)
    assert not any("s3cret-Pa55" in line for line in bridge_logs)


async def test_refused_login_file_is_deleted_too(inbox: Path, run_filedrop: Any, wait_for: Any,
                                                 files_in: Any, all_logs: Any) -> None:
    settings = {"inbox": str(inbox), "session_wait": 0, **FAST}
    async with run_filedrop(settings) as (_, plugin):
        drop(inbox, "a.json", '{"command": "LOGIN", "username": "drsmith", "password": "s3cret-Pa55"}')
        # A wrongly typed password would be quoted by the decoder: it must be masked.
        drop(inbox, "b.json", '{"command": "LOGIN", "username": "drsmith", "password": 123456789}')
        await wait_for(lambda: plugin.inbox.refused == 2, "both refusals")
    assert files_in(inbox) == []
    assert files_in(inbox / "failed") == ["a.json.error", "b.json.error"]
    assert (inbox / "failed" / "a.json.error").read_text() == (
        "no CRIS Reporting session connected, so LOGIN was not sent (no CRIS Reporting session is "
        "connected; LOGIN not sent) (the file held a password, so it was deleted)\n"
    )
    # The codec may name the bad value's kind or quote it; either way the password is not there.
    error = (inbox / "failed" / "b.json.error").read_text()
    assert error.startswith("LOGIN: field 'password': expected a string, got ")
    assert error.endswith(" (the file held a password, so it was deleted)\n")
    assert "123456789" not in error
    logs = "\n".join(r.getMessage() for r in all_logs.records)
    assert "s3cret-Pa55" not in logs
    assert "123456789" not in logs


async def test_files_present_at_start_up_are_sent_in_name_order(
    inbox: Path, run_filedrop: Any, connect_cris: Any, wait_for: Any, files_in: Any,
) -> None:
    (inbox / "failed").mkdir(parents=True)
    for name in ("0003.json", "0001.json", "0002.txt", "0005.json", "0004.json"):
        accession = name.split(".")[0]
        text = (f"COMMAND=DISPLAY\nACCESSION={accession}" if name.endswith(".txt")
                else f'{{"command": "DISPLAY", "accession": ["{accession}"]}}')
        (inbox / name).write_text(text)
    async with run_filedrop({"inbox": str(inbox), **FAST}) as (bridge, plugin):
        async with connect_cris(bridge) as cris:  # CRIS connects after the bridge has started
            received = [(await cris.receive())["accession"] for _ in range(5)]
        await wait_for(lambda: plugin.inbox.sent == 5, "5 files handled")
    assert received == [["0001"], ["0002"], ["0003"], ["0004"], ["0005"]]
    assert files_in(inbox / "done") == ["0001.json", "0002.txt", "0003.json", "0004.json", "0005.json"]


async def test_same_name_again_is_kept_beside_the_first(inbox: Path, run_filedrop: Any, connect_cris: Any,
                                                        wait_for: Any, files_in: Any) -> None:
    async with run_filedrop({"inbox": str(inbox), **FAST}) as (bridge, plugin), connect_cris(bridge) as cris:
        for expected in (1, 2):
            drop(inbox, "clear.json", '{"command": "CLEAR"}')
            assert await cris.receive() == {"command": "CLEAR"}
            await wait_for(lambda n=expected: plugin.inbox.sent == n, f"file {expected} handled")
    assert files_in(inbox / "done") == ["clear.json", "clear~1.json"]


@pytest.mark.parametrize(
    "text",
    ['{"command": "LOGIN", "username": "u", "password": 987654321}',
     '{"command":"LOGIN","password":"987654321"}',
     "COMMAND=LOGIN\nPassword = 987654321\n"],
)
def test_a_reason_quoting_a_password_is_masked(text: str) -> None:
    from cris_connect_filedrop.inbox import _without_passwords

    reason = "field 'password': expected a string, got 987654321"
    assert _without_passwords(reason, text.encode()) == "field 'password': expected a string, got ***"
