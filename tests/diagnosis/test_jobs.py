from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from diagnosis import dispatch, intake, jobs, result_files
from diagnosis.models import InferenceJob, JobStatus, Result
from tests import factories
from tests.factories import upload_file
from tests.needs import need_postgresql

pytestmark = pytest.mark.django_db


def _study(user):
    return intake.submit_files(user, [upload_file()]).studies[0]


def test_claim_is_atomic_and_only_once(alice) -> None:
    job = _study(alice).job
    claimed = jobs.claim_job(job.pk)
    assert claimed is not None and claimed.status == JobStatus.RUNNING and claimed.attempts == 1
    assert jobs.claim_job(job.pk) is None


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_jobs_each_take_a_job_once(alice) -> None:
    """Eight threads (each its own database connection, as eight worker children) claim the same twenty jobs at
    once, one by one in the same order and then all together: every job is taken by exactly one of them, once."""
    import threading

    from django.db import connection

    need_postgresql()
    ids = [s.job.pk for s in intake.submit_files(alice, [upload_file(f"{i}.png") for i in range(20)]).studies]
    barrier, taken, errors = threading.Barrier(8), {}, []

    def claim(worker: str) -> None:
        try:
            barrier.wait(10)
            mine = [pk for pk in ids[:10] if jobs.claim_job(pk, worker) is not None]
            taken[worker] = mine + jobs.claim_queued(ids[10:], worker)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"celery@w{i}|host|{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    claims = sorted(pk for mine in taken.values() for pk in mine)
    assert claims == sorted(ids)  # each job once, none twice
    rows = InferenceJob.objects.filter(pk__in=ids)
    assert {(j.status, j.attempts) for j in rows} == {(JobStatus.RUNNING, 1)}
    holder = {pk: worker for worker, mine in taken.items() for pk in mine}
    assert all(j.worker == holder[j.pk] for j in rows)


def test_record_result_twice_keeps_one_result(alice) -> None:
    job = jobs.claim_job(_study(alice).job.pk)
    assert job is not None
    prediction = factories.prediction(heatmap_png=b"\x89PNGheat", overlay_jpeg=b"\xff\xd8over")
    jobs.record_results([(job, prediction)])[0]
    jobs.record_results([(job, prediction)])[0]
    assert Result.objects.count() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.processing_ms is not None
    assert job.study.result.heatmap.read() == b"\x89PNGheat"


def test_reject_is_final(alice) -> None:
    job = jobs.claim_job(_study(alice).job.pk)
    assert job is not None
    assert jobs.reject_job(job.pk, "not a radiograph")
    job.refresh_from_db()
    assert (job.status, job.reason) == (JobStatus.REJECTED, "not a radiograph")
    assert jobs.claim_job(job.pk) is None


def test_sweeper_requeues_stale_jobs_and_gives_up_after_max_attempts(alice, settings) -> None:
    settings.RUNNING_STALE_SECONDS = 60
    settings.QUEUED_STALE_SECONDS = 60
    settings.MAX_ATTEMPTS = 3
    old = timezone.now() - timedelta(minutes=5)
    lost_message = _study(alice).job
    InferenceJob.objects.filter(pk=lost_message.pk).update(enqueued_at=old)
    killed_worker = _study(alice).job
    InferenceJob.objects.filter(pk=killed_worker.pk).update(status=JobStatus.RUNNING, started_at=old, attempts=1)
    poison = _study(alice).job
    InferenceJob.objects.filter(pk=poison.pk).update(status=JobStatus.RUNNING, started_at=old, attempts=3)
    fresh = _study(alice).job
    with mock.patch("diagnosis.dispatch.current_app.send_task") as send:
        requeued = jobs.requeue_stale_jobs()
    assert sorted(requeued) == sorted([lost_message.pk, killed_worker.pk])
    assert send.call_count == 2
    statuses = dict(InferenceJob.objects.values_list("pk", "status"))
    assert statuses[killed_worker.pk] == JobStatus.QUEUED
    assert statuses[poison.pk] == JobStatus.FAILED
    assert statuses[fresh.pk] == JobStatus.QUEUED
    with mock.patch("diagnosis.dispatch.current_app.send_task"):
        assert jobs.requeue_stale_jobs() == []  # the re-enqueued ones got a new deadline


