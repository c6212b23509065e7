"""Results back to the PACS: the SR and the Secondary Capture land in the original study (new series), the send's
state is visible (sent, failed with the reason), a re-send stores the same instances, and the sweeper re-drives."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pydicom
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pynetdicom import AE, AllStoragePresentationContexts, evt

from diagnosis import intake, pacs, reviews
from diagnosis.audit_words import describe
from diagnosis.models import (
    AuditAction,
    AuditEvent,
    DicomInstance,
    DicomPeer,
    ResultSend,
    ReviewSend,
    Role,
    SendStatus,
    Study,
)
from diagnosis.task_names import SEND_RESULTS, SEND_REVIEW
from tests import dicoms, factories, images
from tests.factories import upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_pacs() -> Iterator[tuple[int, list[pydicom.Dataset]]]:
    received: list[pydicom.Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return 0x0000

    ae = AE(ae_title="FAKEPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    yield int(server.server_address[1]), received
    server.shutdown()


def _send_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the send tasks do, run here when pacs queues them by name."""
    run = {SEND_RESULTS: pacs.send, SEND_REVIEW: lambda send_id: pacs.send_review(int(send_id))}
    monkeypatch.setattr("diagnosis.pacs.current_app.send_task", lambda name, args: run[name](*args))


def _dicom_study(
    alice: User,
    port: int,
    label: str = "PNEUMONIA",
    *,
    PatientSex: str = "F",
    PatientBirthDate: str = "20200101",
    **result: Any,
) -> tuple[Study, pydicom.Dataset]:
    peer = DicomPeer.objects.create(
        clinic=alice.membership.clinic,
        ae_title="NORTHPACS",
        uploader=alice,
        send_ae_title="FAKEPACS",
        send_host="127.0.0.1",
        send_port=port,
    )
    header = {"PatientSex": PatientSex, "PatientBirthDate": PatientBirthDate}
    data = dicoms.radiograph(images.chest_like(), "mono2_8bit", PatientAge="004Y", **header)
    upload = intake.validate_upload("x.dcm", len(data), io.BytesIO(data))
    study = intake.create_study(alice, upload, peer=peer)
    factories.judge(
        study, label, 0.8734 if label == "PNEUMONIA" else 0.1, threshold=0.4, model_version="v-test", **result
    )
    return study, pydicom.dcmread(io.BytesIO(data))


def _failing_send(alice: User, port: int) -> Study:
    """A DICOM study whose results are scheduled to a PACS that nothing answers for."""
    study, _ = _dicom_study(alice, port)
    DicomPeer.objects.update(send_port=1)  # nothing listens there
    pacs.schedule(study.pk)
    return study


def test_it_sends_an_sr_and_a_secondary_capture_into_the_original_study(alice, fake_pacs) -> None:
    port, received = fake_pacs
    study, original = _dicom_study(alice, port)
    row = pacs.schedule(study.pk)
    assert row is not None and row.status == SendStatus.PENDING
    row = pacs.send(str(study.pk))
    assert row.status == SendStatus.SENT and row.destination == f"FAKEPACS@127.0.0.1:{port}"
    sr, sc = received
    assert {sr.StudyInstanceUID, sc.StudyInstanceUID} == {original.StudyInstanceUID}
    assert sr.PatientID == sc.PatientID == "MRN-0042"
    assert sr.SeriesInstanceUID == sc.SeriesInstanceUID != original.SeriesInstanceUID
    assert sr.Modality == "SR" and sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    items = {item.ConceptNameCodeSequence[0].CodeMeaning: item for item in sr.ContentSequence}
    assert items["Finding"].ConceptCodeSequence[0].CodeMeaning == "Pneumonia"
    assert float(items["Calibrated probability of pneumonia"].MeasuredValueSequence[0].NumericValue) == 0.8734
    assert float(items["Decision threshold"].MeasuredValueSequence[0].NumericValue) == 0.4
    assert items["Algorithm Version"].TextValue == "v-test"
    assert sc.Rows > 0 and sc.PhotometricInterpretation == "RGB" and sc.BurnedInAnnotation == "YES"
    pacs.send(str(study.pk))  # already sent: nothing more
    assert len(received) == 2


