"""Issue 12: batched inference and the fair order (in this process; the real worker killed mid-batch is in
tests/faults/test_batch_kill.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import DatabaseError

from diagnosis import batching, dispatch, intake, jobs, pipeline, pipeline_steps, predictor, result_files, tasks
from diagnosis.models import InferenceJob, JobPriority, JobStatus, Result, Study
from tests import factories, images
from tests.factories import make_member, upload_file, zip_of
from tests.needs import need_training_images
from worker.ml import working
from worker.ml.prediction import Judged
from worker.ml.preprocessing import ImageRejected

pytestmark = pytest.mark.django_db
UPLOAD_FILES = (working.FILE_NAME, "preview.jpg", "thumbnail.jpg")  # a study's derived files, before any result


def _queued(owner: User, priority: JobPriority = JobPriority.BULK) -> int:
    study = factories.study(owner)
    InferenceJob.objects.filter(study=study).update(priority=priority)
    return int(study.job.pk)


def test_interactive_first_then_bulk_round_robin_between_clinics(alice: User, bob: User, clinic_b: Any) -> None:
    a = [_queued(alice) for _ in range(4)]  # clinic A's big batch arrives first
    b = [_queued(bob) for _ in range(2)]  # then clinic B's small one
    carol = make_member("carol", clinic_b)
    single = _queued(carol, JobPriority.INTERACTIVE)  # then one study someone waits for
    assert [pk for pk, _ in batching.fair_order(100)] == [single, a[0], b[0], a[1], b[1], a[2], a[3]]
    # Claims follow the order and never overlap.
    first = jobs.claim_queued([pk for pk, _ in batching.fair_order(3)], "w|h|1")
    second = jobs.claim_queued([pk for pk, _ in batching.fair_order(3)], "w|h|2")
    assert first == [single, a[0], b[0]] and second == [a[1], b[1], a[2]]
    assert jobs.claim_queued(first, "w|h|2") == []  # already held: a second claim takes nothing
    assert set(InferenceJob.objects.filter(status=JobStatus.RUNNING).values_list("worker", flat=True)) == {
        "w|h|1",
        "w|h|2",
    }


def test_a_message_takes_its_own_job_first_and_claims_nothing_once_an_earlier_batch_took_it(
    alice: User, bob: User
) -> None:
    a = [_queued(alice) for _ in range(3)]
    b = [_queued(bob) for _ in range(3)]
    single = _queued(bob, JobPriority.INTERACTIVE)
    first = [j.pk for j in batching.claim_batch([b[2]], "w|h|1", 3)]
    assert first == [b[2], single]  # its own job, then the fair order: the interactive one, and with it no bulk
    assert batching.claim_batch([single], "w|h|1", 3) == []  # taken by that batch: a no-op, although jobs are queued
    factories.finish(b[2])
    assert batching.claim_batch([b[2]], "w|h|1", 3) == []  # final: a no-op
    assert [j.pk for j in batching.claim_batch([a[2]], "w|h|2", 3)] == [a[2], a[0], b[0]]
    assert [j.pk for j in batching.claim_batch([b[1]], "w|h|2", 3)] == [b[1], a[1]]  # the last ones queued


def test_a_batch_with_an_interactive_study_takes_only_interactive_ones_from_the_fair_order(
    alice: User, bob: User
) -> None:
    bulk = [_queued(alice) for _ in range(4)]
    waited = [_queued(bob, JobPriority.INTERACTIVE), _queued(alice, JobPriority.INTERACTIVE)]
    assert [j.pk for j in batching.claim_next("w|h|1", 8)] == waited  # not the bulk jobs queued before them
    assert [j.pk for j in batching.claim_next("w|h|1", 8)] == bulk  # the next batch takes those
    late = _queued(bob, JobPriority.INTERACTIVE)
    more = [_queued(alice) for _ in range(2)]
    assert [j.pk for j in batching.claim_batch([late], "w|h|2", 8)] == [late]  # its message's, and no bulk
    assert [j.pk for j in batching.claim_batch([more[1]], "w|h|2", 8)] == [more[1], more[0]]


def test_a_single_api_study_or_a_page_upload_is_interactive_and_many_files_or_a_zip_are_bulk(alice: User) -> None:
    def priorities(files: list[Any], archive: Any = None) -> set[int]:
        _, submission = intake.submit_batch(alice, files, archive)
        return {s.job.priority for s in submission.studies}

    assert priorities([upload_file("one.png")]) == {JobPriority.INTERACTIVE}
    assert priorities([upload_file("1.png"), upload_file("2.png")]) == {JobPriority.BULK}
    zipped = upload_file(
        "s.zip", zip_of({"1.png": images.png(), "2.png": images.png(330)}).getvalue(), "application/zip"
    )
    assert priorities([], zipped) == {JobPriority.BULK}
    page = intake.submit_files(alice, [upload_file("p1.png"), upload_file("p2.png")])
    assert {s.job.priority for s in page.studies} == {JobPriority.INTERACTIVE}


def test_a_batch_with_an_interactive_study_never_waits_for_more(alice: User) -> None:
    job = _queued(alice, JobPriority.INTERACTIVE)
    began = time.monotonic()
    assert [j.pk for j in batching.claim_batch([job], "w|h|1", 32, wait_ms=5000)] == [job]
    assert time.monotonic() - began < 2.0  # not the 5 s it may wait, with room for a busy machine


def test_a_bulk_batch_waits_at_most_the_setting(alice: User) -> None:
    job = _queued(alice)
    began = time.monotonic()
    assert [j.pk for j in batching.claim_batch([job], "w|h|1", 32, wait_ms=300)] == [job]
    assert 0.3 <= time.monotonic() - began < 2.0


class _CountingPredictor:
    """The real predictor, counting its judging passes."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, list[int]()

    def prepare_copies(self, copies: list[Any]) -> list[Any]:
        return list(self.real.prepare_copies(copies))

    def prepare_batch(self, datas: list[bytes], max_pixels: int) -> list[Any]:
        return list(self.real.prepare_batch(datas, max_pixels))

    def judge_prepared(self, prepared: list[Any], points: Any = None) -> list[Any]:
        self.calls.append(len(prepared))
        return list(self.real.judge_prepared(prepared, points))

    def draw(self, judged: list[Any]) -> list[Any]:
        return list(self.real.draw(judged))


