"""A clinic's operating point: the one in force, what its own evidence proposes, adopting and reverting.

A point is versioned and never rewritten: adopting makes a new version and retires the one before; reverting
retires the one in force and, where there was an earlier point for the same model version, reinstates it as a new
version. Every result records the point it was judged with (Result.operating_point; None: the model card's), so no
change rewrites a past result. A point belongs to the model version it was fitted on: with a new model, the clinic
is back on the card's point (not validated here) until it adopts one again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from diagnosis import audit
from diagnosis.access import AnyUser, require_membership
from diagnosis.audit import NO_ORIGIN, Origin
from diagnosis.models import AuditAction, Clinic, OperatingPoint, Result, Role, SiteSettings
from diagnosis.numbers import percent
from diagnosis.site import card as model_card
from diagnosis.site.ground_truth import ACCEPTANCE, VERIFICATION, GroundTruth, local_ground_truth
from diagnosis.site.wording import NOT_VALIDATED
from worker.ml import site

PROPOSAL_RULE = site.PROPOSAL_RULE
MIN_PER_CLASS = site.MIN_PER_CLASS


def operating_point_text(result: Result) -> str:
    """Which operating point a call was made at, in words (the study page, the report)."""
    point = result.operating_point if result.operating_point_id is not None else None
    if point is None:
        return gettext(NOT_VALIDATED)
    return gettext(
        "Judged at this site's own operating point (version %(version)s, adopted %(day)s from local labelled "
        "studies; target sensitivity %(target)s)."
    ) % {
        "version": point.version,
        "day": f"{timezone.localtime(point.adopted_at):%Y-%m-%d}",
        "target": percent(point.target_sensitivity),
    }


class NotEnoughEvidence(ValueError):
    """The clinic's ground truth cannot support adopting a point (too few studies of a class)."""


@dataclass(frozen=True)
class Standing:
    """Where a clinic stands: the point in force (None: the card's), a point a newer model made stale, the
    target, and what its own evidence proposes for it (None, with why_not, when nothing can be proposed)."""

    clinic: Clinic
    model_version: str
    in_force: OperatingPoint | None
    stale: OperatingPoint | None
    target_sensitivity: float
    truth: GroundTruth
    proposal: site.Proposal | None
    why_not: str

    @property
    def validated(self) -> bool:
        return self.in_force is not None

    @property
    def n_acceptance(self) -> int:
        return self.truth.count(ACCEPTANCE)

    @property
    def n_verification(self) -> int:
        return self.truth.count(VERIFICATION)


def latest(clinic_id: int) -> OperatingPoint | None:
    """The clinic's newest point not retired, whatever its model version."""
    return OperatingPoint.objects.filter(clinic_id=clinic_id, retired_at__isnull=True).order_by("-version").first()


def in_force(clinic_id: int, model_version: str) -> OperatingPoint | None:
    """The point results of `model_version` are judged with at this clinic; None: the card's."""
    row = latest(clinic_id)
    return row if row is not None and row.model_version == model_version else None


def points_for(clinic_ids: Iterable[int], model_version: str) -> dict[int, OperatingPoint]:
    """in_force for several clinics in one query (a worker's batch)."""
    rows = OperatingPoint.objects.filter(clinic_id__in=set(clinic_ids), retired_at__isnull=True).order_by("version")
    newest = {row.clinic_id: row for row in rows}  # the last of each clinic's is its newest
    return {cid: row for cid, row in newest.items() if row.model_version == model_version}


def history(clinic: Clinic, most: int = 20) -> list[OperatingPoint]:
    """The clinic's points, newest version first (the site page and the API list the same)."""
    return list(clinic.operating_points.select_related("adopted_by", "reinstates").order_by("-version")[:most])


def target_for(clinic: Clinic) -> float:
    """The clinic's chosen target sensitivity, else the model card's."""
    chosen = SiteSettings.objects.filter(clinic=clinic).values_list("target_sensitivity", flat=True).first()
    return float(chosen) if chosen is not None else model_card.card_target_sensitivity()


def standing(clinic: Clinic, target_sensitivity: float | None = None) -> Standing:
    version = model_card.model_version()
    target = target_sensitivity if target_sensitivity is not None else target_for(clinic)
    truth = local_ground_truth(clinic_id=clinic.pk, model_version=version)
    proposal, why_not = _propose(truth, target)
    current = latest(clinic.pk)
    stale = current if current is not None and current.model_version != version else None
    return Standing(
        clinic=clinic,
        model_version=version,
        in_force=None if stale else current,
        stale=stale,
        target_sensitivity=target,
        truth=truth,
        proposal=proposal,
        why_not=why_not,
    )


