"""Figures the reliability suite measured (sessions held, commands counted, memory), for
docs/reliability.md: written as JSON lines to $RELIABILITY_FIGURES when it is set."""

from __future__ import annotations

import json
import os
from typing import Any


def record(test: str, **figures: Any) -> None:
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as file:
            file.write(json.dumps({"test": test, **figures}) + "\n")


def rss_kib() -> int:
    """This process's resident memory, from /proc/self/status (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