def test_good_and_bad_images_in_one_batch_each_end_alone(alice: User, monkeypatch: Any, settings: Any) -> None:
    """One compiled pass for a real radiograph, a truncated file, a photo and a missing original: the
    radiograph is DONE with a result, the others REJECTED or FAILED with their own reasons. The truncated and
    missing originals are of studies without a working copy (stored before there were any), whose original is
    decoded; the others are judged from their copies."""
    need_training_images()
    settings.INFERENCE_BATCH_SIZE = 8
    counting = _CountingPredictor(predictor.get_predictor())
    monkeypatch.setattr(predictor, "get_predictor", lambda: counting)
    rgb = np.zeros((300, 300, 3), np.uint8)
    rgb[..., 1], rgb[..., 0] = np.linspace(0, 255, 300, dtype=np.uint8)[None, :], 200
    files: list[Any] = [
        upload_file("good.jpeg", images.real_radiograph("PNEUMONIA")),
        upload_file("cut.png"),
        upload_file("holiday.png", images.encode(rgb)),
        upload_file("gone.png"),
        upload_file("good2.jpeg", images.real_radiograph("NORMAL", 1)),
    ]
    _, submission = intake.submit_batch(alice, files, None)
    good, cut, photo, gone, good2 = submission.studies
    name = str(cut.image.name)
    cut.image.storage.delete(name)
    cut.image.storage.save(name, ContentFile(images.png()[:300]))
    gone.image.storage.delete(str(gone.image.name))
    Study.objects.filter(pk__in=[cut.pk, gone.pk]).update(model_copy="", chroma=None)

    assert tasks.run_inference(photo.job.pk) == "rejected"
    assert counting.calls == [4]  # one pass for the four readable images; the missing one never reached it
    status = dict(InferenceJob.objects.values_list("study_id", "status"))
    assert status == {
        good.pk: JobStatus.DONE,
        cut.pk: JobStatus.REJECTED,
        photo.pk: JobStatus.REJECTED,
        gone.pk: JobStatus.FAILED,
        good2.pk: JobStatus.DONE,
    }
    assert set(Result.objects.values_list("study_id", flat=True)) == {good.pk, good2.pk}
    assert "truncated or corrupt" in InferenceJob.objects.get(study=cut).reason
    assert "missing" in InferenceJob.objects.get(study=gone).reason
    # Every other message of the batch is now a no-op, as is a redelivery.
    assert {tasks.run_inference(s.job.pk) for s in submission.studies} == {"skipped: not queued"}


