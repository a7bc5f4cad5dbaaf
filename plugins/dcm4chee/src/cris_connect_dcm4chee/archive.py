"""Asking the archive which studies match: QIDO-RS (DICOMweb) or C-FIND (DIMSE).

Both answer a list of `FoundStudy` for matching keys named by their DICOM keywords
(`AccessionNumber`, `PatientID`, `IssuerOfPatientID`, `StudyInstanceUID`), and raise
`ArchiveError` with a one-sentence reason when the archive cannot be asked or answers nonsense.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol

from cris_connect_dcm4chee import dicomjson, dimse
from cris_connect_dcm4chee.dicomjson import FoundStudy, MalformedResponse
from cris_connect_dcm4chee.web import ArchiveError, ArchiveHttp


class StudyQuery(Protocol):
    #: For log lines: "QIDO-RS at http://pacs:8080/...".
    where: str

    async def find(self, matching: Mapping[str, str]) -> list[FoundStudy]: ...


class QidoStudies:
    """`GET {root}/studies?...`. dcm4chee answers 204 with no body for no match, Orthanc `[]`."""

    def __init__(self, http: ArchiveHttp, root: str) -> None:
        self.http = http
        self.root = root
        self.where = f"QIDO-RS at {root}"

    async def find(self, matching: Mapping[str, str]) -> list[FoundStudy]:
        params: dict[str, str | list[str]] = dict(matching)
        params["includefield"] = list(dicomjson.INCLUDE_FIELDS)
        url = f"{self.root}/studies"
        response = await self.http.request("GET", url, params=params, accept=(200, 204))
        if response.status_code == 204 or not response.content.strip():
            return []
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise ArchiveError(
                f"GET {url}: the answer is not JSON ({response.headers.get('content-type', 'no type')})"
            ) from None
        try:
            return dicomjson.studies_from_json(payload)
        except MalformedResponse as exc:
            raise ArchiveError(f"GET {url}: malformed DICOM JSON: {exc}") from None


class CFindStudies:
    """Study Root C-FIND, run in a worker thread (pynetdicom blocks)."""

    def __init__(self, peer: dimse.Peer) -> None:
        self.peer = peer
        self.where = f"C-FIND at {peer}"

    async def find(self, matching: Mapping[str, str]) -> list[FoundStudy]:
        return await dimse.find_studies(self.peer, matching)
