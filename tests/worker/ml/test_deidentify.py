"""De-identification of a dirty DICOM dataset: every attribute the Basic Profile lists, a private block, overlay and
curve data, and person names, dates and times nested in a sequence. One assert per attribute, against the
profile as written here (not the module's own lists, so that a name dropped from them fails here)."""

from __future__ import annotations

import functools
import io
from typing import Any

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, validate_file_meta
from pydicom.sequence import Sequence
from pydicom.uid import UID, ImplicitVRLittleEndian

from tests import dicoms, images
from worker.ml import deidentify

# PS3.15 E.1: emptied (Z: kept, with no value) and removed (X), written as the table reads (hence SIM905).
EMPTIED = """PatientName PatientID PatientBirthDate PatientSex StudyDate StudyTime AccessionNumber
ReferringPhysicianName StudyID ContentDate ContentTime""".split()  # noqa: SIM905
REMOVED = """PatientAge PatientSize PatientWeight PatientAddress PatientTelephoneNumbers PatientMotherBirthName
OtherPatientIDs OtherPatientIDsSequence OtherPatientNames PatientBirthName PatientBirthTime PatientComments
PatientInsurancePlanCodeSequence MilitaryRank BranchOfService MedicalRecordLocator EthnicGroup Occupation
AdditionalPatientHistory PregnancyStatus SmokingStatus MedicalAlerts Allergies CountryOfResidence RegionOfResidence
PatientReligiousPreference IssuerOfPatientID InstitutionName InstitutionAddress InstitutionalDepartmentName
InstitutionCodeSequence StationName DeviceSerialNumber DeviceUID PlateID DetectorID GantryID CassetteID
PerformedStationName PerformedLocation ScheduledStationName ScheduledProcedureStepLocation PerformedProcedureStepID
PerformedProcedureStepDescription RequestedProcedureID ScheduledProcedureStepID RequestAttributesSequence
ReferencedPatientSequence ReferencedStudySequence ReferencedPerformedProcedureStepSequence RequestingService
AdmissionID AdmittingDiagnosesDescription ImageComments StudyComments InterpretationText TextComments TextString
DerivationDescription FrameComments AcquisitionComments ContrastBolusAgent IdentifyingComments ProtocolName
StudyDescription SeriesDescription AcquisitionDeviceProcessingDescription ContentSequence DigitalSignaturesSequence
OriginalAttributesSequence ModifiedAttributesSequence ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers
ReferringPhysicianIdentificationSequence PhysiciansOfRecord PerformingPhysicianName NameOfPhysiciansReadingStudy
OperatorsName RequestingPhysician ScheduledPerformingPhysicianName ResponsiblePerson ResponsibleOrganization
CurrentPatientLocation PatientState ServiceEpisodeID VisitComments SoftwareVersions TimezoneOffsetFromUTC
DataSetTrailingPadding""".split()  # noqa: SIM905
# Not listed by name: removed because they are person names, dates or times (the last two inside a sequence).
NAMES_AND_TIMES = ["AcquisitionDate", "SeriesTime", "AcquisitionDateTime", "EvaluatorName"]
NESTED = ["NamesOfIntendedRecipientsOfResults", "InstanceCreationDate"]
VALUES: dict[str, Any] = {
    "PN": "Doe^John",
    "DA": "20200102",
    "TM": "101010",
    "DT": "20200102101010",
    "AS": "004Y",
    "CS": "F",
    "DS": "1.5",
    "IS": "7",
    "US": 1,
    "OB": b"\x01\x02",
    "UI": "1.2.3.4",
}
OVERLAY_DATA, CURVE_DATA = (0x6000, 0x3000), (0x5000, 0x3000)


def _item() -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "X1", "99LOCAL", "identifying text"
    return item


def _set(ds: Dataset, keyword: str) -> None:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    vr = dictionary_VR(tag)
    value = Sequence([_item()]) if vr == "SQ" else VALUES.get(vr, "Jane Doe 3")
    ds.add_new(tag, vr, value)


