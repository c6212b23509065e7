"""Results back to the PACS, the edges mutation testing found unasserted (diagnosis.pacs): what is queued and when,
which rows a retry or the sweeper touches, what a send records, the PACS's warning statuses, the called AE title
and the network timeout."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pydicom
import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from pynetdicom import AE, AllStoragePresentationContexts, evt

from diagnosis import intake, pacs, reviews
from diagnosis.models import DicomInstance, DicomPeer, ResultSend, ReviewSend, Role, SendStatus, Study
from diagnosis.task_names import SEND_RESULTS
from tests import dicoms, factories, images
from tests.diagnosis.test_pacs_send import _dicom_study, _send_here
from tests.needs import need

pytestmark = pytest.mark.django_db
LONG_AGO = timedelta(days=1)


@pytest.fixture
def pacs_answering() -> Iterator[tuple[int, list[pydicom.Dataset], list[int]]]:
    """A PACS that requires its own AE title (FAKEPACS) and answers each C-STORE with the status set in the list
    (success by default); the datasets it was sent."""
    received: list[pydicom.Dataset] = []
    answer = [0x0000]

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        return answer[0]

    ae = AE(ae_title="FAKEPACS")
    ae.require_called_aet = True
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    yield int(server.server_address[1]), received, answer
    server.shutdown()


def _queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    sent: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("diagnosis.pacs.current_app.send_task", lambda name, args: sent.append((name, args)))
    return sent


def _dicom(alice: User, port: int) -> Study:
    """A judged DICOM study from the clinic's peer (made on the first call, sending to `port`)."""
    peer = DicomPeer.objects.first()
    if peer is None:
        return _dicom_study(alice, port)[0]
    DicomPeer.objects.update(send_port=port)
    data = dicoms.radiograph(images.chest_like(), "mono2_8bit", PatientSex="F", PatientBirthDate="20200101")
    study = intake.create_study(alice, intake.validate_upload("y.dcm", len(data), io.BytesIO(data)), peer=peer)
    return factories.judge(study, "PNEUMONIA", 0.8734, threshold=0.4, model_version="v-test")


def _failed(alice: User, port: int) -> Study:
    """A DICOM study whose results send failed (nothing listens where its peer points)."""
    found = _dicom(alice, port)
    DicomPeer.objects.update(send_port=1)
    pacs.schedule(found.pk)
    assert pacs.send(str(found.pk)).status == SendStatus.FAILED
    return found


