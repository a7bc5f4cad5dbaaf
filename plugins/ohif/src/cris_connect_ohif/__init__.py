"""cris-connect viewer adapter for OHIF v3.

CRIS opens a report -> the browser's OHIF tab shows that exam's studies (DevTools protocol, or the
operating system's browser); the report is left -> OHIF returns to its study list; the radiologist
opens a study in OHIF -> CRIS is asked to display its report. See docs/ohif.md.
"""

from cris_connect_ohif.adapter import Navigation, OhifAdapter
from cris_connect_ohif.cdp import CdpConnection, CdpError, CdpEvent, CdpUnavailable, DevTools, Tab
from cris_connect_ohif.config import OhifConfig
from cris_connect_ohif.plugin import OhifPlugin
from cris_connect_ohif.qido import ArchiveError, FoundStudy, Qido
from cris_connect_ohif.urls import study_instance_uids, study_list_url, viewer_url

__all__ = [
    "ArchiveError",
    "CdpConnection",
    "CdpError",
    "CdpEvent",
    "CdpUnavailable",
    "DevTools",
    "FoundStudy",
    "Navigation",
    "OhifAdapter",
    "OhifConfig",
    "OhifPlugin",
    "Qido",
    "Tab",
    "study_instance_uids",
    "study_list_url",
    "viewer_url",
]
