"""What the figures were measured on: CPU, cores, memory, Python and the versions that matter."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.targets import PEERS, ROOT


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _command_output(*command: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def describe() -> dict[str, Any]:
    ws_package = PEERS / "node_modules" / "ws" / "package.json"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_mb": _memory_mb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "versions": {
            "cris-connect": _version("cris-connect"),
            "websockets": _version("websockets"),
            "anyio": _version("anyio"),
            "trio": _version("trio"),
            "pluggy": _version("pluggy"),
            "attrs": _version("attrs"),
            "cattrs": _version("cattrs"),
            "node": _command_output("node", "--version"),
            "ws": json.loads(ws_package.read_text())["version"] if ws_package.exists() else None,
        },
        "commit": _command_output("git", "rev-parse", "--short", "HEAD"),
        "cris_connect_from": _command_output(
            sys.executable, "-c", "import cris_connect, os; print(os.path.dirname(cris_connect.__file__))"
        ),
    }
