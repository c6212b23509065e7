"""Study intake: validated uploads become studies (stored, audited, queued), one file or one zip entry at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from diagnosis import archives, audit, dicom_instances, dispatch
from diagnosis.access import require_membership
from diagnosis.audit import NO_ORIGIN, Origin
from diagnosis.models import (
    STUDY_FILE_FIELDS,
    AuditAction,
    Batch,
    Clinic,
    DicomInstance,
    DicomPeer,
    InferenceJob,
    JobPriority,
    Study,
)
from diagnosis.site import acceptance
from diagnosis.study_details import NO_DETAILS, StudyDetails, with_header
from diagnosis.validation import UploadError, ValidatedUpload, validate_upload
from worker.ml import working
from worker.ml.dicom import DicomHeader

logger = logging.getLogger(__name__)


@dataclass
class Submission:
    studies: list[Study] = field(default_factory=list)
    errors: list[UploadError] = field(default_factory=list)

    def refuse(self, file_name: str, message: str) -> None:
        self.errors.append(UploadError(file_name, message))


# Stored uploads are recorded this many at a time, in one transaction: fewer commits and database locks than one
# a study, while the worker can start on the first ones before a big request ends.
RECORD_EVERY = 16


Stored = dict[tuple[str, str], list[Study]]  # (file name, sha256) -> a batch's studies of that file, in order
Progress = Callable[[], None]


@dataclass(frozen=True)
class StoredUpload:
    """A validated upload whose files are written; its rows are not (record() writes many in one transaction)."""

    study: Study
    header: DicomHeader | None


def create_study(
    owner: User,
    upload: ValidatedUpload,
    *,
    batch: Batch | None = None,
    details: StudyDetails = NO_DETAILS,
    origin: Origin = NO_ORIGIN,
    peer: DicomPeer | None = None,
    priority: JobPriority = JobPriority.INTERACTIVE,
) -> Study:
    """Store the study in the owner's clinic, audit the upload and queue its job (at `priority`), all or nothing."""
    if details.reference_label:
        acceptance.require_labeller(owner)
    clinic = require_membership(owner).clinic
    earlier = dicom_instances.held_instance(clinic, upload.dicom)
    if earlier is not None:  # a PACS's retry, or a C-STORE after a STOW: the study that has it, nothing twice
        return earlier
    stored = store(owner, upload, batch, details)
    try:
        with transaction.atomic():
            if upload.dicom is not None:  # the same instance sent twice at once: the second waits, then finds it
                Clinic.objects.select_for_update().get(pk=clinic.pk)
                earlier = dicom_instances.held_instance(clinic, upload.dicom)
            if earlier is None:
                return record(owner, [stored], origin, peer=peer, priority=priority)[0]
    except BaseException:  # not recorded: its files go too
        _delete_files(stored)
        raise
    _delete_files(stored)  # another send of it was recorded while this one was stored
    return earlier


def store(owner: User, upload: ValidatedUpload, batch: Batch | None, details: StudyDetails) -> StoredUpload:
    """Write the upload's files (the original, the preview, the thumbnail, the model's copy) for a study of the
    owner's clinic."""
    details = with_header(details, upload.dicom)
    study = Study(
        clinic=require_membership(owner).clinic,
        owner=owner,
        batch=batch,
        patient_ref=details.patient_ref,
        age_years=details.age_years,
        sex=details.sex,
        projection=details.projection,
        clinical_note=details.clinical_note,
        original_name=upload.name,
        content_type=upload.content_type,
        size_bytes=len(upload.data),
        sha256=upload.sha256,
        width=upload.width,
        height=upload.height,
        chroma=upload.working_copy.chroma,
        acceptance=bool(details.reference_label),
        reference_label=details.reference_label,
    )
    files = (
        (study.image, f"original{upload.extension}", upload.data),
        (study.preview, "preview.jpg", upload.working_copy.display_jpeg),
        (study.thumbnail, "thumbnail.jpg", upload.thumbnail_jpeg),
        (study.model_copy, working.FILE_NAME, upload.working_copy.model_pgm),
    )
    try:
        for file, name, content in files:
            file.save(name, ContentFile(content), save=False)
    except BaseException:  # storage failed part way: what this study wrote goes too
        _delete_files(StoredUpload(study, upload.dicom))
        raise
    return StoredUpload(study, upload.dicom)