def test_a_failing_batch_pass_falls_back_to_one_by_one(alice: User, monkeypatch: Any, settings: Any) -> None:
    settings.INFERENCE_BATCH_SIZE = 8

    class Breaks:
        def prepare_copies(self, copies: list[Any]) -> list[Any]:
            return [None] * len(copies)  # no copy serves: the originals are read

        def prepare_batch(self, datas: list[bytes], max_pixels: int) -> list[Any]:
            return datas

        def judge_prepared(self, datas: list[bytes], points: Any = None) -> list[Any]:
            if len(datas) > 1 or datas[0] == poison:
                raise RuntimeError("boom")
            return [factories.prediction()]

        def draw(self, judged: list[Any]) -> list[Any]:
            return judged  # the real draw passes through what is not a Judged

    studies = [intake.submit_files(alice, [upload_file(f"{i}.png", images.png(320 + i))]).studies[0] for i in range(3)]
    poison = studies[1].image.read()
    monkeypatch.setattr(predictor, "get_predictor", lambda: Breaks())
    tasks.run_inference(studies[0].job.pk)
    status = [InferenceJob.objects.get(study=s).status for s in studies]
    assert status == [JobStatus.DONE, JobStatus.FAILED, JobStatus.DONE]


def test_recording_twice_keeps_the_first_result_and_a_final_job_keeps_its_outcome(alice: User, settings: Any) -> None:
    first, rejected = factories.study(alice), factories.study(alice)
    held = batching.claim_batch([first.job.pk], "w|h|1", 8)
    assert {j.pk for j in held} == {first.job.pk, rejected.job.pk}
    jobs.reject_job(rejected.job.pk, "not a radiograph")
    outcomes = [(j, factories.prediction()) for j in held]
    answers = jobs.record_results(outcomes)
    again = jobs.record_results(outcomes)
    by_study = {j.study_id: a for (j, _), a in zip(outcomes, answers, strict=True)}
    assert by_study[rejected.pk] is None and by_study[first.pk] is not None
    assert Result.objects.count() == 1 and again[0] is not None and again[0].pk == Result.objects.get().pk
    assert InferenceJob.objects.get(study=rejected).status == JobStatus.REJECTED
    # the files written for the results not kept are gone: only the first result's two remain
    kept = Result.objects.get()
    for study in (first, rejected):
        folder = Path(settings.MEDIA_ROOT) / "derived" / str(study.pk)[:2]
        names = {p.name for p in folder.glob(f"{study.pk}-*") if not p.name.endswith(UPLOAD_FILES)}
        assert names == (
            {Path(kept.heatmap.name or "").name, Path(kept.overlay.name or "").name} if study == first else set()
        )


def test_batch_size_one_is_the_same_pipeline_one_study_a_pass(alice: User, monkeypatch: Any, settings: Any) -> None:
    """The benchmark's per-image baseline is a setting of the one pipeline, not a second path: each pass of the
    model and of the drawing holds one image, and the task goes on to the next study while jobs are queued."""
    settings.INFERENCE_BATCH_SIZE = 1
    studies = [factories.study(alice) for _ in range(3)]
    recorder = _Recorder()
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    assert tasks.run_inference(studies[1].job.pk) == "done"
    assert [InferenceJob.objects.get(study=s).status for s in studies] == [JobStatus.DONE] * 3
    assert sorted(recorder.events) == ["draw 1"] * 3 + ["judge 1"] * 3


