"""The conformance kit, run against the launcher as installed (from its entry point)."""

from __future__ import annotations

from pathlib import Path

from cris_connect_sdk.conformance import AdapterConformance


class TestConformance(AdapterConformance):
    plugin_name = "launcher"
    example_config = Path(__file__).parent.parent / "example.toml"
    broken_config = {"timeout": "ten seconds"}
    broken_config_key = "plugins.launcher.timeout"