@pytest.mark.parametrize("sex", ["FM", "MO", "FMO"])
def test_a_header_value_outside_its_value_set_is_dropped_with_a_note_and_the_results_are_sent(
    alice, fake_pacs, sex: str
) -> None:
    """From an outside red-team pass: PatientSex "FM" was kept, and the SR and SC send failed three times and
    stopped for good ("'FM' is not a valid PatientSexValues"). It is left out, with a note in the upload's audit
    event, and the results reach the PACS."""
    port, received = fake_pacs
    study, _ = _dicom_study(alice, port, PatientSex=sex, PatientBirthDate="2020-1-1")
    assert study.sex == ""
    upload = AuditEvent.objects.get(action=AuditAction.UPLOAD, target_id=str(study.pk))
    notes = upload.detail["dicom_dropped"]
    assert any(sex in n for n in notes) and any("PatientBirthDate" in n for n in notes)
    assert "left out of its DICOM header: PatientSex" in describe(upload)
    pacs.schedule(study.pk)
    assert pacs.send(str(study.pk)).status == SendStatus.SENT
    assert [ds.get("PatientSex") for ds in received] == ["", ""]


def test_a_value_kept_before_headers_were_checked_is_left_out_of_what_is_sent(alice, fake_pacs) -> None:
    port, received = fake_pacs
    study, _ = _dicom_study(alice, port)
    Study.objects.filter(pk=study.pk).update(sex="X")  # what an older version kept (one character fits)
    DicomInstance.objects.filter(study=study).update(birth_date="2020-1-1", accession="A" * 30)
    pacs.schedule(study.pk)
    assert pacs.send(str(study.pk)).status == SendStatus.SENT
    assert [(ds.get("PatientSex"), ds.get("PatientBirthDate")) for ds in received] == [("", "")] * 2


def test_a_clinic_admin_sees_why_a_send_failed_and_sends_it_again(
    alice, fake_pacs, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    port, received = fake_pacs
    study = _failing_send(alice, port)
    for _ in range(3):
        pacs.send(str(study.pk))
    admin = factories.make_member("ada", alice.membership.clinic, Role.ADMIN)
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("diagnosis:study", args=[study.pk])).content.decode()
    assert "refused or failed" in page and "3 attempts" in page and 'id="pacs-resend"' in page
    client.force_login(alice)  # a clinician sees the reason, without the button
    assert 'id="pacs-resend"' not in client.get(reverse("diagnosis:study", args=[study.pk])).content.decode()
    DicomPeer.objects.update(send_port=port)
    _send_here(monkeypatch)
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("diagnosis:study_resend", args=[study.pk]))
    assert response.status_code == 302
    row = ResultSend.objects.get(study=study)
    assert row.status == SendStatus.SENT and row.attempts == 1 and len(received) == 2


def test_a_normal_calls_overlay_the_studys_larger_preview_is_captured_at_the_size_the_worker_draws(
    alice, fake_pacs
) -> None:
    """A NORMAL call's overlay is the study's 1024-pixel preview in grey: the capture is in colour and 768 wide,
    as a drawn overlay is, not a third larger (the PACS stores it uncompressed)."""
    port, received = fake_pacs
    study, _ = _dicom_study(alice, port, "NORMAL", overlay_jpeg=images.jpeg(1024, 853))
    pacs.schedule(study.pk)
    assert pacs.send(str(study.pk)).status == SendStatus.SENT
    sc = received[1]
    assert (sc.Columns, sc.PhotometricInterpretation, sc.SamplesPerPixel) == (768, "RGB", 3)
    assert 640 < sc.Rows < 768  # 640 rows of radiograph, and the legend band under them


def test_a_failed_send_says_why_and_the_sweeper_sends_the_same_instances_again(
    alice, fake_pacs, monkeypatch, settings
) -> None:
    port, received = fake_pacs
    study = _failing_send(alice, port)
    row = pacs.send(str(study.pk))
    assert row.status == SendStatus.FAILED and "refused or failed" in row.reason and row.attempts == 1
    DicomPeer.objects.update(send_port=port)
    _send_here(monkeypatch)
    assert pacs.redrive() == []  # just failed: retried at the sweeper's pace, not at every sweep
    settings.QUEUED_STALE_SECONDS = 0
    assert pacs.redrive() == [str(study.pk)]
    row = ResultSend.objects.get(study=study)
    assert row.status == SendStatus.SENT and row.attempts == 2
    assert {ds.SOPInstanceUID for ds in received} == {row.sr_uid, row.sc_uid}


