"""Repository-wide pytest settings.

- Every async test runs on asyncio and on trio (anyio's pytest plugin, `anyio_backend`).
- Under CI (`CI` set), a skipped test fails the run: tests that need real components (Orthanc,
  nginx, Chromium, OHIF) skip on a laptop that lacks them, but CI installs them all, so a skip
  there means something is broken.
"""

from __future__ import annotations

import os

import pytest

# Real components (Orthanc, storage SCP, OHIF on nginx, Chromium) for every test directory.
# Imported, not `pytest_plugins`: pytest refuses that when this conftest is not the rootdir's
# (the SDK's conformance run collects from below it with another rootdir).
from tests.support.fixtures import (  # noqa: F401
    chromium,
    ohif_dist,
    ohif_server,
    ohif_viewer,
    orthanc,
    orthanc_factory,
    storage_scp,
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every component must run: {reason}"
