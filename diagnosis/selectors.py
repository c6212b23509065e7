"""All reads, always scoped to the requesting user's clinic: an id from another clinic is simply not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Case, Count, F, Q, QuerySet, When
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from diagnosis.access import AnyUser, membership_of
from diagnosis.models import FINAL_STATUSES, AuditEvent, Batch, JobStatus, Label, Membership, Role, Study


def studies_for(user: AnyUser) -> QuerySet[Study]:
    """Every study of the user's clinic (any role may open a colleague's study from the worklist)."""
    membership = membership_of(user)
    if membership is None:
        return Study.objects.none()
    studies = Study.objects.filter(clinic_id=membership.clinic_id)
    return studies.select_related("job", "result__operating_point", "review__reviewer", "owner")


def get_study(user: AnyUser, study_id: uuid.UUID | str) -> Study:
    """A study of the user's clinic, or Http404 (also for another clinic's id or a malformed id)."""
    try:
        return studies_for(user).select_related("clinic").get(pk=study_id)
    except (Study.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such study.") from exc


def history(user: AnyUser) -> QuerySet[Study]:
    """The user's own studies, newest first (filters.HistoryFilter narrows them)."""
    if not user.is_authenticated:
        return Study.objects.none()
    return studies_for(user).filter(owner_id=user.pk).order_by("-created")


def worklist(user: AnyUser) -> QuerySet[Study]:
    """The clinic's judged clinical studies (not the acceptance set): the verification sample still to review
    first, then the likeliest pneumonia first (filters narrow it further)."""
    to_verify = Case(When(result__verification_sample=True, review__isnull=True, then=0), default=1)
    return (
        studies_for(user)
        .filter(result__isnull=False, acceptance=False)
        .order_by(to_verify, F("result__probability").desc(nulls_last=True), "-created")
    )


def priors(user: AnyUser, study: Study) -> QuerySet[Study]:
    """The same patient's other studies in the clinic (by patient reference), newest first; none without one."""
    if not study.patient_ref:
        return Study.objects.none()
    return studies_for(user).filter(patient_ref=study.patient_ref).exclude(pk=study.pk).order_by("-created")


def neighbours(ordered_ids: list[uuid.UUID], current: uuid.UUID) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The previous and next id around `current` in a list's order; a study no longer in the list (just
    reviewed, say) has no previous one and the list's first as the next one."""
    if current not in ordered_ids:
        return None, next(iter(ordered_ids), None)
    i = ordered_ids.index(current)
    return (ordered_ids[i - 1] if i > 0 else None), (ordered_ids[i + 1] if i + 1 < len(ordered_ids) else None)