def test_a_job_whose_message_was_not_sent_goes_in_the_sweepers_next_round(alice, settings) -> None:
    """A red-team pass stalled Redis for 16 s: every study submitted meanwhile waited for QUEUED_STALE_SECONDS
    (2.5 minutes in all) before the sweeper sent it. Now the next round (every SWEEP_INTERVAL) sends it."""
    settings.QUEUED_STALE_SECONDS = 120
    _study(alice)  # its message was sent: the sweeper leaves it alone
    failed, paused = _study(alice).job, _study(alice).job
    with mock.patch("diagnosis.dispatch.current_app.producer_or_acquire", side_effect=OSError("broker stalled")):
        dispatch.pause.until = 0.0
        with pytest.raises(OSError):
            dispatch.send(failed.pk)  # the first send fails ...
        dispatch.send(paused.pk)  # ... and sends in the next seconds are skipped
    dispatch.pause.until = 0.0
    with mock.patch("diagnosis.dispatch.current_app.producer_or_acquire", side_effect=OSError("broker stalled")):
        assert sorted(jobs.requeue_stale_jobs()) == sorted([failed.pk, paused.pk])  # not the one sent; no raise
    dispatch.pause.until = 0.0  # the sweeper's own sends failed: both are due again in its next round
    with mock.patch("diagnosis.dispatch.current_app.send_task") as send:
        assert sorted(jobs.requeue_stale_jobs()) == sorted([failed.pk, paused.pk])
    assert send.call_count == 2


def test_sweeper_leaves_queued_jobs_alone_while_the_broker_has_a_backlog(alice, settings) -> None:
    settings.QUEUED_STALE_SECONDS = 60
    waiting = _study(alice).job
    InferenceJob.objects.filter(pk=waiting.pk).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    with mock.patch("diagnosis.dispatch.current_app.send_task") as send:
        assert jobs.requeue_stale_jobs(requeue_queued=False) == []
        assert jobs.requeue_stale_jobs(requeue_queued=True) == [waiting.pk]
    assert send.call_count == 1


def test_finishing_a_batch_moves_only_the_jobs_not_final(alice) -> None:
    from django.db import transaction

    claimed = [jobs.claim_job(_study(alice).job.pk) for _ in range(3)]
    held = [job for job in claimed if job is not None]
    assert len(held) == 3
    jobs.reject_job(held[1].pk, "not a radiograph")  # final before the batch is recorded
    with transaction.atomic():
        done = jobs.finish_done_many(held)
    assert done == {held[0].pk, held[2].pk}
    states = dict(InferenceJob.objects.values_list("pk", "status"))
    assert [states[j.pk] for j in held] == [JobStatus.DONE, JobStatus.REJECTED, JobStatus.DONE]
    assert InferenceJob.objects.get(pk=held[0].pk).processing_ms is not None