@functools.cache
def dirty() -> Dataset:
    """A radiograph with every listed attribute filled, a private block, overlay and curve data, and a person name
    and a date inside a sequence the profile keeps."""
    ds = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    for keyword in [*EMPTIED, *REMOVED, *NAMES_AND_TIMES]:
        _set(ds, keyword)
    block = ds.private_block(0x0011, "ACME HOSPITAL", create=True)
    block.add_new(0x01, "LO", "Jane Doe, ward 3")
    ds.add_new(0x00131001, "LO", "Jane Doe")  # (0013,1001): a private element without its creator
    ds.add_new(0x60000010, "US", 48)
    ds.add_new(0x60000011, "US", 64)
    ds.add_new(0x60003000, "OW", b"\xff" * (48 * 64 // 8))
    ds.add_new(0x50003000, "OW", b"\x00\x01" * 8)
    ds.BurnedInAnnotation = "YES"  # text in the pixels, which de-identification leaves alone: it must still say so
    ds.file_meta.SourceApplicationEntityTitle = "NORTH_PACS"
    procedure = _item()
    for keyword in NESTED:
        _set(procedure, keyword)
    ds.ProcedureCodeSequence = Sequence([procedure])
    return ds


def cleaned() -> Dataset:
    """De-identified afresh in every test (a few ms): a cached copy would let mutation testing, which runs the
    tests that called deidentify, run only the first."""
    return pydicom.dcmread(io.BytesIO(deidentify.deidentify(dirty(), "salt")))


def test_the_dirty_dataset_has_what_it_names() -> None:
    ds = dirty()
    assert all(ds.get(k) not in (None, "") for k in [*EMPTIED, *REMOVED, *NAMES_AND_TIMES])
    assert ds.ProcedureCodeSequence[0].NamesOfIntendedRecipientsOfResults == "Doe^John"
    assert OVERLAY_DATA in ds and CURVE_DATA in ds and any(e.tag.is_private for e in ds)


@pytest.mark.parametrize("keyword", EMPTIED)
def test_it_empties_but_keeps(keyword: str) -> None:
    clean = cleaned()
    assert keyword in clean and clean[keyword].value in (None, "")


@pytest.mark.parametrize("keyword", REMOVED + NAMES_AND_TIMES)
def test_it_removes(keyword: str) -> None:
    assert keyword not in cleaned()


@pytest.mark.parametrize("keyword", NESTED)
def test_it_removes_inside_a_kept_sequence(keyword: str) -> None:
    item = cleaned().ProcedureCodeSequence[0]
    assert item.CodeValue == "X1" and keyword not in item


def test_it_removes_every_private_tag() -> None:
    found: list[str] = []
    cleaned().walk(lambda _ds, elem: found.append(str(elem.tag)) if elem.tag.is_private else None)
    assert found == []


def test_it_removes_overlay_data() -> None:
    assert OVERLAY_DATA not in cleaned()


def test_it_removes_curve_data() -> None:
    assert CURVE_DATA not in cleaned()


def test_no_person_name_date_or_time_keeps_a_value_anywhere() -> None:
    found: list[str] = []
    cleaned().walk(
        lambda _ds, elem: found.append(elem.keyword) if elem.VR in ("PN", "DA", "DT", "TM") and elem.value else None
    )
    assert found == []


def test_it_says_it_was_de_identified_and_keeps_the_pixels() -> None:
    clean, source = cleaned(), dirty()
    assert clean.PatientIdentityRemoved == "YES" and clean.DeidentificationMethod == deidentify.DEIDENTIFICATION_METHOD
    (code,) = clean.DeidentificationMethodCodeSequence  # PS3.16 CID 7050: the profile applied, as a code
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert code.CodeMeaning == "Basic Application Confidentiality Profile"
    assert clean.PixelData == source.PixelData and clean.SOPClassUID == source.SOPClassUID
    assert clean.SOPInstanceUID == deidentify.new_uid(source.SOPInstanceUID, "salt") != source.SOPInstanceUID
    assert clean.file_meta.MediaStorageSOPInstanceUID == clean.SOPInstanceUID  # not the original's, in the header
    assert "SourceApplicationEntityTitle" not in clean.file_meta  # the sending PACS's name
    assert clean.BurnedInAnnotation == "YES"


def test_a_radiograph_that_does_not_say_says_no_burned_in_annotation() -> None:
    plain = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    del plain.BurnedInAnnotation  # an optional attribute: many modalities leave it out
    assert pydicom.dcmread(io.BytesIO(deidentify.deidentify(plain, "salt"))).BurnedInAnnotation == "NO"


def test_a_radiograph_with_an_empty_burned_in_annotation_says_no() -> None:
    """Type 3 but present and empty (some modalities write it so): the copy says NO rather than nothing."""
    plain = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    plain.BurnedInAnnotation = ""
    assert pydicom.dcmread(io.BytesIO(deidentify.deidentify(plain, "salt"))).BurnedInAnnotation == "NO"


def test_an_earlier_de_identification_record_is_replaced_not_kept() -> None:
    """A file de-identified before (by a modality or another tool) says what this profile did, once."""
    plain = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    plain.PatientIdentityRemoved, plain.DeidentificationMethod = "NO", ["Vendor scrub v1", "manual"]
    clean = pydicom.dcmread(io.BytesIO(deidentify.deidentify(plain, "salt")))
    assert clean.PatientIdentityRemoved == "YES"
    assert clean.DeidentificationMethod == deidentify.DEIDENTIFICATION_METHOD


def test_the_copy_is_a_valid_part_10_file_even_from_a_sender_with_a_thin_header() -> None:
    """A modality that leaves out required file meta (the SOP class in the header, the implementation UID) still
    gets back a standard Part 10 file: preamble, DICM, and every required file meta element filled in."""
    plain = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    del plain.file_meta.MediaStorageSOPClassUID, plain.file_meta.ImplementationClassUID
    thin = io.BytesIO()
    plain.save_as(thin, enforce_file_format=False)
    copy = deidentify.deidentify(pydicom.dcmread(io.BytesIO(thin.getvalue())), "salt")
    assert copy[128:132] == b"DICM"
    clean = pydicom.dcmread(io.BytesIO(copy))
    validate_file_meta(clean.file_meta, enforce_standard=True)  # raises if a required element is missing
    assert clean.file_meta.MediaStorageSOPClassUID == plain.SOPClassUID


def test_new_uids_are_valid_stable_and_depend_on_the_salt_and_the_original() -> None:
    uid = deidentify.new_uid("1.2.3.4", "salt")
    assert UID(uid).is_valid and uid != "1.2.3.4"
    assert deidentify.new_uid("1.2.3.4", "salt") == uid  # the same study sent twice links up
    assert deidentify.new_uid("1.2.3.5", "salt") != uid
    assert deidentify.new_uid("1.2.3.4", "other salt") != uid  # another site's salt: not linkable


def test_it_keeps_what_only_looks_like_overlay_data() -> None:
    """(60xx,3000) goes; an element 3000 of another group (the Modality LUT) and the overlay's geometry stay."""
    plain = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    lut = Dataset()
    lut.LUTDescriptor, lut.ModalityLUTType = [2, 0, 16], "US"
    lut.add_new(0x00283006, "US", [0, 65535])  # LUTData, whose VR (US or OW) pydicom cannot guess
    plain.ModalityLUTSequence = Sequence([lut])
    plain.add_new(0x60000010, "US", 48)
    plain.add_new(0x60003000, "OW", b"\xff" * (48 * 64 // 8))
    clean = pydicom.dcmread(io.BytesIO(deidentify.deidentify(plain, "salt")))
    assert clean.ModalityLUTSequence[0].ModalityLUTType == "US"
    assert (0x6000, 0x0010) in clean and OVERLAY_DATA not in clean


def test_a_dataset_without_file_meta_as_received_over_the_network_comes_out_as_a_part_10_file() -> None:
    """A C-STORE delivers a bare dataset (implicit VR little endian, no file meta): the copy gets a header."""
    plain = pydicom.dcmread(io.BytesIO(dicoms.radiograph(images.chest_like(64, 48))))
    plain.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    implicit = io.BytesIO()
    plain.save_as(implicit, enforce_file_format=True)
    bare = pydicom.dcmread(io.BytesIO(implicit.getvalue()))
    del bare.file_meta
    clean = pydicom.dcmread(io.BytesIO(deidentify.deidentify(bare, "salt")))
    assert clean.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert clean.file_meta.MediaStorageSOPInstanceUID == clean.SOPInstanceUID
    assert clean.PatientIdentityRemoved == "YES" and "PatientAge" not in clean
    assert not hasattr(bare, "file_meta")  # the caller's dataset is left as it was