def test_scheduling_queues_the_send_once_the_study_commits(
    alice, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    sent = _queued(monkeypatch)
    study, _ = _dicom_study(alice, 1)
    with django_capture_on_commit_callbacks(execute=True):
        pacs.schedule(study.pk)
        assert sent == []  # not before the commit
    assert sent == [(SEND_RESULTS, [str(study.pk)])]
    with django_capture_on_commit_callbacks(execute=True):
        pacs.schedule(study.pk)  # made once: not queued again
    assert len(sent) == 1


@pytest.mark.django_db(transaction=True)
def test_a_broker_failure_after_the_commit_loses_nothing(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """robust on_commit: the send stays PENDING for the sweeper, and neither the commit nor the caller fails."""

    def broker_down(name: str, args: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr("diagnosis.pacs.current_app.send_task", broker_down)
    study, _ = _dicom_study(alice, 1)
    with transaction.atomic():
        pacs.schedule(study.pk)
    assert ResultSend.objects.get(study=study).status == SendStatus.PENDING
    DicomPeer.objects.update(send_port=1)
    pacs.send(str(study.pk))
    with transaction.atomic():
        assert pacs.retry(study.pk) == 1
    assert ResultSend.objects.get(study=study).status == SendStatus.PENDING


def test_a_batch_schedules_only_its_own_studies(alice) -> None:
    elsewhere, _ = _dicom_study(alice, 1)
    mine = factories.judged_study(alice)
    pacs.schedule_many([mine.pk])
    assert not ResultSend.objects.filter(study=elsewhere).exists()


@pytest.mark.parametrize("lost", ["the peer was removed", "the peer sends no results"])
def test_a_study_without_a_destination_fails_saying_so(alice, lost: str) -> None:
    study, _ = _dicom_study(alice, 1)
    pacs.schedule(study.pk)
    if lost == "the peer was removed":
        DicomInstance.objects.filter(study=study).update(peer=None)
    else:
        DicomPeer.objects.update(send_host="", send_port=None, send_ae_title="")
    row = pacs.send(str(study.pk))
    assert row.status == SendStatus.FAILED and row.sent_at is None
    assert row.reason == "SendError: the clinic has no DICOM destination for results"
    assert row.destination == ("" if lost == "the peer was removed" else "@:None")


def test_an_overlay_that_cannot_be_read_fails_the_send_saying_so_and_sends_nothing(alice, pacs_answering) -> None:
    port, received, _ = pacs_answering
    study = _dicom(alice, port)
    pacs.schedule(study.pk)
    with study.result.overlay.open("wb") as fh:
        fh.write(b"not an image")
    row = pacs.send(str(study.pk))
    assert row.status == SendStatus.FAILED and row.reason == "SendError: the overlay image cannot be read"
    assert received == []


def test_a_long_failure_is_kept_to_2000_characters(alice, monkeypatch) -> None:
    study, _ = _dicom_study(alice, 1)
    pacs.schedule(study.pk)

    def refused(*args: Any) -> None:
        raise pacs.SendError("x" * 5000)

    monkeypatch.setattr(pacs, "store", refused)
    row = pacs.send(str(study.pk))
    assert len(row.reason) == 2000 and row.reason.startswith("SendError: xxx")


def test_a_send_records_when_it_was_sent_and_clears_the_last_failure(alice, pacs_answering, monkeypatch) -> None:
    port, received, _ = pacs_answering
    study = _failed(alice, port)
    assert ResultSend.objects.get(study=study).sent_at is None
    DicomPeer.objects.update(send_port=port)
    _send_here(monkeypatch)
    assert pacs.retry(study.pk) == 1
    pacs.send(str(study.pk))
    row = ResultSend.objects.get(study=study)
    assert row.status == SendStatus.SENT and row.reason == "" and row.sent_at is not None and len(received) == 2


@pytest.mark.parametrize("warning", [0xB000, 0xB006, 0xB007])
def test_a_store_with_a_warning_is_sent(alice, pacs_answering, warning: int) -> None:
    """PS3.4 B.2.3: coercion of data elements, elements discarded, data set does not match the SOP class: the
    PACS stored it (a warning, not a failure)."""
    port, received, answer = pacs_answering
    answer[0] = warning
    study, _ = _dicom_study(alice, port)
    pacs.schedule(study.pk)
    assert pacs.send(str(study.pk)).status == SendStatus.SENT and len(received) == 2


def test_the_pacs_is_called_by_its_own_ae_title(alice, pacs_answering) -> None:
    port, received, _ = pacs_answering
    study, _ = _dicom_study(alice, port)
    DicomPeer.objects.update(send_ae_title="OTHERPACS")
    pacs.schedule(study.pk)
    assert pacs.send(str(study.pk)).status == SendStatus.FAILED and received == []


def test_a_pacs_that_never_answers_fails_the_send_within_the_timeout(alice, settings) -> None:
    """A PACS that accepts the connection and then says nothing must not hold the worker: DICOM_SEND_TIMEOUT."""
    settings.DICOM_SEND_TIMEOUT = 1
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        study, _ = _dicom_study(alice, silent.getsockname()[1])
        pacs.schedule(study.pk)
        began = time.monotonic()
        row = pacs.send(str(study.pk))
    assert row.status == SendStatus.FAILED and time.monotonic() - began < 20  # not the 30 s default, nor for ever


def test_a_retry_touches_only_this_studys_failed_sends(alice, pacs_answering, monkeypatch) -> None:
    port, _, _ = pacs_answering
    first, second = _failed(alice, port), _failed(alice, port)
    sent, third = _queued(monkeypatch), factories.judged_study(alice)
    ResultSend.objects.create(study=third, status=SendStatus.SENT, series_uid="1", sr_uid="2", sc_uid="3")
    ResultSend.objects.update(updated=timezone.now() - LONG_AGO)  # failed long ago
    assert pacs.retry(first.pk) == 1 and pacs.retry(third.pk) == 0
    assert ResultSend.objects.get(study=second).status == SendStatus.FAILED
    assert ResultSend.objects.get(study=third).status == SendStatus.SENT
    row = ResultSend.objects.get(study=first)
    assert (row.status, row.attempts) == (SendStatus.PENDING, 0)
    assert sent == []  # queued on commit only (this test's transaction never commits)
    assert str(first.pk) not in pacs.redrive()  # just queued by the retry: not stale for the sweeper


def test_a_retry_counts_the_results_and_the_readings_it_queued(alice, pacs_answering, monkeypatch) -> None:
    port, _, _ = pacs_answering
    study = _failed(alice, port)
    monkeypatch.setattr("diagnosis.reviews.current_app.send_task", lambda _name, args: None)
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=True, note="")
    assert pacs.send_review(ReviewSend.objects.get(study=study).pk).status == SendStatus.FAILED
    assert pacs.retry(study.pk) == 2


def test_the_sweeper_re_drives_failed_and_pending_sends_only_and_marks_them_pending(
    alice, settings, monkeypatch
) -> None:
    settings.QUEUED_STALE_SECONDS = 60
    failed = _failed(alice, 1)
    done = factories.judged_study(alice)
    ResultSend.objects.create(study=done, status=SendStatus.SENT, series_uid="1", sr_uid="2", sc_uid="3")
    ResultSend.objects.update(updated=timezone.now() - LONG_AGO)
    sent = _queued(monkeypatch)
    assert pacs.redrive() == [str(failed.pk)]  # not the one already sent
    assert sent == [(SEND_RESULTS, [str(failed.pk)])]
    assert ResultSend.objects.get(study=failed).status == SendStatus.PENDING
    assert pacs.redrive() == []  # queued a moment ago: not queued twice


def test_a_failed_send_is_not_stale_for_the_sweeper_at_once(alice, monkeypatch) -> None:
    """The row's last change dates the sweeper's next try: a send that just failed, on a row made long ago, waits
    QUEUED_STALE_SECONDS again."""
    study, _ = _dicom_study(alice, 1)
    DicomPeer.objects.update(send_port=1)
    pacs.schedule(study.pk)
    ResultSend.objects.update(updated=timezone.now() - LONG_AGO)
    assert pacs.send(str(study.pk)).status == SendStatus.FAILED
    _queued(monkeypatch)
    assert pacs.redrive() == []


def test_a_readings_number_counts_only_this_studys_readings(alice, pacs_answering, monkeypatch) -> None:
    port, received, _ = pacs_answering
    monkeypatch.setattr("diagnosis.reviews.current_app.send_task", lambda _name, args: None)
    reviewer = factories.make_member("rita", alice.membership.clinic, Role.REVIEWER)
    for _ in range(2):
        study = _dicom(alice, port)
        pacs.schedule(study.pk)
        pacs.send(str(study.pk))
        reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=True, note="")
        assert pacs.send_review(ReviewSend.objects.get(study=study).pk).status == SendStatus.SENT
        assert received[-1].InstanceNumber == 3  # after the model's SR and SC; the other study's reading not counted


def _texts(items: Any) -> list[str]:
    """Every TextValue in an SR's content tree."""
    return [t for item in items for t in [str(item.get("TextValue", "")), *_texts(item.get("ContentSequence", []))]]


def test_the_results_and_a_reading_reach_the_pacs_in_the_clinics_language(alice, pacs_answering, monkeypatch) -> None:
    """A worker has no request to take a language from: the documents' text is in the clinic's (pacs._language)."""
    from pathlib import Path

    from django.conf import settings
    from django.utils import translation

    from diagnosis import pacs_documents

    catalog = Path(settings.BASE_DIR, "diagnosis", "locale", "vi", "LC_MESSAGES", "django.mo")
    need(catalog.exists(), "the compiled Vietnamese catalog (make messages)")
    with translation.override("vi"):
        disclaimer = translation.gettext(pacs_documents.DECISION_SUPPORT)
    assert disclaimer != pacs_documents.DECISION_SUPPORT
    port, received, _ = pacs_answering
    clinic = alice.membership.clinic
    clinic.language = "vi"
    clinic.save()
    monkeypatch.setattr("diagnosis.reviews.current_app.send_task", lambda _name, args: None)
    study = _dicom(alice, port)
    pacs.schedule(study.pk)
    assert pacs.send(str(study.pk)).status == SendStatus.SENT
    assert disclaimer in _texts(received[0].ContentSequence)
    reviewer = factories.make_member("rita", clinic, Role.REVIEWER)
    reviews.review_study(reviewer, Study.objects.get(pk=study.pk), agrees=True, note="")
    assert pacs.send_review(ReviewSend.objects.get(study=study).pk).status == SendStatus.SENT
    reading = (  # pacs_documents' msgid for a reading that agrees
        "Clinician's reading: %(final)s. The reviewer agrees with the model's call (%(model)s, P(pneumonia) "
        "%(probability)s)."
    )
    with translation.override("vi"):
        opening = translation.gettext(reading).split("%")[0]
    assert opening != "Clinician's reading: "
    assert any(text.startswith(opening) for text in _texts(received[-1].ContentSequence))


def test_a_send_the_sweeper_cannot_queue_stays_pending_and_the_log_names_it(alice, settings, monkeypatch, caplog):
    settings.QUEUED_STALE_SECONDS = 60
    failed = _failed(alice, 1)
    ResultSend.objects.update(updated=timezone.now() - LONG_AGO)

    def broker_down(name: str, args: Any) -> None:
        raise OSError("broker down")

    monkeypatch.setattr("diagnosis.pacs.current_app.send_task", broker_down)
    assert pacs.redrive() == [str(failed.pk)]  # the sweep goes on
    assert ResultSend.objects.get(study=failed).status == SendStatus.PENDING
    (warning,) = [r for r in caplog.records if r.name == "diagnosis.pacs" and r.getMessage().startswith("could not")]
    assert warning.getMessage() == f"could not queue the ResultSend of study_id {failed.pk}"
    assert warning.exc_info is not None and isinstance(warning.exc_info[1], OSError)


def test_a_batch_of_uploaded_dicom_files_is_passed_over_in_one_query(alice, django_assert_num_queries) -> None:
    """schedule_many runs after every batch the worker records: DICOM files uploaded by hand (no peer) cost no
    query each."""
    ids = []
    for sex in "FM":  # two different files (the same one twice is one study)
        data = dicoms.radiograph(images.chest_like(), "mono2_8bit", PatientSex=sex, PatientBirthDate="20200101")
        ids.append(intake.create_study(alice, intake.validate_upload("a.dcm", len(data), io.BytesIO(data))).pk)
    assert DicomInstance.objects.filter(study_id__in=ids, peer__isnull=True).count() == 2
    with django_assert_num_queries(1):
        pacs.schedule_many(ids)
    assert not ResultSend.objects.exists()


@pytest.fixture
def aborting_pacs() -> Iterator[int]:
    """A PACS that aborts the association in the middle of a C-STORE: the sender gets no status at all."""

    def on_store(event: Any) -> int:
        event.assoc.abort()
        return 0x0000

    ae = AE(ae_title="FAKEPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    yield int(server.server_address[1])
    server.shutdown()


def test_a_store_answered_with_no_status_fails_with_0xffff_and_the_warning_names_where_and_why(
    alice, aborting_pacs, caplog
) -> None:
    """pynetdicom answers an aborted C-STORE with an empty dataset: the send fails as status 0xFFFF (not a
    TypeError of the missing status), and one warning names the row, the study, the destination and the error
    (mutation testing: the missing-status default and each of the warning's parts survived)."""
    study, _ = _dicom_study(alice, aborting_pacs)
    pacs.schedule(study.pk)
    with caplog.at_level("WARNING", logger="diagnosis.pacs"):
        row = pacs.send(str(study.pk))
    assert row.status == SendStatus.FAILED
    assert row.reason.startswith("SendError: C-STORE of ") and row.reason.endswith(" answered status 0xFFFF")
    warnings = [r.getMessage() for r in caplog.records if r.name == "diagnosis.pacs" and r.levelname == "WARNING"]
    destination = f"FAKEPACS@127.0.0.1:{aborting_pacs}"
    assert warnings == [f"ResultSend of study {study.pk} not sent to {destination}: {row.reason[len('SendError: ') :]}"]
    assert row.destination == destination
