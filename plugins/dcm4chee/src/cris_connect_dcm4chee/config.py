"""`[plugins.dcm4chee]`: where the archive is, how to reach it, and how to prefetch priors.

Every rule that spans keys is checked here, when the bridge structures the section, so a config
that cannot work stops start-up with one sentence naming the key (`plugins.dcm4chee.prefetch...`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

QUERY_KINDS = ("qido", "dimse")
PREFETCH_METHODS = ("retrieve", "export", "c-move")
PATIENT_ID_SOURCES = ("nhs", "chi", "study")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float | int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value!r}")


def _not_negative(instance: Any, attribute: attrs.Attribute[Any], value: float | int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value!r}")


def _one_of(*choices: str) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}"
            )

    return check


def _http_url(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(
            f"{attribute.name} must start with http:// or https://, got {value!r} "
            "(e.g. http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/rs)"
        )


def _env_name(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and value not in os.environ:
        raise ValueError(
            f"{attribute.name} names the environment variable {value}, which is not set; "
            f"set {value} before starting cris-connect, or remove {attribute.name}"
        )


def _ae_title(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and (len(value) > 16 or not value.isascii() or "\\" in value or value != value.strip()):
        raise ValueError(
            f"{attribute.name} must be a DICOM AE title (1-16 ASCII characters, no backslash, no "
            f"leading or trailing spaces), got {value!r}"
        )


def _existing_file(instance: Any, attribute: attrs.Attribute[Any], value: Path | None) -> None:
    if value is not None and not value.is_file():
        raise ValueError(
            f"{attribute.name}: {value} does not exist or is not a file; give the CA bundle (PEM)"
        )


def _trim_slash(value: str) -> str:
    return value.rstrip("/")


@attrs.frozen
class DimseConfig:
    """The archive's DICOM (DIMSE) side, for `query = "dimse"` and `prefetch.method = "c-move"`."""

    host: str = attrs.field(default="")
    port: int = attrs.field(default=104, validator=_positive)
    #: The archive's AE title (called AE).
    called_aet: str = attrs.field(default="DCM4CHEE", validator=_ae_title)
    #: Our AE title (calling AE); the archive must know it for C-MOVE.
    calling_aet: str = attrs.field(default="CRIS_CONNECT", validator=_ae_title)
    #: Seconds for connecting and for each DIMSE answer.
    timeout: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen
class PrefetchConfig:
    """Moving the patient's most recent earlier studies to the workstation."""

    enabled: bool = False
    #: "retrieve" (dcm4chee C-MOVE via REST), "export" (dcm4chee exporter), "c-move" (any PACS).
    method: str = attrs.field(default="retrieve", validator=_one_of(*PREFETCH_METHODS))
    #: How many priors (most recent first).
    priors: int = attrs.field(default=3, validator=_not_negative)
    #: Where the patient ID for the priors query comes from, first available wins:
    #: "nhs" / "chi" (the number CRIS sent, with nhs_issuer / chi_issuer), "study" (the current
    #: study's PatientID and IssuerOfPatientID).
    patient_id_from: tuple[str, ...] = ("study",)
    nhs_issuer: str = "NHS"
    chi_issuer: str = "CHI"
    #: The workstation's AE title, where the priors go (retrieve and c-move).
    destination_aet: str = attrs.field(default="", validator=_ae_title)
    #: retrieve: the AE dcm4chee moves from (`.../dimse/{move_scp}/...`), often dcm4chee itself.
    move_scp: str = attrs.field(default="", validator=_ae_title)
    #: retrieve: the DIMSE REST root; default: `url` with its final `/rs` replaced by `/dimse/{move_scp}`.
    retrieve_url: str = attrs.field(default="", converter=_trim_slash, validator=_http_url)
    #: retrieve: a dcm4chee queue (e.g. "Retrieve") to queue the move (202) instead of waiting.
    queue: str = ""
    #: export: dcm4chee's ExporterID, e.g. "CRIS-PREFETCH" or "dicom:WORKSTATION".
    exporter: str = ""
    #: QIDO-RS root of the destination; studies it already has are not moved again.
    destination_qido_url: str = attrs.field(default="", converter=_trim_slash, validator=_http_url)
    #: Seconds one study's move may take.
    timeout: float = attrs.field(default=300.0, validator=_positive)
    #: Also prefetch when a historic report is opened (READONLY), not only on EVENT.
    on_readonly: bool = False

    def __attrs_post_init__(self) -> None:
        for source in self.patient_id_from:
            if source not in PATIENT_ID_SOURCES:
                raise ValueError(
                    f"patient_id_from: {source!r} is not a source; use any of "
                    f"{', '.join(repr(s) for s in PATIENT_ID_SOURCES)}"
                )
        if not self.patient_id_from:
            raise ValueError('patient_id_from must name at least one source, e.g. ["study"]')
        if not self.enabled:
            return
        if self.method in ("retrieve", "c-move") and not self.destination_aet:
            raise ValueError(
                f"destination_aet is needed for method {self.method!r}: the workstation's AE title"
            )
        if self.method == "retrieve" and not (self.move_scp or self.retrieve_url):
            raise ValueError(
                "move_scp is needed for method 'retrieve': the AE title dcm4chee retrieves "
                "from (its own, e.g. DCM4CHEE, or another PACS it knows)"
            )
        if self.method == "export" and not self.exporter:
            raise ValueError(
                "exporter is needed for method 'export': a dcm4chee ExporterID, or "
                "dicom:AET for a synchronous C-STORE"
            )


