from unittest import mock

import pytest

from diagnosis import intake
from diagnosis.models import AuditAction, AuditEvent, InferenceJob, JobStatus
from diagnosis.task_names import RUN_INFERENCE
from tests import images
from tests.factories import upload_file
from worker.ml import working

pytestmark = pytest.mark.django_db


def test_submit_creates_study_job_and_enqueues_on_commit(alice, django_capture_on_commit_callbacks) -> None:
    with (
        mock.patch("diagnosis.dispatch.current_app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        sub = intake.submit_files(alice, [upload_file("x.png")])
    (study,) = sub.studies
    assert sub.errors == []
    assert study.owner == alice and study.original_name == "x.png"
    assert study.job.status == JobStatus.QUEUED
    assert study.image.read() == images.png()
    send.assert_called_once()
    assert send.call_args.args == (RUN_INFERENCE,) and send.call_args.kwargs["args"] == [study.job.pk]


def test_many_files_are_recorded_in_groups_in_order_each_audited_and_sent_once(
    alice, django_capture_on_commit_callbacks
) -> None:
    names = [f"x{i:02}.png" for i in range(intake.RECORD_EVERY + 5)]
    files = (
        [upload_file(n) for n in names[:3]] + [upload_file("bad.png", b"garbage")] + [upload_file(n) for n in names[3:]]
    )
    with (
        mock.patch("diagnosis.dispatch.current_app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        sub = intake.submit_files(alice, files)
    assert [s.original_name for s in sub.studies] == names and [e.file_name for e in sub.errors] == ["bad.png"]
    assert len(callbacks) == 2  # two groups: RECORD_EVERY, then the rest; one message each, naming its jobs
    ids = [s.job.pk for s in sub.studies]
    assert [c.kwargs["args"] for c in send.call_args_list] == [ids[: intake.RECORD_EVERY], ids[intake.RECORD_EVERY :]]
    uploads = AuditEvent.objects.filter(action=AuditAction.UPLOAD)
    assert sorted(uploads.values_list("target_id", flat=True)) == sorted(str(s.pk) for s in sub.studies)
    assert set(uploads.values_list("clinic", flat=True)) == {alice.membership.clinic.pk}


def test_a_bad_file_does_not_stop_the_others(alice) -> None:
    files = [upload_file("good1.png"), upload_file("bad.png", b"garbage"), upload_file("good2.png")]
    sub = intake.submit_files(alice, files)
    assert [s.original_name for s in sub.studies] == ["good1.png", "good2.png"]
    assert [e.file_name for e in sub.errors] == ["bad.png"]
    assert InferenceJob.objects.count() == 2


def test_a_group_that_cannot_be_recorded_leaves_no_files(alice, settings, monkeypatch) -> None:
    from pathlib import Path

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(intake, "record", broken)
    with pytest.raises(RuntimeError):
        intake.submit_files(alice, [upload_file("a.png"), upload_file("b.png")])
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


@pytest.mark.parametrize("failing", ["thumbnail.jpg", working.FILE_NAME])
def test_storage_failing_part_way_through_a_study_leaves_none_of_its_files(
    alice, settings, monkeypatch, failing
) -> None:
    from pathlib import Path

    from django.core.files.storage import FileSystemStorage

    save = FileSystemStorage.save

    def fails_there(self, name, content, max_length=None):
        if str(name).endswith(failing):
            raise OSError(28, "No space left on device")
        return save(self, name, content, max_length)

    monkeypatch.setattr(FileSystemStorage, "save", fails_there)
    with pytest.raises(OSError, match="No space"):
        intake.submit_files(alice, [upload_file("a.png")])
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_a_single_study_that_cannot_be_recorded_leaves_no_files(alice, settings, monkeypatch) -> None:
    """The DICOM listener's path (create_study): stored, then the database fails."""
    import io
    from pathlib import Path

    from diagnosis.validation import validate_upload

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(intake, "record", broken)
    with pytest.raises(RuntimeError):
        intake.create_study(alice, validate_upload("a.png", None, io.BytesIO(images.png())))
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_a_message_names_at_most_half_a_batch(alice, settings, django_capture_on_commit_callbacks) -> None:
    settings.INFERENCE_BATCH_SIZE = 8  # half a batch: 4 jobs a message, the rest of each batch for the fair order
    with (
        mock.patch("diagnosis.dispatch.current_app.send_task") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        sub = intake.submit_files(alice, [upload_file(f"{i}.png") for i in range(5)])
    ids = [s.job.pk for s in sub.studies]
    assert [c.kwargs["args"] for c in send.call_args_list] == [ids[:4], ids[4:]]
