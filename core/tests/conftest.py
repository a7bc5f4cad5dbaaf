"""Fixtures for the core's tests (defined in support.py, shared with tests/reliability and tests/browser)."""

from core.tests.support import logs, start_bridge  # noqa: F401 - fixtures, found by name