def test_batch_size_one_with_no_drain_judges_only_the_named_study(alice: User, monkeypatch: Any, settings: Any) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_DRAIN_SECONDS = 1, 0
    studies = [factories.study(alice) for _ in range(2)]
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    assert tasks.run_inference(studies[1].job.pk) == "done"
    assert [InferenceJob.objects.get(study=s).status for s in studies] == [JobStatus.QUEUED, JobStatus.DONE]


def test_a_message_names_several_jobs_and_takes_those_it_may_first(alice: User, bob: User) -> None:
    a = [_queued(alice) for _ in range(4)]
    other = _queued(bob)
    assert jobs.claim_queued([a[1]], "w|elsewhere|9") == [a[1]]  # held by a live worker on another machine
    got = [j.pk for j in batching.claim_batch([a[0], a[1], a[2]], "w|h|1", 4)]
    assert got == [a[0], a[2], a[3], other]  # its own that it may take, then the fair order


def test_results_that_cannot_be_recorded_leave_no_files(alice: User, monkeypatch: Any, settings: Any) -> None:
    study = factories.study(alice)
    held = batching.claim_batch([study.job.pk], "w|h|1", 8)

    def broken(*args: Any) -> set[int]:
        raise RuntimeError("database gone")

    monkeypatch.setattr(jobs, "finish_done_many", broken)
    with pytest.raises(RuntimeError):
        jobs.record_results([(j, factories.prediction()) for j in held])
    folder = Path(settings.MEDIA_ROOT) / "derived" / str(study.pk)[:2]
    assert sorted(p.name for p in folder.glob(f"{study.pk}-*")) == [f"{study.pk}-{n}" for n in UPLOAD_FILES]


def test_a_message_whose_jobs_earlier_batches_took_reads_them_once_and_still_takes_a_dead_holders(
    alice: User, django_assert_num_queries: Any
) -> None:
    import socket

    ids = [_queued(alice) for _ in range(8)]
    assert jobs.claim_queued(ids, "w|elsewhere|9") == ids  # held by a live worker on another machine
    for pk in ids[4:]:
        factories.finish(pk)
    with django_assert_num_queries(3):  # the claim's UPDATE and its read-back, then one read for all eight
        assert batching.claim_batch(ids, "w|h|1", 16) == []
    dead = f"w|{socket.gethostname()}|999999999"  # this machine, no such process
    InferenceJob.objects.filter(pk=ids[1]).update(worker=dead)
    assert [j.pk for j in batching.claim_batch(ids, "w|h|1", 16)] == [ids[1]]
    assert InferenceJob.objects.get(pk=ids[1]).worker == "w|h|1"


class _Recorder:
    """A predictor whose passes are recorded in order; draw waits for the next judging pass when told to."""

    def __init__(self, overlap: threading.Event | None = None) -> None:
        self.events: list[str] = []
        self.overlap = overlap

    def prepare_copies(self, copies: list[Any]) -> list[Any]:
        return [None] * len(copies)  # no copy serves: the originals are read

    def prepare_batch(self, datas: list[bytes], max_pixels: int) -> list[Any]:
        return datas

    def judge_prepared(self, datas: list[bytes], points: Any = None) -> list[Any]:
        self.events.append(f"judge {len(datas)}")
        if len(self.events) > 1 and self.overlap is not None:
            self.overlap.set()
        cam, display = np.zeros((7, 7)), np.zeros((64, 64), np.uint8)
        return [Judged("PNEUMONIA", 0.9, cam, display, 1.0, logit=2.0, threshold=0.7) for _ in datas]

    def draw(self, judged: list[Any]) -> list[Any]:
        if self.overlap is not None and not self.overlap.is_set():
            self.events.append("drawing waits" if self.overlap.wait(10) else "drawing waited in vain")
        self.events.append(f"draw {len(judged)}")
        assert all(isinstance(j, Judged) for j in judged)
        return [factories.prediction() for _ in judged]


def _second_pass_overruns(monkeypatch: Any) -> None:
    """The predictor's second judging pass runs into the task's soft time limit."""
    recorder = _Recorder()
    real_judge = recorder.judge_prepared

    def second_overruns(datas: list[bytes], points: Any = None) -> list[Any]:
        if recorder.events:
            raise SoftTimeLimitExceeded()
        return real_judge(datas)

    monkeypatch.setattr(recorder, "judge_prepared", second_overruns)
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)


