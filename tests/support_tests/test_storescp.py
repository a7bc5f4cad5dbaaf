from collections.abc import Callable

import anyio
import anyio.to_thread
import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove  # type: ignore[attr-defined]

from tests.support.dicom import Study, make_study, to_bytes
from tests.support.orthanc import Orthanc
from tests.support.storescp import StorageSCP

pytestmark = pytest.mark.services


def upload(orthanc: Orthanc, study: Study, instances: int) -> str:
    answers = [orthanc.upload(to_bytes(ds)) for ds in make_study(study, instances_per_series=instances)]
    return str(answers[0]["ParentStudy"])


def test_orthanc_stores_a_study_to_the_scp_over_rest(orthanc: Orthanc, storage_scp: StorageSCP) -> None:
    study = Study(accession_number="ACC-STORE")
    orthanc_id = upload(orthanc, study, instances=3)
    orthanc.add_modality("cris", storage_scp.modality)  # while running: REST PUT /modalities

    response = httpx.post(
        f"{orthanc.base_url}/modalities/cris/store",
        json={"Resources": [orthanc_id], "Synchronous": True},
        timeout=30,
    )
    response.raise_for_status()

    received = storage_scp.wait_for_instances(3, study_uid=study.study_instance_uid, timeout=15)
    assert {ds.AccessionNumber for ds in received} == {"ACC-STORE"}
    assert storage_scp.received_study_uids == {study.study_instance_uid}


def c_move(orthanc: Orthanc, study_uid: str, destination: str) -> list[int]:
    """C-MOVE a study from Orthanc to ``destination`` (an AE title); the statuses Orthanc answered."""
    ae = AE(ae_title="CRIS_MOVE_SCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    association = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title=orthanc.aet)
    assert association.is_established, "Orthanc refused the association"
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    try:
        return [
            int(status.Status)
            for status, _ in association.send_c_move(
                identifier, destination, StudyRootQueryRetrieveInformationModelMove
            )
            if status
        ]
    finally:
        association.release()


@pytest.mark.anyio
async def test_c_move_from_orthanc_arrives_at_the_scp(
    orthanc_factory: Callable[..., Orthanc], storage_scp: StorageSCP
) -> None:
    # Destination configured before start, as DicomModalities in Orthanc's config file.
    orthanc = orthanc_factory(modalities={"cris": storage_scp.modality})
    current, other = Study(accession_number="ACC-MOVE"), Study(accession_number="ACC-STAYS")
    upload(orthanc, current, instances=2)
    upload(orthanc, other, instances=1)

    statuses = await anyio.to_thread.run_sync(c_move, orthanc, current.study_instance_uid, storage_scp.aet)

    assert statuses[-1] == 0x0000  # final status: success
    received = await storage_scp.await_instances(2, study_uid=current.study_instance_uid, timeout=15)
    assert len(received) == 2
    assert storage_scp.received_study_uids == {current.study_instance_uid}


def test_wait_for_instances_times_out_with_a_clear_message(storage_scp: StorageSCP) -> None:
    with pytest.raises(TimeoutError, match="received 0 of 1 instances"):
        storage_scp.wait_for_instances(1, timeout=0.2)