def test_an_upload_without_a_peer_sends_nothing(alice) -> None:
    data = dicoms.radiograph(images.chest_like())
    study = intake.submit_files(alice, [upload_file("x.dcm", data)]).studies[0]
    assert pacs.schedule(study.pk) is None and not ResultSend.objects.exists()


def test_the_study_page_shows_the_send_state(alice) -> None:
    from django.test import Client
    from django.urls import reverse

    study, _ = _dicom_study(alice, 1)
    pacs.schedule(study.pk)
    pacs.send(str(study.pk))
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("diagnosis:study", args=[study.pk])).content.decode()
    assert "Results to the PACS (FAKEPACS@127.0.0.1:1)" in page and "Failed" in page and "refused or failed" in page
    assert "pacs-reading-send" not in page  # no reading yet
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=False, note="")
    page = client.get(reverse("diagnosis:study", args=[study.pk])).content.decode()
    assert "The reading (Normal) to the PACS as a verified SR:" in page
    assert '<span class="badge pending">Sending</span>' in page


def test_a_batch_schedules_sends_only_for_studies_from_a_peer(alice) -> None:
    study, _ = _dicom_study(alice, 1)
    plain = intake.submit_files(alice, [upload_file("x.dcm", dicoms.radiograph(images.chest_like()))]).studies[0]
    pacs.schedule_many([plain.pk, study.pk])
    assert list(ResultSend.objects.values_list("study_id", flat=True)) == [study.pk]


def test_a_reading_follows_the_results_as_a_verified_sr_after_the_models(
    alice, fake_pacs, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """A reviewer overrides the model: the PACS gets the clinician's label in a verified SR that names the model's
    SR as its predecessor, in the same series; a revised reading is one more SR."""
    port, received = fake_pacs
    study, original = _dicom_study(alice, port)
    pacs.schedule(study.pk)
    pacs.send(str(study.pk))
    model_send = ResultSend.objects.get(study=study)
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    reviewer.first_name, reviewer.last_name = "Rita", "Osei"
    reviewer.save()
    sent: list[int] = []
    monkeypatch.setattr("diagnosis.reviews.current_app.send_task", lambda _name, args: sent.append(args[0]))
    with django_capture_on_commit_callbacks(execute=True):  # the send is queued once the review commits
        reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=False, note="")
    row = ReviewSend.objects.get(study=study)
    assert sent == [row.pk] and row.status == SendStatus.PENDING
    assert pacs.send_review(row.pk).status == SendStatus.SENT
    sr = received[-1]
    assert sr.SOPInstanceUID == row.sr_uid and sr.StudyInstanceUID == original.StudyInstanceUID
    assert sr.SeriesInstanceUID == model_send.series_uid and sr.InstanceNumber == 3
    assert sr.VerificationFlag == "VERIFIED" and sr.CompletionFlag == "COMPLETE"
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Osei^Rita"
    assert sr.VerifyingObserverSequence[0].VerifyingOrganization == alice.membership.clinic.name
    predecessor = sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == model_send.sr_uid
    items = {item.ConceptNameCodeSequence[0].CodeMeaning: item for item in sr.ContentSequence}
    assert items["Finding"].ConceptCodeSequence[0].CodeMeaning == "Normal"  # the model said Pneumonia
    assert "disagrees" in items["Comment"].TextValue and "Pneumonia" in items["Comment"].TextValue
    assert len([i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Comment"]) == 1
    pacs.send_review(row.pk)  # already sent: nothing more
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=False, note="")
    assert ReviewSend.objects.filter(study=study).count() == 1  # saved again unchanged: no new SR
    note = "Hilar shadow — compare with the 2026 film; café-au-lait spots noted."
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=False, note=note)
    noted = ReviewSend.objects.filter(study=study).last()
    assert noted is not None and noted.pk != row.pk and noted.note == note  # the note is part of the reading
    assert pacs.send_review(noted.pk).status == SendStatus.SENT
    comments = [
        i.TextValue for i in received[-1].ContentSequence if i.ConceptNameCodeSequence[0].CodeMeaning == "Comment"
    ]
    assert comments[1] == f"Reviewer's note: {note}"  # arrived intact over the network, not only in our dataset
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=False, note=f"  {note}\r\n")
    assert ReviewSend.objects.filter(study=study).last() == noted  # the same note, as the page sends it: no new SR
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=True, note="")
    revised = ReviewSend.objects.filter(study=study).last()
    assert revised is not None and revised.pk != noted.pk and revised.final_label == "PNEUMONIA"
    assert pacs.send_review(revised.pk).status == SendStatus.SENT
    assert received[-1].InstanceNumber == 5 and received[-1].SOPInstanceUID == revised.sr_uid
    predecessors = received[-1].PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence
    assert [p.ReferencedSOPInstanceUID for p in predecessors] == [model_send.sr_uid, noted.sr_uid]  # the chain
    assert len(received) == 5  # the model's SR and SC, then the three readings