def _five_queued(owner: User, priority: JobPriority = JobPriority.BULK) -> list[int]:
    return [_queued(owner, priority) for _ in range(5)]


def test_a_task_goes_on_with_the_next_batches_while_jobs_are_queued(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice)
    recorder = _Recorder()
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    assert tasks.run_inference(ids[0]) == "done"
    assert [e for e in recorder.events if e.startswith("judge")] == ["judge 2", "judge 2", "judge 1"]
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}
    assert Result.objects.count() == 5
    assert {tasks.run_inference(pk) for pk in ids} == {"skipped: not queued"}  # their messages are no-ops now


def test_with_no_drain_time_a_task_takes_one_batch(alice: User, monkeypatch: Any, settings: Any) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS, settings.INFERENCE_DRAIN_SECONDS = 2, 0, 0
    ids = _five_queued(alice)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    tasks.run_inference(ids[0])
    statuses = [InferenceJob.objects.get(pk=pk).status for pk in ids]
    assert statuses == [JobStatus.DONE] * 2 + [JobStatus.QUEUED] * 3


def test_the_next_batch_is_judged_while_the_one_before_is_drawn(alice: User, monkeypatch: Any, settings: Any) -> None:
    """The first batch's drawing waits until the second batch is being judged: done serially, it would wait in
    vain (and the test would take 10 s)."""
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice)
    recorder = _Recorder(threading.Event())
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    tasks.run_inference(ids[0])
    assert "drawing waited in vain" not in recorder.events
    assert recorder.events.index("judge 2", 1) < recorder.events.index("draw 2")
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}


def test_a_batch_someone_waits_for_is_recorded_before_the_next_is_judged(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    """Interactive studies: each batch's results are in the database before the next batch is judged (a bulk
    batch's wait until after it: the test above)."""
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice, JobPriority.INTERACTIVE)
    recorder = _Recorder()
    done_when_judging: list[int] = []
    real_judge = recorder.judge_prepared

    def judge(datas: list[bytes], points: Any = None) -> list[Any]:
        done_when_judging.append(InferenceJob.objects.filter(status=JobStatus.DONE).count())
        return real_judge(datas)

    monkeypatch.setattr(recorder, "judge_prepared", judge)
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    tasks.run_inference(ids[0])
    assert done_when_judging == [0, 2, 4]
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}