def test_a_job_a_live_worker_runs_is_never_given_up_under_its_feet(alice, settings) -> None:
    job = jobs.claim_job(_study(alice).job.pk, "w|elsewhere|9")  # a live worker on another machine
    assert job is not None
    InferenceJob.objects.filter(pk=job.pk).update(attempts=settings.MAX_ATTEMPTS)
    assert jobs.claim_job(job.pk) is None
    assert InferenceJob.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_re_claiming_from_a_gone_holder_queues_its_other_jobs_again_at_once(
    alice, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    import socket

    studies = [_study(alice) for _ in range(3)]
    gone = f"w|{socket.gethostname()}|{2**22 + 4321}"  # no such process
    held = jobs.claim_queued([s.job.pk for s in studies], gone)
    assert len(held) == 3
    sent: list[tuple[int, ...]] = []
    monkeypatch.setattr(dispatch, "send", lambda *ids, per_message=1: sent.append(ids))
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.claim_job(held[0], "w|here|1") is not None
    states = dict(InferenceJob.objects.values_list("pk", "status"))
    assert [states[pk] for pk in held] == [JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.QUEUED]
    assert sent == [tuple(held[1:])]


def test_a_sent_job_carries_no_time_limit_so_each_worker_applies_its_own(monkeypatch) -> None:
    """Celery would copy this process's limit (its INFERENCE_BATCH_SIZE) into the message, and a worker obeys the
    message's before its own: a GPU worker's bigger batches would get the web server's smaller limit."""
    from celery import current_app

    from diagnosis import tasks

    assert current_app.tasks[tasks.RUN_INFERENCE].time_limit  # registered here, as in the sweeper's worker
    sent = []
    capture = lambda _producer, _name, message, **_: sent.append(message)  # noqa: E731
    monkeypatch.setattr(current_app.amqp, "send_task_message", capture)
    dispatch.pause.until = 0.0
    dispatch.send(1, 2, 3, per_message=2)
    assert [m.headers["timelimit"] for m in sent] == [[None, None], [None, None]]
    assert [m.headers["argsrepr"] for m in sent] == ["[1, 2]", "[3]"]


@pytest.mark.parametrize("threads", [1, 4])
def test_a_result_whose_files_cannot_be_written_fails_alone_and_leaves_none(alice, settings, monkeypatch, threads):
    """store_results writes a batch's heatmaps and overlays (STORAGE_THREADS at a time). One overlay failing costs
    that result alone: the Exception in its place, its heatmap removed; the others are written. record_results (the
    per-job path) keeps none of them and raises."""
    from pathlib import Path

    from django.core.files.storage import FileSystemStorage

    from diagnosis import batching

    settings.STORAGE_THREADS = threads
    ids = [factories.study(alice).job.pk for _ in range(4)]
    held = batching.claim_batch(ids, "w|h|1", 4)
    save, overlays = FileSystemStorage.save, []

    def third_overlay_fails(self, name, content, max_length=None):
        if "overlay-" in str(name):
            overlays.append(name)
            if len(overlays) == 3:
                raise OSError(28, "No space left on device")
        return save(self, name, content, max_length)

    def drawn() -> list[str]:
        derived = Path(settings.MEDIA_ROOT, "derived").rglob("*")
        return sorted(p.name.split("-", 5)[-1] for p in derived if "-heatmap-" in p.name or "-overlay-" in p.name)

    monkeypatch.setattr(FileSystemStorage, "save", third_overlay_fails)
    stored = result_files.store_results([(job, factories.prediction()) for job in held])
    assert [isinstance(r, OSError) for r in stored].count(True) == 1
    written = [r for r in stored if isinstance(r, Result)]
    assert drawn() == sorted(Path(str(f.name)).name.split("-", 5)[-1] for r in written for f in (r.heatmap, r.overlay))
    result_files.remove_files(written)
    overlays.clear()
    with pytest.raises(OSError, match="No space"):
        jobs.record_results([(job, factories.prediction()) for job in held])
    assert drawn() == [] and not Result.objects.exists()


def test_a_claim_at_the_attempts_cap_gives_the_job_up_and_one_below_takes_it(alice, settings) -> None:
    settings.MAX_ATTEMPTS = 3
    last, over = _study(alice).job, _study(alice).job
    InferenceJob.objects.filter(pk=last.pk).update(attempts=2)
    InferenceJob.objects.filter(pk=over.pk).update(attempts=3)
    taken = jobs.claim_job(last.pk, "w|here|1")
    assert taken is not None and (taken.status, taken.attempts, taken.worker) == (JobStatus.RUNNING, 3, "w|here|1")
    assert jobs.claim_job(over.pk, "w|here|1") is None
    given_up = InferenceJob.objects.get(pk=over.pk)
    assert (given_up.status, given_up.reason) == (JobStatus.FAILED, jobs.gave_up_reason())
    assert "3 times" in jobs.gave_up_reason()


def test_a_claim_names_this_process_unless_told_and_brings_the_study(alice, django_assert_num_queries) -> None:
    from diagnosis.liveness import worker_id

    job = jobs.claim_job(_study(alice).job.pk)
    assert job is not None and job.worker == worker_id()
    with django_assert_num_queries(0):
        assert job.study.owner_id == alice.pk


def test_re_claiming_from_a_gone_holder_starts_it_afresh_for_the_new_worker(alice) -> None:
    import socket

    gone = f"w|{socket.gethostname()}|{2**22 + 4321}"  # no such process
    (held,) = jobs.claim_queued([_study(alice).job.pk], gone)
    before = timezone.now()
    job = jobs.claim_job(held, "w|here|2")
    assert job is not None and (job.status, job.worker, job.attempts) == (JobStatus.RUNNING, "w|here|2", 2)
    assert job.started_at is not None and job.started_at >= before
