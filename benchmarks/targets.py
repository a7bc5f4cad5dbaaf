"""The servers under test, each in its own process, and the load client that is run against them.

A `Target` says how to start one server; `Running` is one started process. Every process started
here is stopped (SIGTERM, then SIGKILL after a deadline) when its `with` block ends, error or not.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "peers"
PYTHON = sys.executable


@attrs.frozen
class Target:
    """A server to measure: its name in tables, how to start it, and whether it is the bridge."""

    name: str
    command: tuple[str, ...]
    bridge: bool = False


def bridge(backend: str, *, plugins: int = 1, sleeper: bool = False, max_sessions: int = 64,
           name: str | None = None, extra: Sequence[str] = ()) -> Target:
    command = (PYTHON, "-m", "benchmarks.bridge_target", "--backend", backend, "--plugins", str(plugins),
               "--max-sessions", str(max_sessions), *(("--sleeper",) if sleeper else ()), *extra)
    return Target(name or f"bridge-{backend}", command, bridge=True)


WEBSOCKETS = Target("websockets", (PYTHON, "-m", "benchmarks.peers.websockets_peer"))
NODE_WS = Target("node-ws", ("node", str(PEERS / "node_ws_peer.js")))


def node_peer_unavailable() -> str | None:
    """Why the Node `ws` peer cannot run (None when it can); installs `ws` on first use."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PEERS / "node_modules" / "ws").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed (needed once to install the ws package)"
        try:
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=PEERS,
                           check=True, timeout=180, capture_output=True)
        except (subprocess.SubprocessError, OSError) as exc:
            return f"npm install of ws failed ({exc})"
    return None


class TargetFailed(RuntimeError):
    pass


class Running:
    """One started server process; `port` and `pid` come from its first stdout line."""

    def __init__(self, target: Target, process: subprocess.Popen[str], log: Path) -> None:
        self.target, self.process, self.log = target, process, log
        self.port = 0
        self.pid = process.pid

    def rss_kb(self) -> int:
        """VmRSS of the server process, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise TargetFailed(f"{self.target.name}: no VmRSS in /proc/{self.pid}/status")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""


def read_line(stream: IO[str], timeout: float) -> str:
    """A line from a child's stdout, or "" when none comes within `timeout` (or it exited)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def stop(process: subprocess.Popen[str], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `timeout`; only this process, by its id."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


@contextmanager
def started(target: Target, *, timeout: float = 20.0) -> Iterator[Running]:
    """Start `target`, wait for its `{"port": N}` line, stop it on the way out."""
    log_dir = Path(tempfile.mkdtemp(prefix="cris-bench-"))
    log = log_dir / f"{target.name}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(target.command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                   cwd=ROOT, env=environment())
    running = Running(target, process, log)
    try:
        assert process.stdout is not None
        line = read_line(process.stdout, timeout)  # printed only once the server listens
        if not line:
            raise TargetFailed(f"{target.name} did not start within {timeout:g} s:\n{running.log_tail()}")
        ready = json.loads(line)
        running.port, running.pid = int(ready["port"]), int(ready.get("pid", process.pid))
        yield running
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()
        shutil.rmtree(log_dir, ignore_errors=True)


def run_load(mode: str, running: Running, *args: str, timeout: float = 60.0) -> dict[str, object]:
    """Run the load client once against a started target; its JSON result."""
    command = [PYTHON, "-m", "benchmarks.load", mode, "--port", str(running.port), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env=environment())
    except subprocess.TimeoutExpired as exc:
        raise TargetFailed(f"load client against {running.target.name} timed out") from exc
    if done.returncode != 0:
        raise TargetFailed(
            f"load client against {running.target.name} failed:\n{done.stderr[-2000:]}\n"
            f"server log:\n{running.log_tail()}"
        )
    return dict(json.loads(done.stdout.splitlines()[-1]))


@contextmanager
def idle_sessions(running: Running, sessions: int, concurrency: int) -> Iterator[dict[str, object]]:
    """Open `sessions` idle sessions from a client process; closed when the block ends."""
    command = [PYTHON, "-m", "benchmarks.load", "idle", "--port", str(running.port),
               "--sessions", str(sessions), "--concurrency", str(concurrency)]
    client = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, env=environment())
    try:
        assert client.stdout is not None and client.stdin is not None
        line = read_line(client.stdout, 120)
        if not line:
            client.wait(30)
            raise TargetFailed(f"idle client against {running.target.name} failed:\n"
                               f"{client.stderr.read()[-2000:] if client.stderr else ''}\n"
                               f"server log:\n{running.log_tail()}")
        result = dict(json.loads(line))
        yield result
        client.stdin.write("\n")
        client.stdin.flush()
        result.update(json.loads(read_line(client.stdout, 30) or "{}"))
        client.wait(30)
    finally:
        stop(client)
        for stream in (client.stdin, client.stdout, client.stderr):
            if stream is not None:
                stream.close()