@attrs.frozen
class Dcm4cheeConfig:
    """`[plugins.dcm4chee]`."""

    #: QIDO-RS root: `http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/rs`, `http://orthanc:8042/dicom-web`.
    url: str = attrs.field(default="", converter=_trim_slash, validator=_http_url)
    #: "qido" (DICOMweb) or "dimse" (C-FIND, `[plugins.dcm4chee.dimse]`).
    query: str = attrs.field(default="qido", validator=_one_of(*QUERY_KINDS))
    #: Seconds for each HTTP request (connect, read, write).
    timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Extra attempts after a connection failure, a timeout or a 5xx, with doubling backoff.
    retries: int = attrs.field(default=2, validator=_not_negative)
    backoff: float = attrs.field(default=0.2, validator=_not_negative)
    #: Basic authentication: the user, and the environment variable holding the password.
    username: str = ""
    password_env: str = attrs.field(default="", validator=_env_name)
    #: Bearer authentication: the environment variable holding the token (e.g. from Keycloak).
    token_env: str = attrs.field(default="", validator=_env_name)
    #: Verify the archive's TLS certificate; `ca_file` names the CA bundle (PEM) to trust.
    verify_tls: bool = True
    ca_file: Path | None = attrs.field(default=None, validator=_existing_file)
    #: Lookups running at once (each EVENT starts one per accession).
    max_concurrent_lookups: int = attrs.field(default=8, validator=_positive)
    dimse: DimseConfig = DimseConfig()
    prefetch: PrefetchConfig = PrefetchConfig()

    def __attrs_post_init__(self) -> None:
        if self.query == "qido" and not self.url:
            raise ValueError(
                "url is needed: the archive's QIDO-RS root, e.g. "
                "http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/rs (or set query = \"dimse\")"
            )
        needs_dimse = self.query == "dimse" or (self.prefetch.enabled and self.prefetch.method == "c-move")
        if needs_dimse and not self.dimse.host:
            raise ValueError(
                "dimse.host is needed for C-FIND/C-MOVE: set [plugins.dcm4chee.dimse] host, port, "
                "called_aet"
            )
        if self.prefetch.enabled and self.prefetch.method in ("retrieve", "export") and not self.url:
            raise ValueError(f"url is needed for prefetch method {self.prefetch.method!r}")
        if self.prefetch.enabled and self.prefetch.method == "retrieve" and not self.prefetch.retrieve_url:
            if not self.url.endswith("/rs"):
                raise ValueError(
                    "prefetch.retrieve_url is needed: url does not end in /rs, so the dimse REST "
                    "root cannot be derived (e.g. http://pacs:8080/dcm4chee-arc/aets/DCM4CHEE/dimse/PACS2)"
                )
        if self.username and not self.password_env:
            raise ValueError(
                "password_env is needed with username: the environment variable holding the password"
            )
        if self.username and self.token_env:
            raise ValueError(
                "username and token_env are both set; use basic or bearer authentication, not both"
            )

    @property
    def retrieve_root(self) -> str:
        """`.../aets/DCM4CHEE/dimse/{move_scp}`, where dcm4chee's retrieve endpoints live."""
        if self.prefetch.retrieve_url:
            return self.prefetch.retrieve_url
        return self.url.removesuffix("/rs") + f"/dimse/{self.prefetch.move_scp}"
