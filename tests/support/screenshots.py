"""Save what a test's browser shows to ``test-artifacts/`` at the repository root.

CI keeps that directory as an artifact, so a failing viewer test can be looked at afterwards.
"""

from __future__ import annotations

import re
from pathlib import Path

from .cdp import CdpSession, capture_screenshot, navigate
from .chromium import Chromium

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"


def artifact_path(name: str, suffix: str = ".png") -> Path:
    """``test-artifacts/<name><suffix>``, with the name made safe for a file system."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "screenshot"
    return ARTIFACTS_DIR / f"{safe}{suffix}"


def save_screenshot(chromium: Chromium, name: str, *, url: str | None = None, timeout: float = 30.0) -> Path:
    """Screenshot the browser's first tab (after loading ``url``, if given); return the PNG's path."""
    pages = chromium.pages() or [chromium.new_page()]
    with CdpSession(pages[0]["webSocketDebuggerUrl"], timeout=timeout) as session:
        if url is not None:
            navigate(session, url, timeout=timeout)
        png = capture_screenshot(session)
    path = artifact_path(name)
    path.write_bytes(png)
    return path
