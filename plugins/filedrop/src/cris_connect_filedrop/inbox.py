"""The inbox: command files dropped into a folder are sent to CRIS, in name order.

A file is read only when it is complete: names starting with `.` or ending in `.tmp`/`.part` are
skipped until renamed, and a file is read only once its size and modification time have stayed
the same for `settle_time` seconds. Files are handled one at a time in name order, and a file
still settling holds back the files after it, so CRIS sees commands in the order they were named.

A sent file moves to `done/`; a refused one to `failed/` with `<name>.error` beside it saying why
in one sentence. A file that holds a password (a LOGIN) is deleted as soon as it is read and is
never moved anywhere; if it is refused, only the `.error` file is kept. When no CRIS session is
connected, a command waits up to `session_wait` seconds for one (CRIS reconnecting after the
bridge restarted) before it is refused.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import anyio
import attrs

from cris_connect import Bridge, InvalidMessage, NoSession
from cris_connect.masking import describe
from cris_connect.messages import PacsCommand
from cris_connect_filedrop.atomic import move_without_overwrite, write_new_file
from cris_connect_filedrop.config import DONE_FOLDER, FAILED_FOLDER, INCOMPLETE_SUFFIXES
from cris_connect_filedrop.formats import CommandFileError, parse_command_file
from cris_connect_filedrop.watch import FolderWatch

log = logging.getLogger("cris_connect_filedrop.inbox")

#: A command file is one small message; the vendor's examples buffer 64 KiB per message.
MAX_FILE_SIZE = 65536
_PASSWORD_VALUE = re.compile(
    r"""(?:"password"\s*:\s*"?|^\s*password\s*=\s*)([^"\r\n,}]*)""", re.IGNORECASE | re.MULTILINE
)


@attrs.frozen
class _Seen:
    """A file as last seen, and since when it has looked like that."""

    size: int
    mtime_ns: int
    since: float


class _Stopping(Exception):
    """The bridge is shutting down: leave the file where it is for the next start."""


def is_candidate(name: str) -> bool:
    """Not hidden and not marked as still being written."""
    return not name.startswith(".") and not name.lower().endswith(INCOMPLETE_SUFFIXES)


def list_candidates(folder: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of the regular files in `folder` worth reading, in name order."""
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not is_candidate(entry.name):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # taken away while we looked
                continue
            found.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return sorted(found)