def _delete_files(stored: StoredUpload) -> None:
    for name in STUDY_FILE_FIELDS:
        file = getattr(stored.study, name)
        if file:
            file.delete(save=False)


def record(
    owner: User,
    stored: list[StoredUpload],
    origin: Origin = NO_ORIGIN,
    peer: DicomPeer | None = None,
    priority: JobPriority = JobPriority.INTERACTIVE,
) -> list[Study]:
    """The rows of stored uploads, all or nothing: the studies, their DICOM identifiers, their jobs (sent to the
    queue once this commits) and the audit trail's upload events."""
    studies = [s.study for s in stored]
    now = timezone.now()
    with transaction.atomic():
        Study.objects.bulk_create(studies)
        rows = [dicom_instances.instance_row(s.study, s.header, peer) for s in stored if s.header is not None]
        DicomInstance.objects.bulk_create(rows)
        queued = InferenceJob.objects.bulk_create(
            [InferenceJob(study=study, enqueued_at=now, priority=priority) for study in studies]
        )
        events = [(s.study, _upload_detail(s)) for s in stored]
        audit.record_many(
            owner, AuditAction.UPLOAD, events, origin=origin, clinic=studies[0].clinic if studies else None
        )
        dispatch.enqueue_many([job.pk for job in queued])
    return studies


def _upload_detail(stored: StoredUpload) -> dict[str, Any]:
    """The upload event's detail: the file, its batch, and the DICOM header's values left out (worker.ml.dicom)."""
    study = stored.study
    detail: dict[str, Any] = {
        "file_name": study.original_name,
        "batch": str(study.batch_id) if study.batch_id else None,
    }
    if stored.header is not None and stored.header.dropped:
        detail["dicom_dropped"] = list(stored.header.dropped)
    return detail


def submit_files(
    owner: User,
    files: Iterable[UploadedFile],
    *,
    batch: Batch | None = None,
    details: StudyDetails = NO_DETAILS,
    origin: Origin = NO_ORIGIN,
    priority: JobPriority = JobPriority.INTERACTIVE,
    stored: Stored | None = None,
    progress: Progress | None = None,
) -> Submission:
    """Validate and store each file on its own: one bad file is reported and does not stop the others."""
    if details.reference_label:
        acceptance.require_labeller(owner)
    submission = Submission()
    items = (archives.Entry(f.name or "unnamed", f.size or 0, f) for f in files)
    _store(
        owner,
        items,
        submission,
        batch=batch,
        details=details,
        origin=origin,
        priority=priority,
        stored=stored,
        progress=progress,
    )
    return submission


def new_batch(owner: User) -> Batch:
    """An empty batch of the owner's, for submit_batch (or the DICOMweb store) to fill."""
    require_membership(owner)
    return Batch.objects.create(owner=owner)


def priority_of(files: int) -> JobPriority:
    """One file sent alone is someone waiting for that study: it goes ahead of bulk work."""
    return JobPriority.INTERACTIVE if files == 1 else JobPriority.BULK


def submit_batch(
    owner: User,
    files: list[UploadedFile],
    archive: UploadedFile | None,
    *,
    details: StudyDetails = NO_DETAILS,
    origin: Origin = NO_ORIGIN,
    batch: Batch | None = None,
    progress: Progress | None = None,
) -> tuple[Batch, Submission]:
    """A bulk submission: many files, or the entries of one zip archive, as one batch (a new one, or `batch`). One
    file alone (no archive) goes ahead of bulk work (priority_of).

    A batch that already holds studies is one a request cut off part way began (the API's Idempotency-Key): a file
    it already stored, by name and content, is answered with that study, not stored again. progress() is called
    before each file (the API renews its Idempotency-Key's lease there)."""
    batch = batch or new_batch(owner)
    stored = _stored_in(batch)
    if archive is None:
        return batch, submit_files(
            owner,
            files,
            batch=batch,
            details=details,
            origin=origin,
            priority=priority_of(len(files)),
            stored=stored,
            progress=progress,
        )
    opts = {"batch": batch, "details": details, "origin": origin, "stored": stored, "progress": progress}
    return batch, _submit_archive(owner, archive, **opts)


