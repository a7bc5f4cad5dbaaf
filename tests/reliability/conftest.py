"""The reliability suite reuses the core's fixtures: a real bridge on a free loopback port, captured logs."""

from core.tests.support import logs, start_bridge  # noqa: F401 - fixtures, found by name