class InboxReader:
    """Scans `folder` and sends what it finds to CRIS through `bridge`."""

    def __init__(
        self,
        folder: Path,
        bridge: Bridge,
        *,
        encoding: str,
        settle_time: float,
        session_wait: float,
        watch: FolderWatch,
        show_identifiers: bool = False,
    ) -> None:
        self.folder = folder
        self.bridge = bridge
        # utf-8-sig: Notepad and PowerShell start UTF-8 files with a byte-order mark.
        self.encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        self.settle_time = settle_time
        self.session_wait = session_wait
        self.watch = watch
        self.show_identifiers = show_identifiers
        self.done = folder / DONE_FOLDER
        self.failed = folder / FAILED_FOLDER
        self.sent = 0
        self.refused = 0
        self._seen: dict[str, _Seen] = {}
        # Files handled but not movable (a permissions change): never send them twice.
        self._stuck: set[str] = set()
        self._scan_failing = False
        self._session_opened = anyio.Event()

    def session_opened(self) -> None:
        """A CRIS session connected: commands waiting for one can go."""
        self._session_opened.set()

    async def run(self) -> None:
        """The reader task: scan, then wait for a change (or the next settle check, or a timer)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.watch.run)
            while True:
                settling = await self.scan()
                await self.watch.wait(self.settle_time if settling else self.watch.rescan_interval)

    async def scan(self) -> bool:
        """Handle every complete file in name order; True if some file is still settling."""
        try:
            entries = await anyio.to_thread.run_sync(list_candidates, self.folder)
        except OSError as exc:
            if not self._scan_failing:
                log.error("inbox %s cannot be read (%s); will keep trying", self.folder,
                          exc.strerror or exc)
                self._scan_failing = True
            if isinstance(exc, FileNotFoundError):  # cleaned away: make it again for the next scan
                await anyio.to_thread.run_sync(_make_folders, (self.folder, self.done, self.failed))
                # The watcher watched the old folder; the new one reports nothing to it.
                self.watch.fall_back_to_polling("the folder was removed and made again")
            return False
        if self._scan_failing:
            log.warning("inbox %s can be read again", self.folder)
            self._scan_failing = False
        now = anyio.current_time()
        ready: list[str] = []
        settling = False
        seen: dict[str, _Seen] = {}
        for name, size, mtime_ns in entries:
            if name in self._stuck:
                continue
            previous = self._seen.get(name)
            if previous is not None and (previous.size, previous.mtime_ns) == (size, mtime_ns):
                seen[name] = previous
                if not settling and now - previous.since >= self.settle_time:
                    ready.append(name)
                    continue
            else:
                seen[name] = _Seen(size, mtime_ns, now)
            settling = True  # this file, and so every later name, waits
        self._seen = seen
        self._stuck &= {name for name, _, _ in entries}
        for name in ready:
            try:
                await self.handle(name)
            except _Stopping:
                return False
            except Exception:  # one odd file must not stop the inbox
                log.exception("inbox: %s could not be handled; it stays and is not read again", name)
                self._stuck.add(name)
            self._seen.pop(name, None)
        return settling

    async def handle(self, name: str) -> None:
        """Read one command file, send it to CRIS, and file it under done/ or failed/."""
        path = self.folder / name
        try:
            data = await anyio.to_thread.run_sync(_read_small, path)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("inbox: %s cannot be read (%s); will try again", name, exc.strerror or exc)
            return
        if data is None:
            await self._refuse(path, f"the file is larger than {MAX_FILE_SIZE} bytes, too big for a "
                                     "command file", holds_password=False)
            return
        holds_password = b"password" in data.lower()
        if holds_password:
            # A password must not outlive its reading on disk, whatever happens next.
            if not await anyio.to_thread.run_sync(_delete, path):
                self._stuck.add(name)  # still on disk: never read (and send) it twice
        reason: str | None
        try:
            message = parse_command_file(data.decode(self.encoding))
        except UnicodeDecodeError:
            reason = f"the file is not {self.encoding} text"
        except CommandFileError as exc:
            reason = _without_passwords(str(exc), data)
        else:
            reason = await self._send(message, name)
            if reason is None:
                await self._done(path, message, holds_password)
                return
        await self._refuse(path, reason, holds_password=holds_password)

    async def _send(self, message: PacsCommand, name: str) -> str | None:
        """None when CRIS got it; otherwise why not, as one sentence."""
        if not self.bridge.sessions and self.session_wait > 0:
            log.info("inbox: %s waits up to %g s for a CRIS Reporting session", name, self.session_wait)
            with anyio.move_on_after(self.session_wait):
                while not self.bridge.sessions:
                    await self._session_opened.wait()
                    self._session_opened = anyio.Event()
        try:
            await self.bridge.send(message)
        except NoSession as exc:
            if self.bridge.health()["status"] == "stopping":
                log.warning("inbox: %s not sent, the bridge is stopping; it is handled at the next "
                            "start%s", name, " (but it held a password and was deleted)"
                            if message.command == "LOGIN" else "")
                raise _Stopping from None
            waited = f" within {self.session_wait:g} s" if self.session_wait else ""
            return f"no CRIS Reporting session connected{waited}, so {message.command} was not sent ({exc})"
        except InvalidMessage as exc:
            return str(exc)
        return None

    async def _done(self, path: Path, message: PacsCommand, deleted: bool) -> None:
        what = describe(message, show_identifiers=self.show_identifiers)
        # Counted once the file is out of the inbox, so a count tells a watcher the name is free.
        if deleted:
            log.info("inbox: %s sent to CRIS (%s); file deleted as it held a password", path.name, what)
            self.sent += 1
            return
        try:
            await anyio.to_thread.run_sync(move_without_overwrite, path, self.done)
        except OSError as exc:
            self._stuck.add(path.name)
            log.error("inbox: %s sent to CRIS (%s) but cannot be moved to %s (%s); it stays and is "
                      "not sent again", path.name, what, self.done, exc.strerror or exc)
        else:
            log.info("inbox: %s sent to CRIS (%s)", path.name, what)
        self.sent += 1

    async def _refuse(self, path: Path, reason: str, *, holds_password: bool) -> None:
        if holds_password:
            reason += " (the file held a password, so it was deleted)"
        where = self.failed / path.name
        try:
            if not holds_password:
                where = await anyio.to_thread.run_sync(move_without_overwrite, path, self.failed)
            await anyio.to_thread.run_sync(
                write_new_file, self.failed, f"{where.name}.error", (reason + "\n").encode("utf-8")
            )
        except OSError as exc:
            self._stuck.add(path.name)
            log.error("inbox: %s refused (%s) but cannot be filed in %s (%s); it stays and is not "
                      "read again", path.name, reason, self.failed, exc.strerror or exc)
        else:
            log.warning("inbox: %s refused: %s", path.name, reason)
        self.refused += 1


def _read_small(path: Path) -> bytes | None:
    """The file's bytes, or None when it is too big to be a command file."""
    with open(path, "rb") as file:
        data = file.read(MAX_FILE_SIZE + 1)
    return None if len(data) > MAX_FILE_SIZE else data


def _make_folders(folders: tuple[Path, ...]) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # reported by the scan that found the inbox missing


def _delete(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("inbox: %s holds a password but cannot be deleted (%s); delete it by hand",
                  path, exc.strerror or exc)
        return False
    return True


def _without_passwords(reason: str, data: bytes) -> str:
    """A refusal sentence may quote a bad value; never let that value be a password."""
    text = data.decode("utf-8", errors="replace")
    for match in _PASSWORD_VALUE.finditer(text):
        secret = match.group(1).strip()
        if secret:
            reason = reason.replace(secret, "***")
    return reason