def _submit_archive(owner: User, archive: UploadedFile, **opts: Any) -> Submission:
    """A zip's entries, one at a time; a labels.csv at its root makes them a clinic admin's acceptance set."""
    submission = Submission()
    try:
        archives.check_declared(archive, settings.MAX_ARCHIVE_FILES)  # before labels.csv is looked for
        labels = acceptance.read_labels(archive)
    except archives.BadArchive as exc:
        submission.refuse(archive.name or "archive", str(exc))
        return submission
    except acceptance.LabelsError as exc:
        submission.refuse(acceptance.LABELS_FILE, str(exc))
        return submission
    if labels is not None or opts["details"].reference_label:
        acceptance.require_labeller(owner)
    limits = (settings.MAX_UPLOAD_BYTES, settings.MAX_ARCHIVE_BYTES, submission.refuse, settings.MAX_ARCHIVE_FILES)
    try:
        entries = archives.entries(archive, *limits, skip=acceptance.LABELS_FILE)
        _store(owner, entries, submission, priority=JobPriority.BULK, labels=labels, **opts)
    except archives.BadArchive as exc:
        submission.refuse(archive.name or "archive", str(exc))
    if not submission.studies and not submission.errors:
        submission.refuse(archive.name or "archive", _("the archive holds no files."))
    return submission


def _labelled(details: StudyDetails, name: str, labels: Mapping[str, str] | None) -> StudyDetails | None:
    """The entry's details with its label from labels.csv (else the request's); None when labels.csv names none."""
    if labels is None:
        return details
    label = acceptance.label_of(name, labels) or details.reference_label
    return replace(details, reference_label=label) if label else None


def _stored_in(batch: Batch) -> Stored:
    stored: Stored = {}
    for study in Study.objects.filter(batch=batch).order_by("created", "pk"):
        stored.setdefault((study.original_name, study.sha256), []).append(study)
    return stored


def _store(
    owner: User,
    entries: Iterable[archives.Entry],
    submission: Submission,
    *,
    batch: Batch | None,
    details: StudyDetails,
    origin: Origin,
    priority: JobPriority = JobPriority.INTERACTIVE,
    stored: Stored | None = None,
    progress: Progress | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """One file in memory at a time, however many there are; a refused file is reported, not raised. The rows are
    recorded RECORD_EVERY studies at a time, in order. A file among `stored` is answered with its study. With
    `labels` (a zip's labels.csv), every file is an acceptance study with its label, and one without is refused."""
    pending: list[StoredUpload] = []
    try:
        for name, size, stream in entries:
            if progress is not None:
                progress()
            entry_details = _labelled(details, name, labels)
            if entry_details is None:
                submission.refuse(name, _("%(file)s gives no label for this file.") % {"file": acceptance.LABELS_FILE})
                continue
            try:
                upload = validate_upload(name, size, stream)
            except UploadError as exc:
                submission.errors.append(exc)
                continue
            except archives.ENTRY_ERRORS as exc:  # a broken zip entry fails while it is read: that entry only
                submission.refuse(name, archives.corrupt_entry(exc))
                continue
            if any(dicom_instances.same_instance(p.header, upload.dicom) for p in pending):  # sent twice in one request
                submission.studies += record(owner, pending, origin, priority=priority)
                pending = []
            earlier = (stored or {}).get((upload.name, upload.sha256))
            held = None if earlier else dicom_instances.held_instance(require_membership(owner).clinic, upload.dicom)
            if earlier or held:
                if pending:  # the answer keeps the files' order
                    submission.studies += record(owner, pending, origin, priority=priority)
                    pending = []
                submission.studies.append(earlier.pop(0) if earlier else cast(Study, held))
                continue
            pending.append(store(owner, upload, batch, entry_details))
            if len(pending) >= RECORD_EVERY:
                submission.studies += record(owner, pending, origin, priority=priority)
                pending = []
        if pending:
            submission.studies += record(owner, pending, origin, priority=priority)
            pending = []
    finally:  # storage or the database failed: the group not recorded leaves no files behind
        for unrecorded in pending:
            _delete_files(unrecorded)