def test_a_batch_someone_waits_for_is_drawn_before_the_next_batch_is_read(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    """The helper thread does one thing at a time: the interactive batch's drawing goes ahead of reading the bulk
    batch after it, which is read while the interactive one is recorded."""
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    bulk = [_queued(alice) for _ in range(2)]
    waited = [_queued(alice, JobPriority.INTERACTIVE) for _ in range(2)]
    recorder = _Recorder()
    real_prepare = recorder.prepare_batch

    def prepare(datas: list[bytes], max_pixels: int) -> list[Any]:
        recorder.events.append(f"prepare {len(datas)}")
        return real_prepare(datas, max_pixels)

    monkeypatch.setattr(recorder, "prepare_batch", prepare)
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    tasks.run_inference(waited[0])
    assert recorder.events == ["prepare 2", "judge 2", "draw 2", "prepare 2", "judge 2", "draw 2"]
    assert set(InferenceJob.objects.filter(pk__in=bulk + waited).values_list("status", flat=True)) == {JobStatus.DONE}


def test_a_batch_whose_files_cannot_be_stored_fails_alone(alice: User, monkeypatch: Any, settings: Any) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    real, calls = result_files.store_results, []

    def second_fails(outcomes: Any) -> Any:
        calls.append(len(outcomes))
        if len(calls) == 2:
            raise OSError("No space left on device")
        return real(outcomes)

    monkeypatch.setattr(result_files, "store_results", second_fails)
    tasks.run_inference(ids[0])
    statuses = [InferenceJob.objects.get(pk=pk).status for pk in ids]
    assert statuses == [JobStatus.DONE] * 2 + [JobStatus.FAILED] * 2 + [JobStatus.DONE]
    assert "No space left on device" in InferenceJob.objects.get(pk=ids[2]).reason
    assert Result.objects.count() == 3


def test_the_soft_time_limit_fails_the_batch_being_judged_keeps_the_drawn_one_and_gives_back_the_next(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice)
    _second_pass_overruns(monkeypatch)
    tasks.run_inference(ids[0])
    statuses = [InferenceJob.objects.get(pk=pk).status for pk in ids]
    assert statuses == [JobStatus.DONE] * 2 + [JobStatus.FAILED] * 2 + [JobStatus.QUEUED]
    assert "longer than" in InferenceJob.objects.get(pk=ids[2]).reason
    given_back = InferenceJob.objects.get(pk=ids[4])
    assert (given_back.status, given_back.attempts) == (JobStatus.QUEUED, 0)  # claimed ahead, never started


def test_when_claiming_a_further_batch_fails_the_batch_in_hand_still_ends(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())

    def gone(worker: str, size: int) -> list[Any]:
        raise DatabaseError("the database went away")

    monkeypatch.setattr(batching, "claim_next", gone)
    assert tasks.run_inference(ids[0]) == "done"
    statuses = [InferenceJob.objects.get(pk=pk).status for pk in ids]
    assert statuses == [JobStatus.DONE] * 2 + [JobStatus.QUEUED] * 3  # the others wait for their own messages


def test_an_interrupted_loop_fails_what_it_holds_and_leaves_the_rest_queued(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    """The soft time limit can strike outside the guarded steps: the batch in hand ends FAILED, not RUNNING."""
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    ids = _five_queued(alice)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())

    def strikes(self: Any) -> bool:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(pipeline.BatchRun, "may_go_on", strikes)
    with pytest.raises(SoftTimeLimitExceeded):
        tasks.run_inference(ids[0])
    statuses = [InferenceJob.objects.get(pk=pk).status for pk in ids]
    assert statuses == [JobStatus.FAILED] * 2 + [JobStatus.QUEUED] * 3
    assert "longer than" in InferenceJob.objects.get(pk=ids[0]).reason


def test_files_drawn_for_a_batch_that_cannot_be_recorded_are_removed(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 2, 0
    studies = [factories.study(alice) for _ in range(2)]
    recorder = _Recorder()
    real_judge = recorder.judge_prepared
    monkeypatch.setattr(
        recorder, "judge_prepared", lambda ds, points=None: [real_judge(ds)[0], ImageRejected("not a chest")]
    )
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)

    def locked(job_id: int, reason: str) -> bool:
        raise DatabaseError("database is locked")

    monkeypatch.setattr(jobs, "reject_job", locked)
    tasks.run_inference(studies[0].job.pk)
    assert [InferenceJob.objects.get(study=s).status for s in studies] == [JobStatus.FAILED] * 2
    drawn = Path(settings.MEDIA_ROOT) / "derived" / str(studies[0].pk)[:2]
    left = sorted(p.name.removeprefix(f"{studies[0].pk}-") for p in drawn.glob(f"{studies[0].pk}-*"))
    assert left == list(UPLOAD_FILES)


def _real_batch(alice: User, settings: Any, *which: tuple[str, int]) -> tuple[list[bytes], list[Study]]:
    """Training radiographs (label, index) uploaded as one batch for the real model, batches of 8."""
    need_training_images()
    settings.INFERENCE_BATCH_SIZE = 8
    radiographs = [images.real_radiograph(label, i) for label, i in which]
    _, submission = intake.submit_batch(alice, [upload_file(f"{i}.jpeg", d) for i, d in enumerate(radiographs)], None)
    return radiographs, list(submission.studies)


def test_a_study_is_judged_from_its_working_copy_and_from_its_original_where_the_copy_cannot_serve(
    alice: User, settings: Any
) -> None:
    """Decode once: the worker judges from what the web server made at upload, so an original spoilt after its
    upload does not matter, and the call is the original's. A copy that cannot be read, or that an earlier version
    of the preprocessing made (here: a valid copy of another radiograph, under the old name), is not used: the
    original is decoded."""
    radiographs, studies = _real_batch(alice, settings, ("PNEUMONIA", 0), ("NORMAL", 7), ("NORMAL", 6))
    from_copy, unreadable, stale = studies
    assert str(from_copy.model_copy.name).endswith(f"-{working.FILE_NAME}") and from_copy.chroma == 0.0
    storage = from_copy.image.storage
    for name, spoilt in ((from_copy.image.name, b"spoilt"), (unreadable.model_copy.name, b"P5\n2 2\n255\n")):
        storage.delete(str(name))
        storage.save(str(name), ContentFile(spoilt))
    old_name = storage.save(f"derived/old-{stale.pk}-model-input.pgm", ContentFile(from_copy.model_copy.read()))
    Study.objects.filter(pk=stale.pk).update(model_copy=old_name)
    tasks.run_inference(from_copy.job.pk)
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}
    for study, data in zip(studies, radiographs, strict=True):
        expected, result = predictor.get_predictor().predict(data), Result.objects.get(study=study)
        assert result.label == expected.label and result.probability == pytest.approx(expected.probability, abs=1e-4)


