"""The conformance kit as a test module: `pytest --cris-conformance NAME [--cris-conformance-config F]`.

The pytest plugin adds this file to the run and fills in the adapter's name and example config.
"""

from __future__ import annotations

from cris_connect_sdk.conformance import AdapterConformance


class TestAdapterConformance(AdapterConformance):
    """Configured from the command line by `cris_connect_sdk.pytest_plugin`."""
