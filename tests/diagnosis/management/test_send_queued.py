"""`manage.py send_queued` (diagnosis.jobs.send_all_queued): after the broker lost its messages (`make run`'s
embedded Redis starts empty), every queued job that is due and has claims left is sent again, half a batch to a
message; running, finished, backed-off and given-up jobs are not."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from diagnosis import dispatch, jobs
from diagnosis.models import InferenceJob, JobStatus
from tests import factories


def test_every_due_queued_job_is_sent_again_and_no_other(
    alice, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    settings.INFERENCE_BATCH_SIZE = 4
    studies = [factories.study(alice, f"{i}.png") for i in range(7)]
    queued = [s.job.pk for s in studies[:3]]
    running, backed_off, spent = studies[3].job.pk, studies[5].job.pk, studies[6].job.pk
    jobs.claim_job(running)
    factories.judge(studies[4])  # done
    InferenceJob.objects.filter(pk=backed_off).update(enqueued_at=timezone.now() + timedelta(seconds=60))
    InferenceJob.objects.filter(pk=spent).update(attempts=F("attempts") + settings.MAX_ATTEMPTS)
    assert InferenceJob.objects.get(pk=spent).status == JobStatus.QUEUED
    sent: list[tuple[tuple[int, ...], int]] = []
    monkeypatch.setattr(dispatch, "send", lambda *ids, per_message=1: sent.append((ids, per_message)))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("send_queued", stdout=out)
    assert sent == [(tuple(queued), 2)]
    assert out.getvalue().strip() == "3 queued jobs sent to the broker again"


def test_with_nothing_queued_nothing_is_sent(db, monkeypatch) -> None:
    sent: list[tuple[int, ...]] = []
    monkeypatch.setattr(dispatch, "send", lambda *ids, per_message=1: sent.append(ids))
    out = StringIO()
    call_command("send_queued", verbosity=0, stdout=out)
    assert sent == [] and out.getvalue() == ""
