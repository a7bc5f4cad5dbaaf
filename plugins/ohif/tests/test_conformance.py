"""The SDK's conformance kit against the OHIF adapter, with no browser on the debugging port and
no DICOMweb root: failures are logged, and nothing escapes or blocks."""

from __future__ import annotations

from cris_connect_sdk.conformance import AdapterConformance


class TestOhifConformance(AdapterConformance):
    plugin_name = "ohif"
    example_config = {"url": "http://127.0.0.1:9", "cdp_url": "http://127.0.0.1:9"}
    broken_config = {"show": "hologram"}
    broken_config_key = "plugins.ohif.show"
