"""`GET /metrics` in Prometheus text format, with `prometheus-client` (`pip install cris-connect[metrics]`).

Every value is read from the bridge when scraped (a custom collector over a registry of our own),
so nothing is counted twice, no global registry is touched, and several bridges in one process
(tests, embedding) do not clash.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cris_connect.server import StartupError

if TYPE_CHECKING:
    from cris_connect.bridge import Bridge

INSTALL_HINT = "pip install cris-connect[metrics]"


def check_available() -> None:
    """At start-up: `console.metrics = true` without prometheus-client is a one-line error."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise StartupError(
            f"console.metrics needs the prometheus-client package: {INSTALL_HINT}, or set "
            "console.metrics = false"
        ) from None


class BridgeCollector:
    """Reads sessions, command counters, plugin failures and latency from a running bridge."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )

        bridge = self.bridge
        activity = bridge.activity
        yield InfoMetricFamily("cris_connect", "cris-connect version",
                               value={"version": bridge.health()["version"]})
        uptime = time.monotonic() - bridge.started_at if bridge.started_at is not None else 0.0
        yield GaugeMetricFamily("cris_connect_uptime_seconds", "Seconds since the bridge started",
                                value=uptime)
        yield GaugeMetricFamily("cris_connect_sessions", "Connected CRIS Reporting sessions",
                                value=len(bridge.sessions))
        commands = CounterMetricFamily(
            "cris_connect_commands", "Commands by direction (in: from CRIS, out: to CRIS)",
            labels=["direction", "command"],
        )
        refused = CounterMetricFamily("cris_connect_refused_frames",
                                      "Frames from CRIS that were not messages")
        refused_count = 0
        for (direction, command), count in sorted(activity.counts.items()):
            if direction == "refused":
                refused_count += count
            else:
                commands.add_metric([direction, command], count)
        refused.add_metric([], refused_count)
        yield commands
        yield refused
        errors = CounterMetricFamily("cris_connect_plugin_errors",
                                     "Hooks that raised or overran plugins.hook_timeout", labels=["plugin"])
        missed = CounterMetricFamily("cris_connect_plugin_missed",
                                     "Deliveries dropped because the plugin's mailbox was full",
                                     labels=["plugin"])
        queued = GaugeMetricFamily("cris_connect_plugin_queued", "Deliveries waiting in the plugin's mailbox",
                                   labels=["plugin"])
        for name, runner in bridge.runners.items():
            errors.add_metric([name], runner.failures)
            missed.add_metric([name], runner.overflowed)
            queued.add_metric([name], runner.queued)
        yield errors
        yield missed
        yield queued
        latency = HistogramMetricFamily(
            "cris_connect_dispatch_latency_seconds",
            "From receiving a command from CRIS to a plugin having handled it", labels=["plugin"],
        )
        for name, histogram in sorted(activity.latency.items()):
            latency.add_metric([name], histogram.cumulative(), sum_value=histogram.total)
        yield latency


def render(bridge: Bridge) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(bridge))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
