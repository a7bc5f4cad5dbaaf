"""Server processes a test starts itself: own session, output to a log file, stopped by PID.

Each process is the leader of a new session (and so of a new process group): a Ctrl-C in the
terminal does not reach it, and its helpers (nginx workers, Chromium renderers) can be killed
as one group without touching any process this test did not start.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def spawn(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log``."""
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else dict(env),
            cwd=cwd,
        )


def stop(process: subprocess.Popen[bytes], *, timeout: float, sig: signal.Signals = signal.SIGTERM) -> None:
    """Ask the process to exit with ``sig``; SIGKILL its whole group if it is not gone by ``timeout``."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    kill(process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything left in its process group, then reap the leader."""
    try:
        # The group id is the leader's PID (start_new_session); it stays reserved while any member
        # lives, and killpg fails harmlessly once the group is empty.
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def log_tail(log: Path, lines: int = 40) -> str:
    """The end of a service's log, for error messages."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class ExitedEarly(RuntimeError):
    """A service process exited while we were waiting for it to become ready."""

    def __init__(self, name: str, returncode: int, log: Path) -> None:
        super().__init__(f"{name} exited with status {returncode}; end of {log}:\n{log_tail(log)}")
        self.returncode = returncode
        self.log = log