def get_batch(user: AnyUser, batch_id: uuid.UUID | str) -> Batch:
    """A batch is its submitter's: bulk clients poll their own submissions."""
    if not user.is_authenticated:
        raise Http404("No such batch.")
    try:
        return Batch.objects.get(pk=batch_id, owner_id=user.pk)
    except (Batch.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such batch.") from exc


def batch_progress(batch: Batch) -> dict[str, object]:
    """Counts of the batch's studies by job status, the finished fraction and the study ids."""
    rows = batch.studies.values_list("id", "job__status")
    counts = {status: 0 for status in JobStatus.values}
    for _, status in rows:
        counts[status] += 1
    total = len(rows)
    final = sum(counts[s] for s in FINAL_STATUSES)
    return {
        "total": total,
        "counts": counts,
        "progress": final / total if total else 1.0,
        "studies": [str(pk) for pk, _ in rows],
    }


@dataclass(frozen=True)
class DayCount:
    day: date
    total: int
    normal: int
    pneumonia: int
    rejected: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Agreement:
    """The model's labels against reviewers' final labels (the reviewers are the reference)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.n if self.n else None

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None


# Below this many reviewed studies, the dashboard says its accuracy figures rest on too few reviews to trust.
FEW_REVIEWS = 20


@dataclass(frozen=True)
class Dashboard:
    """studies = judged + rejected + failed + in progress (queued or running)."""

    days: list[DayCount]
    studies: int
    judged: int
    pneumonia: int
    reviewed: int
    agreement: Agreement
    rejected: int = 0
    failed: int = 0

    @property
    def in_progress(self) -> int:
        return self.studies - self.judged - self.rejected - self.failed

    @property
    def positive_rate(self) -> float | None:
        return self.pneumonia / self.judged if self.judged else None

    @property
    def review_coverage(self) -> float | None:
        return self.reviewed / self.judged if self.judged else None

    @property
    def few_reviews(self) -> bool:
        return self.agreement.n < FEW_REVIEWS

    @property
    def few_reviews_threshold(self) -> int:
        return FEW_REVIEWS


REJECTED, FAILED = Q(job__status=JobStatus.REJECTED), Q(job__status=JobStatus.FAILED)


def dashboard(user: AnyUser, days: int = 30) -> Dashboard:
    """The clinic's figures: studies per day over the last `days` days, and totals over all time."""
    qs = studies_for(user).filter(acceptance=False).order_by()
    model_p, final_p = Q(result__label=Label.PNEUMONIA), Q(review__final_label=Label.PNEUMONIA)
    model_n, final_n = Q(result__label=Label.NORMAL), Q(review__final_label=Label.NORMAL)
    totals = qs.aggregate(
        studies=Count("pk"),
        judged=Count("pk", filter=Q(result__isnull=False)),
        rejected=Count("pk", filter=REJECTED),
        failed=Count("pk", filter=FAILED),
        pneumonia=Count("pk", filter=model_p),
        reviewed=Count("pk", filter=Q(result__isnull=False, review__isnull=False)),
        tp=Count("pk", filter=model_p & final_p),
        fp=Count("pk", filter=model_p & final_n),
        tn=Count("pk", filter=model_n & final_n),
        fn=Count("pk", filter=model_n & final_p),
    )
    return Dashboard(
        days=_per_day(qs, days),
        studies=totals["studies"],
        judged=totals["judged"],
        pneumonia=totals["pneumonia"],
        reviewed=totals["reviewed"],
        agreement=Agreement(tp=totals["tp"], fp=totals["fp"], tn=totals["tn"], fn=totals["fn"]),
        rejected=totals["rejected"],
        failed=totals["failed"],
    )


def _per_day(qs: QuerySet[Study], days: int) -> list[DayCount]:
    """One entry per calendar day in the active time zone (the clinic's: diagnosis.locale_middleware activates it
    for its members), days without studies included as zeros: a day starts at the clinic's midnight."""
    zone = timezone.get_current_timezone()
    today = timezone.localdate(timezone=zone)
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, time.min), zone)
    rows = (
        qs.filter(created__gte=start)
        .annotate(day=TruncDate("created", tzinfo=zone))
        .values("day")
        .annotate(
            total=Count("pk"),
            normal=Count("pk", filter=Q(result__label=Label.NORMAL)),
            pneumonia=Count("pk", filter=Q(result__label=Label.PNEUMONIA)),
            rejected=Count("pk", filter=REJECTED),
            failed=Count("pk", filter=FAILED),
        )
    )
    by_day = {r["day"]: {k: v for k, v in r.items() if k != "day"} for r in rows}
    zero = {"total": 0, "normal": 0, "pneumonia": 0, "rejected": 0, "failed": 0}
    return [DayCount(day=day, **by_day.get(day, zero)) for day in (first + timedelta(days=i) for i in range(days))]


def _admin_membership(user: AnyUser) -> Membership | None:
    membership = membership_of(user)
    return membership if membership is not None and membership.allows(Role.ADMIN) else None


def audit_events(user: AnyUser) -> QuerySet[AuditEvent]:
    """The clinic's audit trail, newest first; empty for anyone but a clinic admin."""
    membership = _admin_membership(user)
    if membership is None:
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(clinic_id=membership.clinic_id).order_by("-at", "-id")


def members(user: AnyUser) -> QuerySet[Membership]:
    """The clinic's people; empty for anyone but a clinic admin."""
    membership = _admin_membership(user)
    if membership is None:
        return Membership.objects.none()
    return Membership.objects.filter(clinic_id=membership.clinic_id).select_related("user").order_by("user__username")


def get_member(user: AnyUser, user_id: int | str) -> Membership:
    try:
        return members(user).get(user_id=user_id)
    except (Membership.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such user in your clinic.") from exc
