"""Small, valid DICOM instances for tests, made with pydicom.

A ``Study`` holds the attributes an integrator cares about (patient, issuer, accession, date,
modality, description); ``make_study`` turns it into 64x64 16-bit images with Part 10 file meta
in Explicit VR Little Endian, which Orthanc stores and OHIF renders. CT studies use the CT Image
IOD; any other modality uses Secondary Capture so no modality-specific attributes are needed.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

IMAGE_SIZE = 64


def _new_accession() -> str:
    # Random defaults keep tests that share an archive from matching each other's studies.
    return f"A{random.randrange(10**8):08d}"


def _new_patient_id() -> str:
    return f"{random.randrange(10**10):010d}"


@dataclass(frozen=True)
class Study:
    """The attributes of one study; every instance made from it carries them."""

    patient_id: str = field(default_factory=_new_patient_id)
    issuer_of_patient_id: str = "NHS"
    patient_name: str = "TEST^PATIENT"
    accession_number: str = field(default_factory=_new_accession)
    study_instance_uid: str = field(default_factory=generate_uid)
    study_date: dt.date = dt.date(2024, 5, 1)
    study_time: dt.time = dt.time(9, 30)
    modality: str = "CT"
    study_description: str = "CT HEAD"
    patient_birth_date: dt.date = dt.date(1960, 1, 1)
    patient_sex: str = "O"


@dataclass(frozen=True)
class PatientHistory:
    """One patient's current study and their priors, newest prior first."""

    current: Study
    priors: tuple[Study, ...]

    @property
    def studies(self) -> tuple[Study, ...]:
        return (self.current, *self.priors)


def patient_with_priors(
    priors: int,
    *,
    patient_id: str | None = None,
    issuer_of_patient_id: str = "NHS",
    patient_name: str = "TEST^PATIENT",
    current_date: dt.date = dt.date(2024, 5, 1),
    modality: str = "CT",
    study_description: str = "CT HEAD",
) -> PatientHistory:
    """A current study plus ``priors`` earlier studies of the same patient, each on its own date."""
    patient_id = patient_id or _new_patient_id()

    def study(date: dt.date) -> Study:
        return Study(
            patient_id=patient_id,
            issuer_of_patient_id=issuer_of_patient_id,
            patient_name=patient_name,
            study_date=date,
            modality=modality,
            study_description=study_description,
        )

    # 200 days apart: distinct dates, and sorting by date gives the order we return.
    return PatientHistory(
        current=study(current_date),
        priors=tuple(study(current_date - dt.timedelta(days=200 * k)) for k in range(1, priors + 1)),
    )


def make_study(study: Study, *, series: int = 1, instances_per_series: int = 1) -> list[Dataset]:
    """All instances of ``study``: ``series`` series of ``instances_per_series`` images each."""
    datasets = []
    for series_number in range(1, series + 1):
        series_uid = generate_uid()
        for instance_number in range(1, instances_per_series + 1):
            datasets.append(
                make_instance(
                    study,
                    series_instance_uid=series_uid,
                    series_number=series_number,
                    instance_number=instance_number,
                )
            )
    return datasets


def make_instance(
    study: Study,
    *,
    series_instance_uid: str | None = None,
    series_number: int = 1,
    instance_number: int = 1,
) -> Dataset:
    """One image of ``study`` with valid file meta (Explicit VR Little Endian)."""
    sop_class = CTImageStorage if study.modality == "CT" else SecondaryCaptureImageStorage
    sop_instance_uid = generate_uid()

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, sop_instance_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, so names such as "MÜLLER^ANNA" survive
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance_uid

    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.IssuerOfPatientID = study.issuer_of_patient_id
    ds.PatientBirthDate = study.patient_birth_date.strftime("%Y%m%d")
    ds.PatientSex = study.patient_sex

    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = study.study_date.strftime("%Y%m%d")
    ds.StudyTime = study.study_time.strftime("%H%M%S")
    ds.AccessionNumber = study.accession_number
    ds.StudyDescription = study.study_description
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""

    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.Modality = study.modality
    ds.Manufacturer = "cris-connect tests"
    ds.InstanceNumber = instance_number
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime

    if sop_class == CTImageStorage:
        _add_ct_attributes(ds, instance_number)
    else:
        ds.ConversionType = "WSD"  # workstation; required by the SC Equipment module

    _add_pixels(ds, instance_number)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """The Part 10 file (preamble, file meta, data set) as bytes, e.g. for ``Orthanc.upload``."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write(ds: Dataset, path: Path) -> Path:
    path.write_bytes(to_bytes(ds))
    return path


def write_all(datasets: Sequence[Dataset], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [write(ds, directory / f"{ds.SOPInstanceUID}.dcm") for ds in datasets]


def _file_meta(sop_class: UID, sop_instance_uid: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


def _add_ct_attributes(ds: Dataset, instance_number: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [0.0, 0.0, float(instance_number * 5)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = 5.0
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400


def _add_pixels(ds: Dataset, instance_number: int) -> None:
    # A bright disc on a dark background, its radius varying by instance, so a rendered image
    # is visibly not blank and images differ from one another.
    size = IMAGE_SIZE
    radius = 10 + (instance_number * 3) % 20
    centre = size / 2
    pixels = array(
        "H",
        (
            1100 if (x - centre) ** 2 + (y - centre) ** 2 <= radius**2 else 24 + (x + y) % 40
            for y in range(size)
            for x in range(size)
        ),
    )
    if sys.byteorder == "big":
        pixels.byteswap()  # Explicit VR *Little* Endian
    ds.Rows = size
    ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
