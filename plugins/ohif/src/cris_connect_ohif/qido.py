"""QIDO-RS look-ups the viewer needs: accession -> StudyInstanceUIDs, StudyInstanceUID -> accession.

Used when no archive adapter publishes studies in `bridge.studies`, and always for the reverse
direction (the radiologist opened a study in OHIF that CRIS never sent). No match is `200 []` on
Orthanc and `204` with no body on dcm4chee: both mean "not found".
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx

from cris_connect_ohif.cdp import describe

ACCESSION_NUMBER = "00080050"
STUDY_INSTANCE_UID = "0020000D"


class ArchiveError(RuntimeError):
    """The DICOMweb root could not answer; the text says what is wrong and what to check."""


@attrs.frozen
class FoundStudy:
    study_instance_uid: str
    accession: str | None


def _value(dataset: dict[str, Any], tag: str) -> str | None:
    values = dataset.get(tag, {}).get("Value") or []
    value = values[0] if values else None
    return value if isinstance(value, str) and value else None


class Qido:
    """Study-level QIDO against one DICOMweb root, e.g. `https://pacs/dicom-web`."""

    def __init__(self, root: str, *, timeout: float = 5.0, token: str | None = None) -> None:
        self.root = root.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/dicom+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    async def studies(self, **match: str) -> list[FoundStudy]:
        """`GET {root}/studies?Key=value...`; [] when nothing matches."""
        url = f"{self.root}/studies"
        try:
            async with httpx.AsyncClient(timeout=self.timeout, headers=self.headers,
                                         trust_env=not is_loopback(self.root)) as client:
                response = await client.get(url, params=match)
        except httpx.TimeoutException:
            raise ArchiveError(f"the DICOMweb root {self.root} did not answer within {self.timeout:g} s; "
                               "check the archive is up (plugins.ohif.dicomweb_root)") from None
        except httpx.TransportError as exc:
            raise ArchiveError(f"cannot reach the DICOMweb root {self.root} ({describe(exc)}); check the "
                               "archive is up and plugins.ohif.dicomweb_root") from None
        if response.status_code == 204:
            return []
        if response.status_code in (401, 403):
            raise ArchiveError(f"the DICOMweb root {self.root} refused the query (HTTP "
                               f"{response.status_code}); check plugins.ohif.dicomweb_token_env")
        if response.status_code != 200:
            raise ArchiveError(f"the DICOMweb root {self.root} answered HTTP {response.status_code} to a "
                               "study query; check plugins.ohif.dicomweb_root points at QIDO-RS")
        try:
            datasets = response.json() if response.content.strip() else []
        except ValueError:
            raise ArchiveError(f"the DICOMweb root {self.root} did not answer DICOM JSON; check "
                               "plugins.ohif.dicomweb_root points at QIDO-RS") from None
        if not isinstance(datasets, list):
            raise ArchiveError(f"the DICOMweb root {self.root} answered something other than a list "
                               "of studies")
        found = []
        for dataset in datasets:
            if isinstance(dataset, dict) and (uid := _value(dataset, STUDY_INSTANCE_UID)):
                found.append(FoundStudy(uid, _value(dataset, ACCESSION_NUMBER)))
        return found

    async def by_accession(self, accession: str) -> list[FoundStudy]:
        """The studies with exactly this accession number.

        An accession with `*`, `?` or `\\` is never sent: the archive would read it as a pattern and
        could answer another patient's studies. Answers for another accession (an archive with
        fuzzy matching on) are dropped for the same reason.
        """
        if is_pattern(accession):
            return []
        found = await self.studies(AccessionNumber=accession)
        return [study for study in found if study.accession in (None, accession)]

    async def by_study_instance_uid(self, uid: str) -> FoundStudy | None:
        matches = await self.studies(StudyInstanceUID=uid, includefield=ACCESSION_NUMBER)
        # A QIDO server that ignores the key would answer every study: keep the exact match only.
        return next((study for study in matches if study.study_instance_uid == uid), None)


def is_pattern(accession: str) -> bool:
    """True for an accession QIDO would read as a pattern (or match everything with)."""
    return not accession.strip() or any(char in accession for char in "*?\\")


def is_loopback(url: str) -> bool:
    """Loopback never goes through an HTTP(S)_PROXY from the environment; other hosts may need one."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False
