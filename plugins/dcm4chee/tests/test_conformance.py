"""The SDK's conformance kit against the archive adapter, with its archive down (a closed port):
lookups fail and are logged, and nothing escapes or blocks."""

from __future__ import annotations

from cris_connect_sdk.conformance import AdapterConformance


class TestDcm4cheeConformance(AdapterConformance):
    plugin_name = "dcm4chee"
    example_config = {"url": "http://127.0.0.1:9/dcm4chee-arc/aets/DCM4CHEE/rs", "timeout": 0.5, "retries": 0}
    broken_config = {"url": 3}
    broken_config_key = "plugins.dcm4chee.url"
