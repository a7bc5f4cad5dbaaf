"""`[plugins.ohif]`: where OHIF is, how to steer it, and where to look studies up.

Every value is checked when the bridge structures the section, so a config that cannot work stops
start-up with one sentence naming the key (`plugins.ohif.url: ...`).
"""

from __future__ import annotations

import os
import re
from typing import Any

import attrs

SHOW_MODES = ("cdp", "browser")
RELEASE_TARGETS = ("study_list", "blank", "keep")


def _http_url(example: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                f"{attribute.name} must be an http:// or https:// URL without query, got {value!r} "
                f"(e.g. {example})"
            )

    return check


def _one_of(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}"
            )

    return check


def _route(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]*", value) or (attribute.name == "mode" and not value):
        raise ValueError(
            f"{attribute.name} must be one OHIF route segment (letters, digits, - _ .), got {value!r} "
            '(e.g. "viewer", "segmentation", "tmtv")'
        )


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value!r}")


def _env_name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and value not in os.environ:
        raise ValueError(
            f"{attribute.name} names the environment variable {value}, which is not set; set it before "
            f"starting cris-connect, or remove {attribute.name}"
        )


def _trim_slash(value: str) -> str:
    return value.rstrip("/")


@attrs.frozen
class OhifConfig:
    """The `ohif` adapter's settings; only `url` is required."""

    #: The OHIF viewer's address, as the radiologist's browser opens it.
    url: str = attrs.field(converter=_trim_slash, validator=_http_url("https://ohif.example.nhs.uk"))
    #: "cdp": steer a running Chromium/Chrome/Edge tab; "browser": open URLs with the OS's browser.
    show: str = attrs.field(default="cdp", validator=_one_of(*SHOW_MODES))
    #: OHIF mode route that opens studies: /viewer, /segmentation, /tmtv, ...
    mode: str = attrs.field(default="viewer", validator=_route)
    #: Force one of OHIF's data sources (`/viewer/{data_source}?StudyInstanceUIDs=`); "" = default.
    data_source: str = attrs.field(default="", validator=_route)
    #: The DICOMweb (QIDO-RS) root for accession <-> StudyInstanceUID; "" = `{url}/dicom-web`.
    dicomweb_root: str = attrs.field(
        default="", converter=_trim_slash,
        validator=_http_url("https://pacs.example.nhs.uk/dicom-web"),
    )
    #: Environment variable holding a bearer token for the DICOMweb root (never the token itself).
    dicomweb_token_env: str = attrs.field(default="", validator=_env_name)
    #: The browser's DevTools HTTP endpoint (`--remote-debugging-port`), loopback normally.
    cdp_url: str = attrs.field(default="http://127.0.0.1:9222", converter=_trim_slash,
                               validator=_http_url("http://127.0.0.1:9222"))
    #: Open a tab when no tab shows OHIF.
    open_tab: bool = True
    #: On RELEASE, LOGOUT and CLEAR: OHIF's study list, a blank page, or leave the tab as it is.
    on_release: str = attrs.field(default="study_list", validator=_one_of(*RELEASE_TARGETS))
    #: Send DISPLAY to CRIS when the radiologist opens a study in OHIF themselves.
    follow_viewer: bool = True
    #: How long to wait for the archive adapter's lookup of an accession (seconds).
    study_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Per HTTP request: QIDO and the DevTools endpoint.
    http_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: How long to wait for the viewer page's load event after navigating.
    load_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: The whole of one command (lookup + navigation); keep it below [plugins] hook_timeout.
    command_timeout: float = attrs.field(default=8.0, validator=_positive)
    #: Pause between attempts to reach the browser when it is not running.
    reconnect_interval: float = attrs.field(default=2.0, validator=_positive)

    @property
    def qido_root(self) -> str:
        return self.dicomweb_root or f"{self.url}/dicom-web"

    @property
    def token(self) -> str | None:
        return os.environ.get(self.dicomweb_token_env) if self.dicomweb_token_env else None
