"""cris-connect archive adapter for dcm4chee-arc-light and any DICOMweb or DIMSE archive.

On EVENT and READONLY it finds each accession's studies (QIDO-RS or C-FIND), publishes them in
`bridge.studies` for the viewer adapters, and prefetches the patient's most recent priors to the
workstation (dcm4chee REST retrieve/export, or C-MOVE). See docs/dcm4chee.md.
"""

from cris_connect_dcm4chee.adapter import Adapter, PrefetchReport, choose_priors
from cris_connect_dcm4chee.config import Dcm4cheeConfig, DimseConfig, PrefetchConfig
from cris_connect_dcm4chee.plugin import Dcm4cheePlugin

#: What the `dcm4chee` entry point loads.
plugin = Dcm4cheePlugin()

__all__ = [
    "Adapter",
    "Dcm4cheeConfig",
    "Dcm4cheePlugin",
    "DimseConfig",
    "PrefetchConfig",
    "PrefetchReport",
    "choose_priors",
    "plugin",
]
