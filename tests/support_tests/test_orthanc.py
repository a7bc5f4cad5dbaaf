import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.dicom import Study, make_study, patient_with_priors, to_bytes
from tests.support.fixtures import require_orthanc
from tests.support.orthanc import Modality, Orthanc

pytestmark = pytest.mark.services


def upload_study(orthanc: Orthanc, study: Study, instances: int = 1) -> str:
    """Upload ``study``; return Orthanc's ID for it."""
    datasets = make_study(study, instances_per_series=instances)
    answers = [orthanc.upload(to_bytes(ds)) for ds in datasets]
    assert {a["Status"] for a in answers} == {"Success"}
    return str(answers[0]["ParentStudy"])


def qido_by_accession(base: str, accession: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/studies", params={"AccessionNumber": accession}, timeout=10)
    response.raise_for_status()
    return response.json()


def test_uploaded_study_is_found_by_accession_with_qido(orthanc: Orthanc) -> None:
    study = Study(accession_number="ACC-QIDO-1", patient_id="9434765919")
    upload_study(orthanc, study, instances=2)

    [match] = qido_by_accession(orthanc.dicomweb_root, "ACC-QIDO-1")

    assert match["0020000D"]["Value"] == [study.study_instance_uid]
    assert match["00100020"]["Value"] == ["9434765919"]
    assert match["00201208"]["Value"] == [2]  # NumberOfStudyRelatedInstances
    assert qido_by_accession(orthanc.dicomweb_root, "NO-SUCH-ACCESSION") == []  # not 204


def test_upload_accepts_a_file_path(orthanc: Orthanc, tmp_path: Path) -> None:
    path = tmp_path / "one.dcm"
    path.write_bytes(to_bytes(make_study(Study(accession_number="ACC-PATH"))[0]))
    assert orthanc.upload(path)["Status"] == "Success"
    assert len(qido_by_accession(orthanc.dicomweb_root, "ACC-PATH")) == 1


def test_each_test_gets_an_empty_archive_on_its_own_ports(orthanc: Orthanc) -> None:
    assert httpx.get(f"{orthanc.base_url}/studies").json() == []
    system = httpx.get(f"{orthanc.base_url}/system").json()
    assert (system["DicomAet"], system["DicomPort"], system["HttpPort"]) == (
        "ORTHANC",
        orthanc.dicom_port,
        orthanc.http_port,
    )
    assert orthanc.dicomweb_root == f"http://127.0.0.1:{orthanc.http_port}/dicom-web"


@pytest.mark.anyio
async def test_archive_down_and_back_keeps_its_data_and_ports(orthanc: Orthanc) -> None:
    upload_study(orthanc, Study(accession_number="ACC-RESTART"))
    port, pid = orthanc.http_port, orthanc.pid

    await orthanc.astop()
    assert not orthanc.running
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{orthanc.base_url}/system")

        await orthanc.astart()
        assert (orthanc.http_port, orthanc.pid != pid) == (port, True)
        response = await client.get(
            f"{orthanc.dicomweb_root}/studies", params={"AccessionNumber": "ACC-RESTART"}
        )
    assert len(response.json()) == 1


@pytest.mark.anyio
async def test_async_context_manager_starts_and_stops(tmp_path: Path) -> None:
    require_orthanc()
    started = time.monotonic()
    async with Orthanc(tmp_path, aet="ASYNCPACS") as server:
        print(f"Orthanc ready after {time.monotonic() - started:.2f} s")
        async with httpx.AsyncClient() as client:
            system = (await client.get(f"{server.base_url}/system")).json()
        assert system["DicomAet"] == "ASYNCPACS"
        process_id = server.pid
    assert not server.running and process_id is not None
    with pytest.raises(ProcessLookupError):
        os.kill(process_id, 0)


def test_one_archive_sends_a_study_to_another(orthanc_factory: Callable[..., Orthanc]) -> None:
    remote = orthanc_factory(aet="REMOTEPACS")
    local = orthanc_factory(aet="LOCALPACS")
    local.add_modality("remote", Modality(aet=remote.aet, port=remote.dicom_port))
    orthanc_id = upload_study(local, Study(accession_number="ACC-PEER"))

    response = httpx.post(
        f"{local.base_url}/modalities/remote/store",
        json={"Resources": [orthanc_id], "Synchronous": True},
        timeout=30,
    )
    response.raise_for_status()

    assert len(qido_by_accession(remote.dicomweb_root, "ACC-PEER")) == 1


def test_priors_of_a_patient_are_found_by_patient_id_and_issuer(orthanc: Orthanc) -> None:
    history = patient_with_priors(2, patient_id="9434765919", issuer_of_patient_id="NHS")
    for study in history.studies:
        upload_study(orthanc, study)

    response = httpx.get(
        f"{orthanc.dicomweb_root}/studies",
        # Orthanc leaves IssuerOfPatientID out of QIDO answers unless asked for it.
        params={"PatientID": "9434765919", "IssuerOfPatientID": "NHS", "includefield": "00100021"},
        timeout=10,
    )

    studies = response.json()
    assert {s["0020000D"]["Value"][0] for s in studies} == {s.study_instance_uid for s in history.studies}
    assert {s["00100021"]["Value"][0] for s in studies} == {"NHS"}
    assert len({s["00080020"]["Value"][0] for s in studies}) == 3  # distinct StudyDates
