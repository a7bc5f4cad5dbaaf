"""The audit journal: what it records, what it never records, rotation, torn lines, the reader."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.tests.recorder import Recorder
from core.tests.support import cris, recv_json, send_json
from cris_connect import Bridge, ConfigError, Display, Login, ServerConfig
from cris_connect.builtin import journal
from cris_connect.builtin.journal import Journal, JournalConfig
from cris_connect.config import Config, PluginsConfig

ROOT = Path(__file__).parents[2]


def journal_config(journal_path: Path, **settings: object) -> Config:
    return Config(
        server=ServerConfig(plain=True, port=0, max_messages_per_second=100_000.0),
        plugins=PluginsConfig(enabled=["journal"],
                              settings={"journal": {"path": str(journal_path), "fsync": "never", **settings}}),
    )


def records(path: Path) -> list[dict]:
    problems: list[journal.Problem] = []
    found = list(journal.read(path, problems))
    assert not problems, problems
    return found


@pytest.mark.anyio
async def test_every_command_both_ways_is_journaled(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "journal.jsonl"
    recorder = Recorder()
    async with Bridge(journal_config(path, fsync="always"), plugins=[recorder]) as bridge:
        async with cris(bridge.url, origin=None) as ws:
            await send_json(ws, {"command": "LOGIN", "username": "jsmith", "password": "hunter2-journal"})
            await send_json(ws, {"command": "EVENT", "accession": ["RX1", "RX2"], "examCode": "CCHES",
                                 "nhs": "9434765919", "chi": "0101011234", "ward": "7B"})
            await ws.send("not json")
            await send_json(ws, {"command": "PRIORITY", "secret": "x"})
            await recorder.wait_for("on_command", 3)
            await bridge.send(Display(accession=["RX1"]))
            await bridge.send(Login(username="jsmith", password="hunter2-journal"))
            await recv_json(ws)
            await recv_json(ws)
        await recorder.wait_for("session_closed")
    text = path.read_text()
    assert "hunter2-journal" not in text and "9434765919" not in text and "0101011234" not in text
    lines = records(path)
    assert [(r["event"], r.get("direction"), r.get("command")) for r in lines] == [
        ("bridge_started", None, None),
        ("session_opened", None, None),
        ("command", "in", "LOGIN"),
        ("command", "in", "EVENT"),
        ("refused", "in", None),
        ("command", "in", "PRIORITY"),
        ("sent", "out", "DISPLAY"),
        ("sent", "out", "LOGIN"),
        ("session_closed", None, None),
        ("bridge_stopping", None, None),
    ]
    event = lines[3]
    assert event["session"] == 1 and event["accession"] == ["RX1", "RX2"]
    assert event["exam_code"] == "CCHES" and event["nhs"] == "*******919" and event["chi"] == "*******234"
    assert event["fields"] == ["ward"] and event["outcome"] == "received"
    assert event["time"].endswith("Z")
    assert lines[4]["outcome"].startswith("refused: the frame is not valid JSON")
    assert lines[5]["fields"] == ["secret"] and lines[5]["outcome"] == "received (unknown command)"
    assert lines[7]["username"] == "jsmith" and "password" not in lines[7]
    assert lines[1]["peer"].startswith("127.0.0.1:") and lines[1]["secure"] is True
    assert lines[8]["outcome"] == "close code 1000"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.anyio
async def test_identifiers_unmasked_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    recorder = Recorder()
    async with Bridge(journal_config(path, show_identifiers=True), plugins=[recorder]) as bridge:
        async with cris(bridge.url) as ws:
            await send_json(ws, {"command": "EVENT", "accession": ["RX1"], "nhs": "9434765919"})
            await recorder.wait_for("on_event")
    [event] = [r for r in records(path) if r.get("command") == "EVENT"]
    assert event["nhs"] == "9434765919"


def test_rotation_keeps_the_newest_files(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writer = Journal(JournalConfig(path=path, fsync="rotate", max_bytes=2048, keep=2))
    for n in range(200):
        writer.write({"time": f"2025-01-01T00:00:{n % 60:02d}.000Z", "event": "command", "n": n})
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.jsonl", "journal.jsonl.1", "journal.jsonl.2"]
    for file in tmp_path.iterdir():
        assert file.stat().st_size <= 2048
    numbers = [r["n"] for r in records(path)]
    assert numbers == list(range(numbers[0], 200))  # oldest first, nothing missing in what is kept
    assert numbers[0] > 0  # the oldest rotated file was dropped


def test_a_smaller_keep_removes_older_files(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    for name in ("journal.jsonl.1", "journal.jsonl.2", "journal.jsonl.3"):
        (tmp_path / name).write_text('{"time": "2025-01-01T00:00:00Z"}\n')
    writer = Journal(JournalConfig(path=path, fsync="never", max_bytes=1024, keep=1))
    writer.write({"event": "x", "pad": "y" * 600})
    writer.write({"event": "x", "pad": "y" * 600})
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.jsonl", "journal.jsonl.1"]


def test_a_torn_last_line_is_reported_and_healed(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writer = Journal(JournalConfig(path=path, fsync="never"))
    writer.write({"time": "2025-01-01T00:00:00.000Z", "event": "command", "n": 1})
    writer.close()
    with path.open("ab") as file:
        file.write(b'{"time": "2025-01-01T00:00:01.000Z", "ev')  # the crash
    problems: list[journal.Problem] = []
    assert [r["n"] for r in journal.read(path, problems)] == [1]
    assert [(p.line, p.reason) for p in problems] == [(2, "torn last line (the bridge stopped while writing it)")]
    writer = Journal(JournalConfig(path=path, fsync="never"))  # the bridge restarts
    writer.write({"time": "2025-01-01T00:00:02.000Z", "event": "command", "n": 3})
    writer.close()
    problems = []
    assert [r["n"] for r in journal.read(path, problems)] == [1, 3]
    assert [(p.line, p.reason) for p in problems] == [(2, "not valid JSON (torn by a crash?)")]


def test_a_process_killed_while_writing_leaves_a_readable_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pathlib import Path
            from cris_connect.builtin.journal import Journal, JournalConfig
            journal = Journal(JournalConfig(path=Path({str(path)!r}), fsync="never", max_bytes=200_000))
            n = 0
            while True:
                journal.write({{"time": "2025-01-01T00:00:00.000Z", "event": "command", "n": n,
                               "accession": ["RX" + str(n)] * 20}})
                n += 1
                if n == 2000:
                    print("ready", flush=True)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
    problems: list[journal.Problem] = []
    numbers = [r["n"] for r in journal.read(path, problems)]
    assert len(numbers) >= 1000 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert len(problems) <= 1  # at most the line being written when the process died


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fsync": "sometimes"}, "plugins.journal.fsync: 'sometimes' is not a policy; use \"always\""),
        ({"keep": 0}, "plugins.journal.keep: must be at least 1, got 0"),
        ({"max_bytes": 10}, "plugins.journal.max_bytes: must be at least 1024, got 10"),
        ({"path": 3}, "plugins.journal.path: expected a path as a string, got 3"),
        ({"colour": "red"}, "plugins.journal: unknown key colour"),
    ],
)
@pytest.mark.anyio
async def test_bad_settings_stop_start_up_with_the_key(tmp_path: Path, settings: dict, message: str) -> None:
    config = journal_config(tmp_path / "j.jsonl", **settings)
    with pytest.raises(ConfigError) as refused:
        async with Bridge(config):
            pass
    assert message in str(refused.value)


@pytest.mark.anyio
async def test_an_unwritable_journal_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    """No silent gap in the audit trail: the bridge refuses to start without its journal."""
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigError, match=r"plugins\.journal\.path: cannot open .*journal\.jsonl"):
        async with Bridge(journal_config(tmp_path / "file" / "journal.jsonl")):
            pass


def test_doctor_checks_the_journal_folder(tmp_path: Path) -> None:
    [ok] = journal.doctor_checks(JournalConfig(path=tmp_path / "new" / "journal.jsonl"))
    assert ok.ok
    (tmp_path / "file").write_text("")
    [bad] = journal.doctor_checks(JournalConfig(path=tmp_path / "file" / "journal.jsonl"))
    assert not bad.ok and "is a file, not a folder" in bad.detail
    loose = tmp_path / "loose.jsonl"
    loose.write_text("")
    loose.chmod(0o644)
    checks = journal.doctor_checks(JournalConfig(path=loose))
    assert [c.ok for c in checks] == [True, False] and checks[1].fix == f"chmod 600 {loose}"


# The reader


def sample_journal(path: Path) -> None:
    writer = Journal(JournalConfig(path=path, fsync="never", max_bytes=1024, keep=5))
    for n, (time, accession) in enumerate([("2025-03-01T08:00:00.000Z", "RX1"), ("2025-03-01T09:00:00.000Z", "RX2"),
                                           ("2025-03-01T10:00:00.000Z", "RX1"), ("2025-03-02T08:00:00.000Z", "RX3")]):
        writer.write({"time": time, "event": "command", "session": 1, "direction": "in", "command": "EVENT",
                      "accession": [accession], "exam_code": "CCHES", "nhs": "*******919",
                      "outcome": "received", "pad": "x" * 300 * n})
    writer.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cris_connect", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_the_journal_command_filters_across_rotations(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    sample_journal(path)
    assert (tmp_path / "journal.jsonl.1").exists()  # the filter has to read rotated files too
    result = run_cli("journal", "--path", str(path), "--accession", "RX1", "--json")
    assert result.returncode == 0, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["time"] for r in found] == ["2025-03-01T08:00:00.000Z", "2025-03-01T10:00:00.000Z"]
    result = run_cli("journal", "--path", str(path), "--since", "2025-03-01T09:30+00:00")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["TIME", "SESSION", "DIR", "COMMAND", "ACCESSION", "EXAM", "NHS", "OUTCOME"]
    assert [row.split()[:7] for row in rows] == [
        ["2025-03-01T10:00:00.000Z", "1", "<-", "EVENT", "RX1", "CCHES", "*******919"],
        ["2025-03-02T08:00:00.000Z", "1", "<-", "EVENT", "RX3", "CCHES", "*******919"],
    ]


def test_the_journal_command_reports_torn_lines_and_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    sample_journal(path)
    with path.open("ab") as file:
        file.write(b'{"time": "2025-03-')
    result = run_cli("journal", "--path", str(path), "--json")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 4
    assert "line 2: torn last line (the bridge stopped while writing it); skipped" in result.stderr
    result = run_cli("journal", "--path", str(path), "--since", "yesterday")
    assert result.returncode == 2
    assert "--since 'yesterday' is not an ISO date or time; write e.g. 2025-03-01" in result.stderr
    result = run_cli("journal", "--path", str(tmp_path / "none.jsonl"))
    assert result.returncode == 2 and "no journal at" in result.stderr


def test_the_journal_command_finds_the_path_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    sample_journal(path)
    config = tmp_path / "site.toml"
    config.write_text(f'[server]\nplain = true\n[plugins]\nenabled = ["journal"]\n'
                      f'[plugins.journal]\npath = "{path}"\n')
    result = run_cli("journal", "--config", str(config), "--accession", "RX3")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2 and "RX3" in result.stdout
