"""Built-in plugin `journal`: an append-only audit trail of every command, both ways.

NHS governance asks who looked at what, and when. Each line of the journal is one JSON object:
a command from CRIS (`"direction": "in"`), a refused frame, a command sent to CRIS (`"out"`), a
session opening or closing, the bridge starting or stopping. NHS and CHI numbers are masked unless
`[plugins.journal] show_identifiers = true`; passwords are never written.

Crash safety: every line is written with one `write` on a file opened `O_APPEND`, so lines from
one process never interleave and a crash leaves at most one torn last line. Reopening a file whose
last line is torn starts a new line first, and the reader skips (and reports) a line it cannot
read. Files are rotated by size (`journal.jsonl` -> `journal.jsonl.1` -> ... -> `.<keep>`) and
created readable by the owner only. Read them with `cris-connect journal`.

The plugin keeps its state in this module (the entry point names the module, like `log`): one
bridge per process journals at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import attrs

from cris_connect.__about__ import __version__
from cris_connect.config import ConfigError
from cris_connect.hookspecs import hookimpl
from cris_connect.masking import mask_identifier
from cris_connect.messages import UnknownCommand

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge
    from cris_connect.context import Context
    from cris_connect.doctor import Check
    from cris_connect.messages import CrisCommand, Message, PacsCommand
    from cris_connect.session import Session

name = "journal"
log = logging.getLogger("cris_connect.journal")

DEFAULT_PATH = Path("~/.cris-connect/journal.jsonl")
#: When the journal asks the operating system to put a line on disk.
FSYNC_POLICIES = ("always", "rotate", "never")


def _positive(minimum: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")

    return check


def _fsync_policy(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in FSYNC_POLICIES:
        raise ValueError(
            f"{value!r} is not a policy; use \"always\" (every line reaches the "
            "disk before the next command), \"rotate\" (at rotation and shutdown) or \"never\" (the OS "
            "decides)"
        )


def _expand(path: str | Path) -> Path:
    return Path(path).expanduser()


@attrs.frozen
class JournalConfig:
    """`[plugins.journal]`."""

    #: The current file; rotated files get `.1`, `.2`, ... appended.
    path: Path = attrs.field(default=DEFAULT_PATH, converter=_expand)
    #: "always": fsync after every line (in a worker thread, so the event loop never waits on the
    #: disk); "rotate": when a file is rotated or closed; "never": leave it to the OS.
    fsync: str = attrs.field(default="always", validator=_fsync_policy)
    #: Rotate when the current file would grow past this many bytes.
    max_bytes: int = attrs.field(default=10 * 1024 * 1024, validator=_positive(1024))
    #: Rotated files kept; the oldest beyond this is deleted.
    keep: int = attrs.field(default=10, validator=_positive(1))
    #: Write NHS and CHI numbers unmasked (a governance decision: the journal then identifies patients).
    show_identifiers: bool = False


class Journal:
    """The file side: append one line per record, rotate by size. No event loop needed."""

    def __init__(self, config: JournalConfig) -> None:
        self.config = config
        self.path = config.path
        self._fd: int | None = None
        self._size = 0
        self.lines_written = 0

    def open(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        size = os.fstat(fd).st_size
        if size and _last_byte(self.path) != b"\n":
            # A crash tore the last line: end it, so the next record starts a line of its own.
            os.write(fd, b"\n")
            size += 1
        self._fd, self._size = fd, size

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as one line, with one `write` (rotating first when the file is full)."""
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        if self._fd is None:
            self.open()
        if self._size and self._size + len(data) > self.config.max_bytes:
            self.rotate()
        assert self._fd is not None
        written = os.write(self._fd, data)
        while written < len(data):  # a short write only happens when the disk is full
            written += os.write(self._fd, data[written:])
        self._size += len(data)
        self.lines_written += 1
        if self.config.fsync == "always":
            os.fsync(self._fd)

    def rotate(self) -> None:
        self.close()
        keep = self.config.keep
        for extra in _rotated(self.path, start=keep + 1):  # left over from a larger `keep`
            extra.unlink(missing_ok=True)
        for number in range(keep - 1, 0, -1):
            older = _numbered(self.path, number)
            if older.exists():
                os.replace(older, _numbered(self.path, number + 1))
        if self.path.exists():
            os.replace(self.path, _numbered(self.path, 1))
        self.open()

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self.config.fsync != "never":
                os.fsync(fd)
        finally:
            os.close(fd)


def _numbered(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


def _rotated(path: Path, start: int = 1) -> Iterator[Path]:
    number = start
    while (candidate := _numbered(path, number)).exists():
        yield candidate
        number += 1


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1)


