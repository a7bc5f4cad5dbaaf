import datetime as dt
import io

import pydicom
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from tests.support.dicom import Study, make_instance, make_study, patient_with_priors, to_bytes


def test_instance_round_trips_with_the_given_attributes() -> None:
    study = Study(
        patient_id="9434765919",
        issuer_of_patient_id="NHS",
        patient_name="MÜLLER^ANNA",
        accession_number="A123",
        study_date=dt.date(2024, 2, 29),
        modality="CT",
        study_description="CT CHEST",
    )
    read = pydicom.dcmread(io.BytesIO(to_bytes(make_instance(study))))

    assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert read.file_meta.MediaStorageSOPInstanceUID == read.SOPInstanceUID
    assert read.SOPClassUID == CTImageStorage
    assert (read.PatientID, read.IssuerOfPatientID, str(read.PatientName)) == (
        "9434765919",
        "NHS",
        "MÜLLER^ANNA",
    )
    assert (read.AccessionNumber, read.StudyDate, read.StudyDescription) == ("A123", "20240229", "CT CHEST")
    assert read.StudyInstanceUID == study.study_instance_uid
    assert (read.Rows, read.Columns, read.BitsAllocated) == (64, 64, 16)
    assert len(read.PixelData) == 64 * 64 * 2


def test_non_ct_modalities_are_secondary_capture() -> None:
    ds = make_instance(Study(modality="MR", study_description="MR KNEE"))
    assert ds.SOPClassUID == SecondaryCaptureImageStorage
    assert ds.Modality == "MR"


def test_study_has_shared_series_and_unique_instances() -> None:
    instances = make_study(Study(), series=2, instances_per_series=3)
    assert len(instances) == 6
    assert len({ds.SeriesInstanceUID for ds in instances}) == 2
    assert len({ds.SOPInstanceUID for ds in instances}) == 6
    assert len({ds.StudyInstanceUID for ds in instances}) == 1


def test_patient_with_priors_shares_the_patient_and_spreads_the_dates() -> None:
    history = patient_with_priors(3, patient_id="123", current_date=dt.date(2024, 5, 1))

    assert len(history.studies) == 4
    assert {s.patient_id for s in history.studies} == {"123"}
    dates = [s.study_date for s in history.studies]
    assert dates == sorted(dates, reverse=True) and len(set(dates)) == 4
    assert dates[0] == dt.date(2024, 5, 1)
    assert len({s.accession_number for s in history.studies}) == 4
    assert len({s.study_instance_uid for s in history.studies}) == 4
