"""De-identification of a DICOM radiograph: PS3.15 Annex E, the Basic Application Level Confidentiality Profile
(no Django). The pixel data is left untouched (burned-in text, if any, stays: see the README).

Attributes the profile empties (Z: type 2, must stay present) rather than removes are EMPTIED; every other
identifying attribute is REMOVED (X), every person name, date and time is removed or emptied, private tags are
removed, instance UIDs are replaced (U) by UIDs derived from the original and a salt (the same input, the same new
UID).
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

EMPTIED = frozenset(
    {
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
        "ContentDate",
        "ContentTime",
    }
)
REMOVED = frozenset(
    {
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientBirthName",
        "PatientBirthTime",
        "PatientComments",
        "PatientInsurancePlanCodeSequence",
        "MilitaryRank",
        "BranchOfService",
        "MedicalRecordLocator",
        "EthnicGroup",
        "Occupation",
        "AdditionalPatientHistory",
        "PregnancyStatus",
        "SmokingStatus",
        "MedicalAlerts",
        "Allergies",
        "CountryOfResidence",
        "RegionOfResidence",
        "PatientReligiousPreference",
        "IssuerOfPatientID",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "InstitutionCodeSequence",
        "StationName",
        "DeviceSerialNumber",
        "DeviceUID",
        "PlateID",
        "DetectorID",
        "GantryID",
        "CassetteID",
        "PerformedStationName",
        "PerformedLocation",
        "ScheduledStationName",
        "ScheduledProcedureStepLocation",
        "PerformedProcedureStepID",
        "PerformedProcedureStepDescription",
        "RequestedProcedureID",
        "ScheduledProcedureStepID",
        "RequestAttributesSequence",
        "ReferencedPatientSequence",
        "ReferencedStudySequence",
        "ReferencedPerformedProcedureStepSequence",
        "RequestingService",
        "AdmissionID",
        "AdmittingDiagnosesDescription",
        "ImageComments",
        "StudyComments",
        "InterpretationText",
        "TextComments",
        "TextString",
        "DerivationDescription",
        "FrameComments",
        "AcquisitionComments",
        "ContrastBolusAgent",
        "IdentifyingComments",
        "ProtocolName",
        "StudyDescription",
        "SeriesDescription",
        "AcquisitionDeviceProcessingDescription",
        "ContentSequence",
        "DigitalSignaturesSequence",
        "OriginalAttributesSequence",
        "ModifiedAttributesSequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "ReferringPhysicianIdentificationSequence",
        "PhysiciansOfRecord",
        "PerformingPhysicianName",
        "NameOfPhysiciansReadingStudy",
        "OperatorsName",
        "RequestingPhysician",
        "ScheduledPerformingPhysicianName",
        "ResponsiblePerson",
        "ResponsibleOrganization",
        "CurrentPatientLocation",
        "PatientState",
        "ServiceEpisodeID",
        "VisitComments",
        "SoftwareVersions",
        "TimezoneOffsetFromUTC",
        "DataSetTrailingPadding",
    }
)
KEPT_UIDS = frozenset(
    {"TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID", "PrivateInformationCreatorUID"}
)
DEIDENTIFICATION_METHOD = "PS3.15 E.1 Basic Profile"


def deidentify(ds: Dataset, salt: str) -> bytes:
    """A de-identified Part 10 copy of ds (ds itself is left as it was): the Basic Profile as above, with the
    pixel data untouched (burned-in text, if any, stays: see the README)."""
    clean = pydicom.dcmread(io.BytesIO(_to_bytes(ds)))
    clean.remove_private_tags()
    clean.walk(lambda dataset, elem: _clean_element(dataset, elem, salt))
    clean.PatientIdentityRemoved = "YES"
    clean.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "113100",
        "DCM",
        "Basic Application Confidentiality Profile",
    )
    clean.DeidentificationMethodCodeSequence = [code]
    clean.file_meta.pop("SourceApplicationEntityTitle", None)
    clean.BurnedInAnnotation = ds.get("BurnedInAnnotation", "NO") or "NO"
    return _to_bytes(clean)


def _clean_element(dataset: Dataset, elem: Any, salt: str) -> None:
    keyword = elem.keyword
    if keyword in EMPTIED:
        elem.value = None
    elif keyword in REMOVED or ((elem.tag.group & 0xFF00) in (0x5000, 0x6000) and elem.tag.element == 0x3000):
        del dataset[elem.tag]  # listed, or overlay/curve data (60xx,3000) which can carry burned-in text
    elif elem.VR in ("PN", "DA", "DT", "TM") and keyword not in EMPTIED:
        del dataset[elem.tag]
    elif elem.VR == "UI" and keyword not in KEPT_UIDS and not keyword.endswith("ClassUID") and elem.value:
        elem.value = new_uid(str(elem.value), salt)


def new_uid(uid: str, salt: str) -> str:
    """The replacement of one instance UID: the same original and salt always give the same new UID."""
    return str(generate_uid(entropy_srcs=[salt, uid]))


def _to_bytes(ds: Dataset) -> bytes:
    """ds as a Part 10 file (pydicom fills the file meta, MediaStorageSOPInstanceUID from SOPInstanceUID included);
    a dataset without file meta (as a C-STORE delivers it) gets an empty one on a copy, not on the caller's."""
    buf = io.BytesIO()
    if not getattr(ds, "file_meta", None):
        ds = copy.copy(ds)
        ds.file_meta = FileMetaDataset()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
