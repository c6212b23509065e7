"""Test data made through the real code paths: members of a clinic, uploaded files, studies in a known state
(stored, audited and queued by the real intake; judged through the real job transitions, without a worker).

Imported by the tests that need them; conftest.py holds only fixtures.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from diagnosis import intake, jobs
from diagnosis.models import Clinic, InferenceJob, JobStatus, Membership, Role, Study
from diagnosis.study_details import StudyDetails
from diagnosis.validation import validate_upload
from tests import images
from worker.ml.prediction import Prediction


def make_member(username: str, clinic: Clinic, role: str = Role.CLINICIAN) -> User:
    """A user of `clinic` with `role`; the password is the username + "-pass-123"."""
    user = User.objects.create_user(username, password=f"{username}-pass-123")
    Membership.objects.create(user=user, clinic=clinic, role=role)
    return user


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def upload_file(
    name: str = "chest.png", data: bytes | None = None, content_type: str = "image/png"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, images.png() if data is None else data, content_type=content_type)


def zip_of(entries: dict[str, bytes], name: str = "studies.zip") -> io.BytesIO:
    """A zip archive in memory holding these entries (name -> bytes), named like an uploaded file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for entry, data in entries.items():
            zf.writestr(entry, data)
    buf.seek(0)
    buf.name = name
    return buf


def prediction(label: str = "PNEUMONIA", probability: float = 0.9, **overrides: Any) -> Prediction:
    """What the ML package would return, with small real PNGs for the heatmap and overlay."""
    fields: dict[str, Any] = {
        "threshold": 0.824,
        "model_version": "test-model",
        "heatmap_png": images.png(32, 32),
        "overlay_jpeg": images.jpeg(32, 32),
        "inference_ms": 12,
        "logit": 2.3 * math.log(probability / (1 - probability)) if 0 < probability < 1 else 0.0,
        **overrides,
    }
    return Prediction(label=label, probability=probability, **fields)


def finish(job_id: int) -> None:
    """The job DONE (without a result), as if a worker had recorded it."""
    InferenceJob.objects.filter(pk=job_id).update(status=JobStatus.DONE)


def study(owner: User, name: str = "chest.png", **details: Any) -> Study:
    upload = validate_upload(name, None, io.BytesIO(images.png()))
    return intake.create_study(owner, upload, details=StudyDetails(**details))


def judge(s: Study, label: str = "PNEUMONIA", probability: float = 0.9, **overrides: Any) -> Study:
    """Run the study's job to DONE with this prediction, as the worker would."""
    job = jobs.claim_job(s.job.pk)
    assert job is not None
    jobs.record_results([(job, prediction(label, probability, **overrides))])[0]
    return Study.objects.select_related("job", "result").get(pk=s.pk)


def judged_study(owner: User, label: str = "PNEUMONIA", probability: float = 0.9, **details: Any) -> Study:
    """A study the model has judged (job done, result with heatmap and overlay files)."""
    return judge(study(owner, **details), label, probability)


def chunked_post(path: str, body: bytes, **environ: Any) -> tuple[str, bytes, io.BytesIO]:
    """POST through the whole WSGI application as gunicorn hands on a body sent with Transfer-Encoding: chunked:
    decoded, no Content-Length, wsgi.input_terminated. Returns (status line, response body, the input stream: how
    far it was read)."""
    from wsgiref.util import setup_testing_defaults

    from xrayweb.wsgi import application

    stream = io.BytesIO(body)
    env: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": stream,
        "wsgi.input_terminated": True,
        **environ,
    }
    setup_testing_defaults(env)
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], *exc: Any) -> Callable[[bytes], object]:
        status.append(line)
        return lambda data: None

    answer = b"".join(application(env, start_response))
    return status[0], answer, stream


def site_studies(
    owner: User,
    logits: Any,
    labels: Any,
    *,
    acceptance: bool = True,
    sampled: float | None = None,
    model_version: str = "",
) -> list[Study]:
    """Judged studies of the owner's clinic without files, fast (bulk rows): each with the given logit and true
    label (1 PNEUMONIA). acceptance: labelled by an admin (reference_label); else clinical, and with `sampled`
    (a sampling probability) in the verification sample with a reviewer's final label. The results are the model
    card's calls (its temperature and threshold), for the card's model version unless another is given."""
    from diagnosis.models import Label, Membership, Result, Review
    from diagnosis.site import card

    spec = card.card()
    clinic = Membership.objects.get(user=owner).clinic
    now = timezone.now()
    studies, results, done = [], [], []
    for k, (logit, truth) in enumerate(zip(logits, labels, strict=True)):
        name = Label.PNEUMONIA if truth else Label.NORMAL
        s = Study(
            clinic=clinic, owner=owner, image=f"studies/x/{k}.png", preview="p.jpg", thumbnail="t.jpg",
            original_name=f"site-{k}.png", content_type="image/png", size_bytes=1, sha256="0" * 64,
            width=224, height=224, acceptance=acceptance, reference_label=name if acceptance else "",
        )  # fmt: skip
        p = spec.operating_point().probability(float(logit))
        studies.append(s)
        results.append(
            Result(
                study=s, label=Label.PNEUMONIA if p >= spec.threshold else Label.NORMAL, probability=p,
                threshold=spec.threshold, model_version=model_version or spec.version, heatmap="h.png",
                overlay="o.jpg", inference_ms=1, logit=float(logit), verification_sample=sampled is not None,
                sampling_probability=sampled,
            )
        )  # fmt: skip
        done.append(InferenceJob(study=s, status=JobStatus.DONE, enqueued_at=now, finished_at=now))
    Study.objects.bulk_create(studies)
    Result.objects.bulk_create(results)
    InferenceJob.objects.bulk_create(done)
    if not acceptance and sampled is not None:
        Review.objects.bulk_create(
            [
                Review(study=s, reviewer=owner, agrees=r.label == (Label.PNEUMONIA if t else Label.NORMAL),
                       final_label=Label.PNEUMONIA if t else Label.NORMAL)
                for s, r, t in zip(studies, results, labels, strict=True)
            ]
        )  # fmt: skip
    return studies


def separable_site(owner: User, per_class: int = 60, **options: Any) -> list[Study]:
    """A site whose healthy children sit near shipped probability 0.6 (logit 1) and pneumonia at logit 6."""
    logits = [1.0 + 0.02 * k for k in range(per_class)] + [6.0 + 0.02 * k for k in range(per_class)]
    return site_studies(owner, logits, [0] * per_class + [1] * per_class, **options)
