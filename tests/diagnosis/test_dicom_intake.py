"""DICOM through every upload path (page, API images, zip entries): a de-identified copy is stored, the original
UIDs are kept for sending results back, and study details come from the header when none are given."""

from __future__ import annotations

import io
from typing import Any

import pydicom
import pytest
from django.test import Client
from django.urls import reverse
from pydicom.data import get_testdata_file
from rest_framework.test import APIClient

from diagnosis import intake
from diagnosis.models import DicomInstance, Study
from diagnosis.study_details import StudyDetails
from tests import dicoms, images
from tests.factories import token_client, upload_file, zip_of

pytestmark = pytest.mark.django_db
GRAY = images.chest_like(120, 100, seed=5)


def _dcm(**header: Any) -> bytes:
    return dicoms.radiograph(GRAY, "rle_lossless", PatientAge="004Y", ViewPosition="AP", **header)


def _stored(study: Study) -> pydicom.Dataset:
    with study.image.open("rb") as fh:
        return pydicom.dcmread(io.BytesIO(fh.read()))


def test_it_stores_a_de_identified_copy_and_keeps_the_original_uids(alice) -> None:
    data = _dcm()
    original = pydicom.dcmread(io.BytesIO(data))
    study = intake.submit_files(alice, [upload_file("chest.dcm", data, "application/dicom")]).studies[0]
    stored = _stored(study)
    assert study.content_type == "application/dicom" and str(study.image.name).endswith(".dcm")
    assert stored.PatientName == "" and stored.PatientID == "" and "InstitutionName" not in stored
    assert stored.PatientIdentityRemoved == "YES" and stored.StudyInstanceUID != original.StudyInstanceUID
    kept = DicomInstance.objects.get(study=study)
    assert (kept.study_uid, kept.series_uid, kept.sop_uid) == (
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        original.SOPInstanceUID,
    )
    assert kept.patient_name == "" and kept.birth_date == "" and kept.accession == ""
    assert (study.patient_ref, study.age_years, study.sex, study.projection) == ("MRN-0042", 4, "F", "AP")


def test_keep_identifiers_stores_the_file_as_sent(alice, settings) -> None:
    settings.DICOM_KEEP_IDENTIFIERS = True
    study = intake.submit_files(alice, [upload_file("chest.dcm", _dcm())]).studies[0]
    assert _stored(study).PatientName == "Doe^Jane"
    assert DicomInstance.objects.get(study=study).patient_name == "Doe^Jane"


def test_the_forms_details_win_over_the_header(alice) -> None:
    details = StudyDetails(patient_ref="P-7", age_years=30, sex="M", projection="PA")
    study = intake.submit_files(alice, [upload_file("chest.dcm", _dcm())], details=details).studies[0]
    assert (study.patient_ref, study.age_years, study.sex, study.projection) == ("P-7", 30, "M", "PA")


def test_control_characters_in_the_headers_patient_id_are_left_out(alice) -> None:
    """From a review: the header's PatientID became the patient reference as sent, control characters and all."""
    study = intake.submit_files(alice, [upload_file("chest.dcm", _dcm(PatientID="MRN\x1b[31m-7\x07"))]).studies[0]
    assert study.patient_ref == "MRN[31m-7"


def test_the_page_takes_dicom_and_refuses_a_ct_by_name(alice) -> None:
    client = Client()
    client.force_login(alice)
    with open(str(get_testdata_file("CT_small.dcm")), "rb") as fh:
        ct = fh.read()
    files = [upload_file("chest.dcm", _dcm()), upload_file("head.dcm", ct)]
    response = client.post(reverse("diagnosis:upload"), {"images": files}, follow=True)
    assert "a CT image (modality CT)" in response.content.decode()
    assert Study.objects.filter(original_name="chest.dcm").count() == 1
    assert not Study.objects.filter(original_name="head.dcm").exists()


def test_the_api_takes_dicom_images_and_zip_entries(alice) -> None:
    api: APIClient = token_client(alice)
    r = api.post("/api/v1/studies/", {"images": [upload_file("a.dcm", _dcm())]}, format="multipart")
    assert r.status_code == 202 and [s["file_name"] for s in r.json()["studies"]] == ["a.dcm"]
    archive = zip_of({"x/one.dcm": _dcm(), "x/sr.dcm": dicoms.encapsulated_pdf(), "x/two.png": images.png()})
    r = api.post("/api/v1/studies/", {"archive": archive}, format="multipart")
    body = r.json()
    assert r.status_code == 202 and sorted(s["file_name"] for s in body["studies"]) == ["one.dcm", "two.png"]
    assert "encapsulated PDF" in body["errors"][0]["error"]
    assert DicomInstance.objects.filter(study__clinic=alice.membership.clinic).count() == 2