def test_a_reading_of_a_study_without_a_pacs_destination_sends_nothing(alice) -> None:
    study = intake.submit_files(alice, [upload_file("x.png", images.png())]).studies[0]
    factories.judge(study, "PNEUMONIA", 0.9)
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    reviews.review_study(reviewer, study, agrees=True, note="")
    assert not ReviewSend.objects.exists()


def test_the_sweeper_re_sends_a_failed_reading(alice, fake_pacs, monkeypatch, settings) -> None:
    port, received = fake_pacs
    study, _ = _dicom_study(alice, port)
    pacs.schedule(study.pk)
    monkeypatch.setattr("diagnosis.reviews.current_app.send_task", lambda _name, args: None)
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=True, note="")
    row = ReviewSend.objects.get(study=study)
    DicomPeer.objects.update(send_port=1)  # nothing listens there
    assert pacs.send_review(row.pk).status == SendStatus.FAILED
    DicomPeer.objects.update(send_port=port)
    _send_here(monkeypatch)
    settings.QUEUED_STALE_SECONDS = 0
    pacs.redrive()
    row.refresh_from_db()
    assert row.status == SendStatus.SENT and row.attempts == 2
    assert received[-1].SOPInstanceUID == row.sr_uid


@pytest.fixture
def refusing_pacs() -> Iterator[tuple[int, list[pydicom.Dataset], list[int]]]:
    """A PACS that answers 0xA700 (out of resources) while `refusals` holds a count above 0, then success: every
    C-STORE it was asked, refused or stored, is in the list."""
    asked: list[pydicom.Dataset] = []
    refusals = [0]

    def on_store(event: Any) -> int:
        asked.append(event.dataset)
        if refusals[0] > 0:
            refusals[0] -= 1
            return 0xA700
        return 0x0000

    ae = AE(ae_title="FAKEPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    yield int(server.server_address[1]), asked, refusals
    server.shutdown()


def _sweep(times: int = 1) -> None:
    """The sweeper task itself (not pacs.redrive), with no inference work to look after."""
    from diagnosis import tasks

    with mock.patch("diagnosis.dispatch.inference_backlog", return_value=0):
        for _ in range(times):
            tasks.sweep_stale_jobs()


def test_a_refused_store_fails_the_send_and_the_sweeper_stores_the_same_instances_again(
    alice, refusing_pacs, monkeypatch, settings
) -> None:
    port, asked, refusals = refusing_pacs
    refusals[0] = 1
    study, _ = _dicom_study(alice, port)
    pacs.schedule(study.pk)
    row = pacs.send(str(study.pk))
    assert row.status == SendStatus.FAILED and "0xA700" in row.reason and row.attempts == 1
    _send_here(monkeypatch)
    settings.QUEUED_STALE_SECONDS = 0
    _sweep()
    row.refresh_from_db()
    assert row.status == SendStatus.SENT and row.attempts == 2
    assert [ds.SOPInstanceUID for ds in asked] == [row.sr_uid, row.sr_uid, row.sc_uid]  # the refused SR, again
    assert {ds.SeriesInstanceUID for ds in asked} == {row.series_uid}


def test_the_sweeper_stops_sending_at_the_cap(alice, refusing_pacs, monkeypatch, settings) -> None:
    port, asked, refusals = refusing_pacs
    refusals[0] = 1000
    settings.MAX_ATTEMPTS, settings.QUEUED_STALE_SECONDS = 3, 0
    study, _ = _dicom_study(alice, port)
    pacs.schedule(study.pk)
    pacs.send(str(study.pk))
    _send_here(monkeypatch)
    _sweep(times=5)
    row = ResultSend.objects.get(study=study)
    assert row.status == SendStatus.FAILED and row.attempts == 3 and "0xA700" in row.reason
    assert len(asked) == 3 and {ds.SOPInstanceUID for ds in asked} == {row.sr_uid}
