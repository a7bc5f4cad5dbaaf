"""DICOM JSON (PS3.18 F.2) study results -> `Study` values. Pure functions, no I/O.

Archives differ in what they include (Orthanc leaves out IssuerOfPatientID and StudyDescription
unless asked; dcm4chee with `includefield=all` sends everything), so only StudyInstanceUID is
required; anything that is not the shape PS3.18 describes is a `MalformedResponse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from cris_connect.studies import Study

STUDY_INSTANCE_UID = "0020000D"
ACCESSION_NUMBER = "00080050"
PATIENT_ID = "00100020"
ISSUER_OF_PATIENT_ID = "00100021"
STUDY_DATE = "00080020"
STUDY_TIME = "00080030"
MODALITIES_IN_STUDY = "00080061"
STUDY_DESCRIPTION = "00081030"

#: Asked for explicitly: QIDO's default study attributes leave out issuer and description.
INCLUDE_FIELDS = (ISSUER_OF_PATIENT_ID, STUDY_DESCRIPTION, MODALITIES_IN_STUDY, STUDY_TIME)


class MalformedResponse(ValueError):
    """The archive answered something that is not a DICOM JSON array of studies."""


@attrs.frozen
class FoundStudy:
    """A study as the archive described it: the shared `Study` plus what we sort priors by."""

    study: Study
    study_time: str | None = None

    @property
    def recency(self) -> tuple[str, str]:
        """Sorts oldest first; unknown dates sort before every known one."""
        return (self.study.study_date or "", self.study_time or "")


def studies_from_json(payload: object) -> list[FoundStudy]:
    """Parse a QIDO-RS studies answer (already decoded from JSON)."""
    if not isinstance(payload, list):
        raise MalformedResponse(f"expected a DICOM JSON array of studies, got {_kind(payload)}")
    return [study_from_json(item, index) for index, item in enumerate(payload)]


def study_from_json(item: object, index: int = 0) -> FoundStudy:
    if not isinstance(item, Mapping):
        raise MalformedResponse(f"study {index}: expected a DICOM JSON object, got {_kind(item)}")
    uid = _string(item, STUDY_INSTANCE_UID, index)
    if not uid:
        raise MalformedResponse(f"study {index}: no StudyInstanceUID (0020000D)")
    study = Study(
        study_instance_uid=uid,
        accession=_string(item, ACCESSION_NUMBER, index),
        patient_id=_string(item, PATIENT_ID, index),
        issuer_of_patient_id=_string(item, ISSUER_OF_PATIENT_ID, index),
        study_date=_string(item, STUDY_DATE, index),
        modalities=_strings(item, MODALITIES_IN_STUDY, index),
        description=_string(item, STUDY_DESCRIPTION, index),
    )
    return FoundStudy(study=study, study_time=_string(item, STUDY_TIME, index))


def _values(item: Mapping[str, Any], tag: str, index: int) -> list[Any]:
    element = item.get(tag)
    if element is None:
        return []
    if not isinstance(element, Mapping):
        raise MalformedResponse(f"study {index}: attribute {tag} is {_kind(element)}, not an object")
    values = element.get("Value", [])
    if not isinstance(values, list):
        raise MalformedResponse(f"study {index}: attribute {tag} has a Value that is not an array")
    return values


def _strings(item: Mapping[str, Any], tag: str, index: int) -> tuple[str, ...]:
    values = _values(item, tag, index)
    for value in values:
        if not isinstance(value, str):
            raise MalformedResponse(f"study {index}: attribute {tag} holds {_kind(value)}, not a string")
    return tuple(value.strip() for value in values if value.strip())


def _string(item: Mapping[str, Any], tag: str, index: int) -> str | None:
    values = _strings(item, tag, index)
    return values[0] if values else None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )
