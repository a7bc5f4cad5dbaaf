"""File operations a folder-polling reader can trust: no partial files, nothing overwritten.

Blocking; call through `anyio.to_thread.run_sync`.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

#: Errors from `os.link` that mean "this file system has no hard links" (FAT, some SMB shares).
_NO_HARD_LINKS = {errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}
_MAX_RENAMES = 1000


def write_new_file(folder: Path, name: str, content: bytes) -> Path:
    """Write `content` as `folder/name` atomically; returns the path it got.

    Temporary name in the same folder (starting with `.`, ending in `.tmp`, which readers skip),
    flush + fsync, then publish under the final name without replacing anything: an existing
    name gets a `~1`, `~2`... suffix. A missing folder is created again (someone may have
    cleaned up).
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        path = _publish(Path(temporary), folder / name)
    except BaseException:
        _remove_quietly(Path(temporary))
        raise
    _sync_folder(folder)
    return path


def move_without_overwrite(source: Path, folder: Path) -> Path:
    """Move `source` into `folder` under its own name (or a `~n` variant); returns the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = _publish(source, folder / source.name)
    _sync_folder(folder)
    return path


def _publish(source: Path, target: Path) -> Path:
    """Give `source` the name `target` (or a free variant of it), never replacing a file.

    `os.rename` replaces silently on POSIX, so the name is claimed with `os.link`, which fails
    when the name exists; where hard links are unsupported, rename after checking.
    """
    for attempt in range(_MAX_RENAMES):
        candidate = target if attempt == 0 else target.with_name(f"{target.stem}~{attempt}{target.suffix}")
        try:
            os.link(source, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if candidate.exists():
                continue
            os.rename(source, candidate)
            return candidate
        os.unlink(source)
        return candidate
    raise FileExistsError(errno.EEXIST, f"no free name like {target.name} after {_MAX_RENAMES} tries",
                          str(target))


def _sync_folder(folder: Path) -> None:
    """Make the new name durable too (POSIX; Windows has no directory handles to fsync)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
