"""Headless Debian Chromium with the DevTools protocol on a loopback port.

``/usr/bin/chromium`` is a wrapper script that ``exec``s the real browser, so the PID we start is
the browser's; renderer, GPU and utility processes stay in the process group we created and are
killed with it. The crash handler detaches into its own session and exits by itself once the
browser is gone; ``XDG_CONFIG_HOME`` keeps its database (and all other state) in the work dir.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from . import processes
from .polling import wait_until
from .service import Service

CHROMIUM_EXECUTABLE = "/usr/bin/chromium"

# Running as root needs --no-sandbox; the rest keeps a test browser quiet, offline and fast.
HEADLESS_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    # 0: Chromium binds a free port itself and writes it to DevToolsActivePort - no race.
    "--remote-debugging-port=0",
)


class Chromium(Service):
    """One headless browser with its own empty profile."""

    def __init__(
        self,
        workdir: Path,
        *,
        start_url: str = "about:blank",
        window_size: tuple[int, int] = (1280, 800),
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.workdir = workdir
        self.start_url = start_url
        self.window_size = window_size
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.profile = workdir / "profile"
        self.log = workdir / "chromium.log"
        self.port: int | None = None
        self.websocket_url: str | None = None  # the browser target's webSocketDebuggerUrl
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def debug_url(self) -> str:
        """``http://127.0.0.1:PORT``: ``/json/version``, ``/json/list``, ``PUT /json/new?URL``."""
        if self.port is None:
            raise RuntimeError("Chromium is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        if self._process is not None:
            return
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        width, height = self.window_size
        env = dict(os.environ)
        env["XDG_CONFIG_HOME"] = str(self.workdir / "config")
        env["XDG_CACHE_HOME"] = str(self.workdir / "cache")
        self._process = processes.spawn(
            [
                CHROMIUM_EXECUTABLE,
                *HEADLESS_FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                *self.extra_args,
                self.start_url,
            ],
            log=self.log,
            env=env,
        )
        try:
            self.port = wait_until(
                lambda: self._active_port(port_file), timeout=self.start_timeout, what="DevToolsActivePort"
            )
            version = wait_until(
                self._version, timeout=self.start_timeout, what=f"{self.debug_url}/json/version"
            )
            self.websocket_url = version["webSocketDebuggerUrl"]
        except BaseException:
            self.stop()
            raise

    def _active_port(self, port_file: Path) -> int | None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise processes.ExitedEarly("Chromium", self._process.returncode, self.log)
        try:
            lines = port_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        # Written as "PORT\n/devtools/browser/ID"; wait for both lines, it may be mid-write.
        return int(lines[0]) if len(lines) >= 2 else None

    def _version(self) -> dict[str, Any] | None:
        try:
            return self.version()
        except httpx.TransportError:
            return None

    def version(self) -> dict[str, Any]:
        """``/json/version``: Browser, Protocol-Version, webSocketDebuggerUrl..."""
        # trust_env=False: loopback never goes through an HTTP(S)_PROXY from the environment.
        response = httpx.get(f"{self.debug_url}/json/version", timeout=5.0, trust_env=False)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def pages(self) -> list[dict[str, Any]]:
        """The open tabs (``/json/list`` entries of type ``page``)."""
        response = httpx.get(f"{self.debug_url}/json/list", timeout=5.0, trust_env=False)
        response.raise_for_status()
        return [target for target in response.json() if target.get("type") == "page"]

    def new_page(self, url: str = "about:blank") -> dict[str, Any]:
        """Open a tab (``PUT /json/new``; GET answers 405) and return its target description."""
        response = httpx.put(f"{self.debug_url}/json/new?{url}", timeout=10.0, trust_env=False)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self) -> None:
        # SIGTERM to the browser lets it shut its children down; then SIGKILL whatever is left
        # in our process group.
        if self._process is not None:
            processes.stop(self._process, timeout=self.stop_timeout)
            self._process = None
        self.port = None
        self.websocket_url = None
