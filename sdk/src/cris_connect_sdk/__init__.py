"""cris-connect-sdk: what an adapter author needs to build and test an adapter without CRIS Reporting.

- `CrisReporting`: a simulator of the CRIS Reporting client (also `cris-connect simulate`);
- pytest fixtures `cris_bridge`, `cris_reporting`, `hook_recorder` (installed as a pytest plugin);
- `AdapterConformance`: the tests every adapter package should pass;
- `cris-connect new-adapter NAME`: a new adapter package whose tests pass as generated.
"""

from cris_connect_sdk.__about__ import __version__
from cris_connect_sdk.bridges import CrisBridges, test_config
from cris_connect_sdk.recorder import HookCall, HookRecorder
from cris_connect_sdk.simulator import BadFrame, CrisReporting, ExpectationFailed, SimulatorError

__all__ = [
    "BadFrame",
    "CrisBridges",
    "CrisReporting",
    "ExpectationFailed",
    "HookCall",
    "HookRecorder",
    "SimulatorError",
    "__version__",
    "test_config",
]