def _propose(truth: GroundTruth, target: float) -> tuple[site.Proposal | None, str]:
    if min(truth.n_positive, truth.n_negative) < 2:  # site.propose's refusal, said in the page's language
        return None, gettext(
            "Nothing to propose yet: a proposal needs at least 2 studies of each class (%(pneumonia)s pneumonia, "
            "%(normal)s normal)."
        ) % {"pneumonia": truth.n_positive, "normal": truth.n_negative}
    try:
        proposal = site.propose(truth.logits, truth.labels, target, weights=truth.weights if truth.weighted else None)
    except ValueError as exc:
        return None, gettext("Nothing to propose yet: %(why)s.") % {"why": exc}
    if not proposal.enough:
        why = gettext(
            "Not enough local evidence to adopt: %(pneumonia)s pneumonia and %(normal)s normal studies, at least "
            "%(least)s of each are needed."
        ) % {"pneumonia": proposal.n_positive, "normal": proposal.n_negative, "least": MIN_PER_CLASS}
        return proposal, why
    return proposal, ""


def adopt(*, user: AnyUser, target_sensitivity: float, reason: str, origin: Origin = NO_ORIGIN) -> OperatingPoint:
    """Adopt the proposal for `target_sensitivity` at the user's clinic (a clinic admin's act); it becomes the
    clinic's target. Raises NotEnoughEvidence when the evidence cannot support it."""
    membership = require_membership(user, Role.ADMIN)
    clinic = membership.clinic
    now = standing(clinic, target_sensitivity)
    proposal = now.proposal
    if proposal is None or not proposal.enough:
        raise NotEnoughEvidence(now.why_not)
    evidence = {
        **proposal.as_dict(),
        "rule": PROPOSAL_RULE,
        "acceptance_studies": now.n_acceptance,
        "verification_studies": now.n_verification,
        "study_ids": list(now.truth.study_ids),
    }
    fields = {
        "model_version": now.model_version,
        "slope": proposal.platt_a,
        "intercept": proposal.platt_b,
        "threshold": proposal.threshold,
        "target_sensitivity": target_sensitivity,
        "evidence": evidence,
    }
    with transaction.atomic():  # the clinic's row stays locked (_new_version): one site-settings row, never two
        row = _new_version(clinic, membership.user, reason, fields)
        SiteSettings.objects.update_or_create(clinic=clinic, defaults={"target_sensitivity": target_sensitivity})
    _audit(user, row, "adopted", reason, origin)
    return row


def revert(*, user: AnyUser, reason: str, origin: Origin = NO_ORIGIN) -> OperatingPoint | None:
    """Undo the last change: retire the point in force and reinstate the one it replaced (retired when it came
    in) if that was for the same model version (as a new version); else, as when nothing was in force before it
    (the admin had reverted to the card), go back to the model card's point (None)."""
    membership = require_membership(user, Role.ADMIN)
    clinic = membership.clinic
    with transaction.atomic():
        Clinic.objects.select_for_update().filter(pk=clinic.pk).first()
        current = latest(clinic.pk)
        if current is None:
            return None
        earlier = (
            OperatingPoint.objects.filter(clinic=clinic, version__lt=current.version)
            .filter(model_version=current.model_version, retired_at=current.adopted_at)
            .order_by("-version")
            .first()
        )
        OperatingPoint.objects.filter(pk=current.pk).update(retired_at=timezone.now())
        if earlier is None:
            _audit(user, current, "reverted to the model card's point", reason, origin)
            return None
        fields = {
            k: getattr(earlier, k)
            for k in ("model_version", "slope", "intercept", "threshold", "target_sensitivity", "evidence")
        }
        row = _new_version(clinic, membership.user, reason, {**fields, "reinstates": earlier})
    _audit(user, row, f"reinstated version {earlier.version}", reason, origin)
    return row


def _new_version(clinic: Clinic, user: User, reason: str, fields: dict[str, object]) -> OperatingPoint:
    """A new version of the clinic's point, the one before it retired, in one transaction (the clinic's row
    locked: two admins adopting at once get consecutive versions). The one it replaces is retired at the very
    instant it is adopted: that is how revert finds it."""
    with transaction.atomic():
        Clinic.objects.select_for_update().filter(pk=clinic.pk).first()
        last = OperatingPoint.objects.filter(clinic=clinic).aggregate(v=Max("version"))["v"] or 0
        now = timezone.now()
        OperatingPoint.objects.filter(clinic=clinic, retired_at__isnull=True).update(retired_at=now)
        return OperatingPoint.objects.create(
            clinic=clinic, version=last + 1, adopted_by=user, adopted_at=now, reason=reason, **fields
        )


def _audit(user: AnyUser, row: OperatingPoint, what: str, reason: str, origin: Origin) -> None:
    detail = {
        "what": what,
        "version": row.version,
        "model_version": row.model_version,
        "threshold": round(row.threshold, 4),
        "target_sensitivity": row.target_sensitivity,
        "reason": reason,
    }
    audit.record(user, AuditAction.OPERATING_POINT, target=row, detail=detail, origin=origin)
