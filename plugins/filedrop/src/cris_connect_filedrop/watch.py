"""When to look at the inbox again: on a file-system change event, or on a timer.

Events come from `watchfiles` (inotify, FSEvents, ReadDirectoryChangesW), whose `awatch` runs on
anyio and so on asyncio and trio alike. Network shares (NFS, SMB/CIFS, ...) often deliver no
events for files written by another machine, so on those, when `poll = true`, or when the
watcher fails, the inbox is polled instead. Even with events, the folder is scanned every
`SAFETY_SCAN` seconds in case one was missed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import anyio

log = logging.getLogger("cris_connect_filedrop.watch")

#: With change events, the longest the inbox goes unscanned anyway.
SAFETY_SCAN = 30.0
#: How often the watcher thread checks whether it should stop; bounds shutdown time.
_WATCH_STEP_MS = 200
_NETWORK_FILE_SYSTEMS = {
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "fuse.sshfs",
    "fuse.rclone", "davfs", "fuse.s3fs", "lustre", "gpfs",
}


def network_file_system(folder: Path) -> str | None:
    """The network file-system type `folder` is on ("nfs", "cifs", a UNC path), or None."""
    text = str(folder)
    if text.startswith(("\\\\", "//")):
        return "a network share (UNC path)"
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            entries = [line.split() for line in mounts]
    except OSError:
        return None
    resolved = str(folder.resolve())
    best, kind = "", None
    for entry in entries:
        if len(entry) < 3:
            continue
        mount_point = entry[1].replace("\\040", " ")
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, entry[2]
    return kind if kind in _NETWORK_FILE_SYSTEMS else None


class FolderWatch:
    """Wakes the inbox reader when `folder` changes, or on a timer."""

    def __init__(self, folder: Path, *, poll: bool, poll_interval: float) -> None:
        self.folder = folder
        self.poll_interval = poll_interval
        self.polling = poll
        self._changed = anyio.Event()
        self._stop = anyio.Event()
        if not poll:
            network = network_file_system(folder)
            if network:
                log.info("inbox %s is on %s, which may not report changes; polling every %g s",
                         folder, network, poll_interval)
                self.polling = True

    @property
    def rescan_interval(self) -> float:
        return self.poll_interval if self.polling else SAFETY_SCAN

    async def run(self) -> None:
        """Deliver change events until `stop()`; on a watcher failure, fall back to polling."""
        if self.polling:
            return
        # watchfiles logs every change at INFO; an operator who set a level keeps it.
        watchfiles_log = logging.getLogger("watchfiles.main")
        if watchfiles_log.level == logging.NOTSET:
            watchfiles_log.setLevel(logging.WARNING)
        try:
            from watchfiles import awatch

            async for _changes in awatch(
                self.folder, watch_filter=None, recursive=False, stop_event=self._stop,
                step=50, rust_timeout=_WATCH_STEP_MS, ignore_permission_denied=True,
            ):
                self._changed.set()
        except Exception as exc:  # an inotify limit, a vanished folder: polling still works
            log.warning("inbox %s: change events unavailable (%s: %s); polling every %g s",
                        self.folder, type(exc).__name__, exc, self.poll_interval)
            self.polling = True
            self._changed.set()

    def fall_back_to_polling(self, why: str) -> None:
        """Stop trusting events (the watched folder was replaced, say); scan on a timer instead."""
        if not self.polling:
            log.warning("inbox %s: %s; polling every %g s from now on", self.folder, why, self.poll_interval)
            self.polling = True
            self._stop.set()

    async def wait(self, at_most: float) -> None:
        """Until the folder changes, or `at_most` seconds."""
        with anyio.move_on_after(at_most):
            await self._changed.wait()
        self._changed = anyio.Event()

    def stop(self) -> None:
        """Let the watcher thread return promptly (cancelling alone waits for its timeout)."""
        self._stop.set()