def test_a_normal_calls_overlay_is_its_preview_and_a_preview_cut_short_is_not_used(alice: User, settings: Any) -> None:
    """The preview is decoded only where a map is drawn on it, and a NORMAL call's overlay is the preview as stored.
    A preview cut short in storage is not used, whatever the call: its original is decoded, and the overlay drawn."""
    radiographs, studies = _real_batch(alice, settings, ("NORMAL", 7), ("NORMAL", 6), ("PNEUMONIA", 0))
    for study in studies[1:]:
        storage, name, jpeg = study.preview.storage, str(study.preview.name), study.preview.read()
        storage.delete(name)
        storage.save(name, ContentFile(jpeg[: len(jpeg) // 2]))
    tasks.run_inference(studies[0].job.pk)
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}
    results = [Result.objects.get(study=s) for s in studies]
    assert [r.label for r in results] == ["NORMAL", "NORMAL", "PNEUMONIA"]
    assert results[0].overlay.read() == Study.objects.get(pk=studies[0].pk).preview.read()
    for result, data in zip(results[1:], radiographs[1:], strict=True):  # drawn from the original, as predict does
        assert result.overlay.read() == predictor.get_predictor().predict(data).overlay_jpeg


def test_reading_and_preparing_a_batch_never_touches_the_database(
    alice: User, monkeypatch: Any, django_assert_num_queries: Any
) -> None:
    """It runs on the helper thread, beside the task's own connection: copies and originals alike are read from
    what the claim loaded with the jobs."""
    studies = [factories.study(alice) for _ in range(3)]
    Study.objects.filter(pk=studies[0].pk).update(model_copy="", chroma=None)  # stored before there were copies
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    held = batching.claim_batch([studies[0].job.pk], "w|h|1", 8)
    with django_assert_num_queries(0):
        prepared = pipeline_steps.read_and_prepare(held)
    assert [type(outcome) for _, outcome in prepared] == [bytes] * 3  # _Recorder takes no copy: all originals


def test_a_pass_over_the_copies_that_fails_falls_back_to_the_originals(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    settings.INFERENCE_BATCH_SIZE = 8
    recorder = _Recorder()

    def broken(copies: list[Any]) -> list[Any]:
        raise RuntimeError("the copies could not be prepared")

    originals: list[bytes] = []

    def prepare_batch(datas: list[bytes], max_pixels: int) -> list[Any]:
        originals.extend(datas)
        return datas

    monkeypatch.setattr(recorder, "prepare_copies", broken)
    monkeypatch.setattr(recorder, "prepare_batch", prepare_batch)
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    studies = [factories.study(alice) for _ in range(2)]
    assert tasks.run_inference(studies[0].job.pk) == "done"
    assert sorted(originals) == sorted(s.image.read() for s in studies)  # each decoded from its original instead
    assert [e for e in recorder.events if e.startswith("judge")] == ["judge 2"]
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}


def test_a_batchs_files_are_read_and_written_storage_threads_at_a_time(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    """Object storage answers each call in tens of milliseconds, so a batch's files are read and written side by
    side (STORAGE_THREADS). Here every storage call waits at a barrier for three others: one at a time, none would
    get through it, and the batch would fail."""
    from django.core.files.storage import FileSystemStorage

    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS, settings.STORAGE_THREADS = 4, 0, 4
    ids = [factories.study(alice).job.pk for _ in range(4)]
    barrier = threading.Barrier(4, timeout=5)
    calls: list[str] = []
    for name in ("_open", "_save"):
        real = getattr(FileSystemStorage, name)

        def together(self: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
            barrier.wait()
            calls.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(FileSystemStorage, name, together)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())  # it takes no copy: the originals are read
    assert tasks.run_inference(ids[0]) == "done"
    assert set(InferenceJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}
    assert calls.count("_open") == 4 * 3 and calls.count("_save") == 4 * 2  # copy + preview + original; 2 results


def test_a_study_whose_files_cannot_be_written_or_read_fails_alone(
    alice: User, monkeypatch: Any, settings: Any
) -> None:
    """One study's overlay cannot be written, another's original cannot be read with an error that is not an
    OSError (object storage raises its own): each fails with its reason, the rest of the batch is done."""
    from django.core.files.storage import FileSystemStorage

    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS, settings.STORAGE_THREADS = 4, 0, 4
    studies = [factories.study(alice) for _ in range(4)]
    unreadable, unwritable = studies[1], studies[2]
    save, real_open = FileSystemStorage.save, FileSystemStorage.open

    def save_fails_for_one(self: Any, name: Any, content: Any, max_length: Any = None) -> Any:
        if str(unwritable.pk) in str(name) and "overlay-" in str(name):
            raise OSError(28, "No space left on device")
        return save(self, name, content, max_length)

    def open_fails_for_one(self: Any, name: str, mode: str = "rb") -> Any:
        if str(unreadable.pk) in name:
            raise ValueError("the object store refused the request")
        return real_open(self, name, mode)

    monkeypatch.setattr(FileSystemStorage, "save", save_fails_for_one)
    monkeypatch.setattr(FileSystemStorage, "open", open_fails_for_one)
    monkeypatch.setattr(predictor, "get_predictor", lambda: _Recorder())
    tasks.run_inference(studies[0].job.pk)
    job = {s.pk: InferenceJob.objects.get(study=s) for s in studies}
    assert [job[s.pk].status for s in studies] == [JobStatus.DONE, JobStatus.FAILED, JobStatus.FAILED, JobStatus.DONE]
    assert "could not be read: ValueError: the object store refused" in job[unreadable.pk].reason
    assert "No space left on device" in job[unwritable.pk].reason
    assert Result.objects.count() == 2


@pytest.mark.parametrize("stop", [SystemExit(-241), KeyboardInterrupt()])
def test_a_stop_mid_batch_hands_the_jobs_back_instead_of_failing_them(
    alice: User, monkeypatch: Any, settings: Any, stop: BaseException
) -> None:
    """SIGTERM or SIGINT in the pool child (a deploy, a drain, Ctrl-C) raises in the task: its jobs go back to the
    queue with the claim not counted, and are sent again; tests/faults/test_stop.py does it with real processes."""
    settings.INFERENCE_BATCH_SIZE, settings.INFERENCE_BATCH_WAIT_MS = 4, 0
    ids = [_queued(alice) for _ in range(4)]
    recorder = _Recorder()

    def stopped(datas: list[bytes], points: Any = None) -> list[Any]:
        raise stop

    monkeypatch.setattr(recorder, "judge_prepared", stopped)
    monkeypatch.setattr(predictor, "get_predictor", lambda: recorder)
    sent: list[tuple[int, ...]] = []
    monkeypatch.setattr(dispatch, "send", lambda *ids, per_message=1: sent.append(ids))
    with pytest.raises(type(stop)):
        tasks.run_inference(ids[0])
    jobs_now = InferenceJob.objects.filter(pk__in=ids).order_by("pk")
    assert [(j.status, j.attempts) for j in jobs_now] == [(JobStatus.QUEUED, 0)] * 4
    assert sent == [tuple(ids)]