def now_iso() -> str:
    """UTC, millisecond precision, sortable as text: `2025-03-01T09:30:12.345Z`."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def describe(message: Message, *, show_identifiers: bool) -> dict[str, Any]:
    """The journal fields of a message: never its password, identifiers masked unless asked."""
    fields: dict[str, Any] = {"command": message.command}
    accession = getattr(message, "accession", ())
    if accession:
        fields["accession"] = list(accession)
    for attribute, key in (("exam_code", "exam_code"), ("username", "username")):
        value = getattr(message, attribute, None)
        if value:
            fields[key] = value
    for attribute in ("nhs", "chi"):
        value = getattr(message, attribute, None)
        if value:
            fields[attribute] = value if show_identifiers else mask_identifier(value)
    # Fields the specification does not name may carry anything: their names only.
    extra = getattr(message, "extra", None) or getattr(message, "raw", None)
    if extra:
        fields["fields"] = sorted(str(key) for key in extra if key != "command")
    return fields


# The plugin


@attrs.define
class _State:
    journal: Journal | None = None
    config: JournalConfig = JournalConfig()


_state = _State()


async def _append(record: dict[str, Any]) -> None:
    journal = _state.journal
    if journal is None:
        return
    record = {"time": now_iso(), **record}
    try:
        if journal.config.fsync == "always":
            # fsync can take tens of milliseconds; the event loop serves CRIS meanwhile.
            await anyio.to_thread.run_sync(journal.write, record)
        else:
            journal.write(record)
    except OSError as exc:
        log.error("journal: cannot write to %s (%s); %s %s not journaled; free space or fix the "
                  "folder's permissions", journal.path, exc.strerror or exc, record.get("event"),
                  record.get("command", ""))


@hookimpl
def register_config_class() -> type:
    return JournalConfig


@hookimpl
async def bridge_started(bridge: Bridge, config: JournalConfig) -> None:
    journal = Journal(config)
    try:
        journal.open()
    except OSError as exc:
        # An audit trail that silently is not there is worse than a bridge that will not start.
        raise ConfigError(
            f"plugins.journal.path: cannot open {config.path} ({exc.strerror or exc}); set it to a "
            "file in a writable folder"
        ) from None
    _state.journal, _state.config = journal, config
    log.info("journal: appending to %s", config.path)
    await _append({"event": "bridge_started", "pid": os.getpid(), "version": __version__})


@hookimpl
async def bridge_stopping(bridge: Bridge) -> None:
    await _append({"event": "bridge_stopping"})
    journal, _state.journal = _state.journal, None
    if journal is not None:
        await anyio.to_thread.run_sync(journal.close)


@hookimpl
async def session_opened(session: Session) -> None:
    await _append({"event": "session_opened", "session": session.id, "peer": session.peer,
                   "origin": session.origin, "secure": session.secure})


@hookimpl
async def session_closed(session: Session, reason: str) -> None:
    await _append({"event": "session_closed", "session": session.id, "outcome": reason})


@hookimpl
async def on_command(message: CrisCommand | UnknownCommand, context: Context, session: Session) -> None:
    fields = describe(message, show_identifiers=_state.config.show_identifiers)
    outcome = "received (unknown command)" if isinstance(message, UnknownCommand) else "received"
    await _append({"event": "command", "session": session.id, "direction": "in", **fields,
                   "outcome": outcome})


@hookimpl
async def on_refused(session: Session, reason: str) -> None:
    await _append({"event": "refused", "session": session.id, "direction": "in",
                   "outcome": f"refused: {reason}"})


@hookimpl
async def on_sent(message: PacsCommand, sessions: tuple[Session, ...]) -> None:
    fields = describe(message, show_identifiers=_state.config.show_identifiers)
    for session in sessions:  # one line per session, so each line names one session
        await _append({"event": "sent", "session": session.id, "direction": "out", **fields,
                       "outcome": "sent"})


@hookimpl
def doctor_checks(config: JournalConfig) -> list[Check]:
    from cris_connect.doctor import Check

    path = config.path
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return [Check("journal folder writable", False, f"{existing} is a file, not a folder",
                      "set [plugins.journal] path to a file in a folder")]
    if existing is None or not os.access(existing, os.W_OK | os.X_OK):
        where = folder if existing == folder else existing
        return [Check("journal folder writable", False, f"{where} is not writable by this user",
                      "fix its permissions, or set [plugins.journal] path")]
    checks = [Check("journal folder writable", True, f"{path} can be appended to")]
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if not os.access(path, os.W_OK):
            checks.append(Check("journal file writable", False, f"{path} is read-only",
                                f"chmod 600 {path}"))
        elif mode & 0o077:
            checks.append(Check("journal readable by its owner only", False,
                                f"{path} has mode {mode:03o}; it names accessions and sessions",
                                f"chmod 600 {path}"))
    return checks


# Reading: `cris-connect journal`


@attrs.frozen
class Problem:
    """A line the reader skipped: torn by a crash, or not a journal record."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.reason}; skipped"


