"""The SDK's conformance kit, run against the file-drop adapter as a vendor would run it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cris_connect_sdk.conformance import AdapterConformance

_FOLDERS = Path(tempfile.mkdtemp(prefix="filedrop-conformance-"))


class TestFiledropConformance(AdapterConformance):
    plugin_name = "filedrop"
    example_config = {"outbox": str(_FOLDERS / "outbox"), "inbox": str(_FOLDERS / "inbox"), "settle_time": 0.05}
    broken_config = {"outbox": 3}
    broken_config_key = "plugins.filedrop.outbox"
