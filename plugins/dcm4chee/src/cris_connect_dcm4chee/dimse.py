"""C-FIND and C-MOVE with pynetdicom, for archives reached over DIMSE.

pynetdicom blocks, so each operation runs in a worker thread (`anyio.to_thread.run_sync`) and
the event loop - and every other plugin - goes on meanwhile. Timeouts bound every step.
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio.to_thread
import attrs
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from cris_connect.studies import Study
from cris_connect_dcm4chee.dicomjson import FoundStudy
from cris_connect_dcm4chee.web import ArchiveError

PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000
WARNING = 0xB000

RETURN_KEYS = (
    "StudyInstanceUID", "AccessionNumber", "PatientID", "IssuerOfPatientID", "StudyDate", "StudyTime",
    "ModalitiesInStudy", "StudyDescription",
)


@attrs.frozen
class Peer:
    host: str
    port: int
    called_aet: str
    calling_aet: str
    #: Seconds for connecting and association set-up.
    timeout: float
    #: Seconds to wait for each DIMSE answer (a C-MOVE's final answer can take minutes).
    dimse_timeout: float | None = None

    def __str__(self) -> str:
        return f"{self.called_aet}@{self.host}:{self.port}"


@attrs.frozen
class MoveResult:
    completed: int = 0
    warning: int = 0
    failed: int = 0
    #: "done" (the archive says it moved it), "queued" (it will, later).
    state: str = "done"


def _ae(peer: Peer) -> AE:
    ae = AE(ae_title=peer.calling_aet)
    ae.acse_timeout = peer.timeout
    ae.dimse_timeout = peer.dimse_timeout or peer.timeout
    ae.network_timeout = peer.timeout
    ae.connection_timeout = peer.timeout
    return ae


def _associate(ae: AE, peer: Peer, what: str):  # type: ignore[no-untyped-def]
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.called_aet)
    if not assoc.is_established:
        state = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
        raise ArchiveError(
            f"{what} at {peer}: association {state}; check host, port and that {peer.called_aet} "
            f"accepts calling AE {peer.calling_aet}"
        )
    return assoc


def find_studies_blocking(peer: Peer, matching: Mapping[str, str]) -> list[FoundStudy]:
    ae = _ae(peer)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for keyword in RETURN_KEYS:
        setattr(query, keyword, "")
    for keyword, value in matching.items():
        setattr(query, keyword, value)
    assoc = _associate(ae, peer, "C-FIND")
    found: list[FoundStudy] = []
    try:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status:  # no answer within dimse_timeout: pynetdicom yields an empty Dataset
                raise ArchiveError(f"C-FIND at {peer}: no answer within {peer.timeout:g} s")
            code = int(status.Status)
            if code in PENDING and identifier is not None:
                found.append(_found(identifier))
            elif code != SUCCESS:
                raise ArchiveError(f"C-FIND at {peer}: failed with status 0x{code:04X}")
    finally:
        assoc.release()
    return found


async def find_studies(peer: Peer, matching: Mapping[str, str]) -> list[FoundStudy]:
    return await anyio.to_thread.run_sync(find_studies_blocking, peer, matching)


def move_study_blocking(peer: Peer, study_instance_uid: str, destination: str) -> MoveResult:
    ae = _ae(peer)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_instance_uid
    assoc = _associate(ae, peer, "C-MOVE")
    result = MoveResult()
    try:
        for status, _ in assoc.send_c_move(query, destination, StudyRootQueryRetrieveInformationModelMove):
            if not status:
                raise ArchiveError(
                    f"C-MOVE at {peer}: no answer within {peer.dimse_timeout or peer.timeout:g} s"
                )
            code = int(status.Status)
            result = MoveResult(
                completed=int(status.get("NumberOfCompletedSuboperations", 0) or 0),
                warning=int(status.get("NumberOfWarningSuboperations", 0) or 0),
                failed=int(status.get("NumberOfFailedSuboperations", 0) or 0),
            )
            if code in PENDING:
                continue
            if code == SUCCESS:
                return result
            if code == WARNING or (code & 0xF000) == WARNING:
                if result.failed:
                    raise ArchiveError(
                        f"C-MOVE to {destination} via {peer}: {result.failed} instance(s) failed, "
                        f"{result.completed} sent"
                    )
                return result
            advice = "; is the destination AE known to the archive?" if code == 0xA801 else ""
            raise ArchiveError(
                f"C-MOVE to {destination} via {peer}: failed with status 0x{code:04X}{advice}"
            )
    finally:
        assoc.release()
    raise ArchiveError(f"C-MOVE to {destination} via {peer}: the archive sent no final status")


async def move_study(peer: Peer, study_instance_uid: str, destination: str) -> MoveResult:
    # Abandon on cancel: at shutdown the bridge must not wait for a long move; the thread ends
    # by itself within the DIMSE timeout.
    return await anyio.to_thread.run_sync(
        move_study_blocking, peer, study_instance_uid, destination, abandon_on_cancel=True
    )


def _found(identifier: Dataset) -> FoundStudy:
    def text(keyword: str) -> str | None:
        value = identifier.get(keyword)
        value = str(value).strip() if value is not None else ""
        return value or None

    modalities = identifier.get("ModalitiesInStudy")
    if modalities is None or modalities == "":
        mods: tuple[str, ...] = ()
    elif isinstance(modalities, str):
        mods = tuple(m for m in modalities.split("\\") if m)
    else:
        mods = tuple(str(m) for m in modalities if str(m))
    uid = text("StudyInstanceUID")
    if uid is None:
        raise ArchiveError("C-FIND answer without StudyInstanceUID")
    study = Study(
        study_instance_uid=uid,
        accession=text("AccessionNumber"),
        patient_id=text("PatientID"),
        issuer_of_patient_id=text("IssuerOfPatientID"),
        study_date=text("StudyDate"),
        modalities=mods,
        description=text("StudyDescription"),
    )
    return FoundStudy(study=study, study_time=text("StudyTime"))