def journal_files(path: Path) -> list[Path]:
    """The current file and its rotations, oldest first."""
    rotated = list(_rotated(path))
    return [*reversed(rotated), *([path] if path.exists() else [])]


def read(path: Path, problems: list[Problem] | None = None) -> Iterator[dict[str, Any]]:
    """Every record, oldest first, across rotations. Unreadable lines go to `problems`."""
    for file in journal_files(path):
        with file.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                reason = None
                if not raw.endswith(b"\n"):
                    reason = "torn last line (the bridge stopped while writing it)"
                try:
                    record = json.loads(raw)
                except ValueError:
                    reason = reason or "not valid JSON (torn by a crash?)"
                    record = None
                if reason is None and not (isinstance(record, dict) and isinstance(record.get("time"), str)):
                    reason = "not a journal record"
                if reason is not None:
                    if problems is not None:
                        problems.append(Problem(file, number, reason))
                    continue
                assert isinstance(record, dict)
                yield record


def parse_since(text: str) -> dt.datetime:
    """An ISO date or time; without a zone it is this computer's local time."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r} is not an ISO date or time; write e.g. 2025-03-01 or 2025-03-01T09:30"
        ) from None
    return when.astimezone(dt.UTC) if when.tzinfo is None else when


def select(records: Iterator[dict[str, Any]], *, since: dt.datetime | None = None,
           accession: str | None = None) -> Iterator[dict[str, Any]]:
    for record in records:
        if since is not None:
            try:
                when = dt.datetime.fromisoformat(record["time"])
            except ValueError:
                continue
            if when < since:
                continue
        if accession is not None and accession not in record.get("accession", ()):
            continue
        yield record


_COLUMNS = (("time", 24), ("session", 7), ("direction", 3), ("command", 10), ("accession", 16),
            ("exam_code", 8), ("nhs", 11), ("outcome", 0))


def table_row(record: dict[str, Any]) -> str:
    cells = []
    for key, width in _COLUMNS:
        value = record.get(key)
        if key == "command" and value is None:
            value = record.get("event", "")
        if key == "direction":
            value = {"in": "<-", "out": "->"}.get(str(value), "")
        text = ",".join(value) if isinstance(value, list) else ("" if value is None else str(value))
        cells.append(text.ljust(width) if width else text)
    return "  ".join(cells).rstrip()


def table_header() -> str:
    names = {"direction": "dir", "exam_code": "exam"}
    return "  ".join(names.get(key, key).upper().ljust(width) for key, width in _COLUMNS).rstrip()


def add_command(commands: Any) -> None:
    """`cris-connect journal`: add the subcommand to the CLI's subparsers."""
    parser = commands.add_parser("journal", help="read the audit journal (who looked at what, when)")
    parser.add_argument("--path", help=f"journal file (default: [plugins.journal] path of --config, "
                                       f"else {DEFAULT_PATH})")
    parser.add_argument("--config", "-c", help="TOML config file whose [plugins.journal] path to read")
    parser.add_argument("--since", help="only records at or after this ISO date/time (local unless a "
                                        "zone is given)")
    parser.add_argument("--accession", help="only records naming this accession number")
    parser.add_argument("--json", action="store_true", help="JSON lines as stored, instead of a table")
    parser.set_defaults(func=run_command)


def journal_path(args: argparse.Namespace) -> Path:
    if args.path:
        return Path(args.path).expanduser()
    if args.config:
        from cris_connect import config as config_module

        section = config_module.read_toml(Path(args.config)).get("plugins", {}).get("journal", {})
        if isinstance(section, dict) and isinstance(section.get("path"), str):
            return Path(section["path"]).expanduser()
    return DEFAULT_PATH.expanduser()


def run_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    path = journal_path(args)
    since = parse_since(args.since) if args.since else None
    if not journal_files(path):
        print(f"cris-connect: no journal at {path}; enable the journal plugin "
              "([plugins] enabled = [..., \"journal\"]) or give --path", file=err)
        return 2
    problems: list[Problem] = []
    if not args.json:
        print(table_header(), file=out)
    with contextlib.suppress(BrokenPipeError):  # `cris-connect journal | head`
        for record in select(read(path, problems), since=since, accession=args.accession):
            if args.json:
                print(json.dumps(record, ensure_ascii=False, separators=(",", ":")), file=out)
            else:
                print(table_row(record), file=out)
    for problem in problems:
        print(f"cris-connect: {problem}", file=err)
    return 0


__all__: Sequence[str] = ["Journal", "JournalConfig", "read", "select"]
