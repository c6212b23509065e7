"""The page "Model at this site": local performance, the operating point (adopt, revert) and model health."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from diagnosis.access import require_membership, role_required
from diagnosis.audit import Origin
from diagnosis.models import NOTE_MAX_LENGTH, Role, printable
from diagnosis.numbers import percent
from diagnosis.site import monitoring, operating_points, performance, rule_words
from worker.ml import site

PERIODS = {"30": 30, "90": 90, "365": 365, "all": None}
SIDE = 200  # the charts' square, in SVG units


class AdoptForm(forms.Form):
    target_sensitivity = forms.FloatField(label=_("Target sensitivity"), min_value=0.5, max_value=0.995)
    reason = forms.CharField(
        label=_("Reason"), max_length=NOTE_MAX_LENGTH, validators=[printable], widget=forms.Textarea(attrs={"rows": 2})
    )


class RevertForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=NOTE_MAX_LENGTH, validators=[printable], widget=forms.Textarea(attrs={"rows": 2})
    )


@role_required(Role.REVIEWER)
def site_page(request: HttpRequest) -> HttpResponse:
    clinic = require_membership(request.user).clinic
    period = request.GET.get("period", "all")
    days = PERIODS.get(period)
    standing = operating_points.standing(clinic)
    measured = performance.measure(clinic, days)
    try:
        health = monitoring.in_words(monitoring.health(clinic))
    except LookupError:
        health = None
    context: dict[str, Any] = {
        "clinic": clinic,
        "period": period if period in PERIODS else "all",
        "periods": list(PERIODS),
        "standing": standing,
        "measured": measured,
        "sources": [(str(performance.SOURCES[name]), perf, _plots(perf)) for name, perf in measured.by_source.items()],
        "health": health,
        "rules": rule_words.rules(),
        "adopt_form": AdoptForm(initial={"target_sensitivity": standing.target_sensitivity}),
        "revert_form": RevertForm(auto_id="id_revert_%s"),  # the adopt form has a reason too: ids stay unique
        "history": operating_points.history(clinic),
    }
    return render(request, "diagnosis/site.html", context)


def _plots(perf: site.Performance | None) -> dict[str, str] | None:
    """SVG coordinates of the ROC curve and the reliability diagram (y grows downwards in SVG)."""
    if perf is None:
        return None
    roc = " ".join(f"{x * SIDE:.1f},{(1 - y) * SIDE:.1f}" for x, y in zip(perf.roc.fpr, perf.roc.tpr, strict=True))
    dots = [
        f"{b.mean_predicted * SIDE:.1f},{(1 - b.observed) * SIDE:.1f}"
        for b in perf.reliability
        if b.mean_predicted is not None and b.observed is not None
    ]
    return {"roc": roc, "reliability": " ".join(dots)}


@role_required(Role.ADMIN)
@require_POST
def site_adopt(request: HttpRequest) -> HttpResponse:
    def act(data: dict[str, Any]) -> str:
        row = operating_points.adopt(user=request.user, origin=Origin.of(request), **data)
        return gettext("Operating point version %(version)s adopted: threshold %(threshold)s.") % {
            "version": row.version,
            "threshold": percent(row.threshold, 1),
        }

    return _posted(request, AdoptForm(request.POST), act, gettext("Not adopted"))


@role_required(Role.ADMIN)
@require_POST
def site_revert(request: HttpRequest) -> HttpResponse:
    def act(data: dict[str, Any]) -> str:
        row = operating_points.revert(user=request.user, origin=Origin.of(request), **data)
        if row is None:
            return gettext("Reverted. In force now: the model card's threshold, not validated at this site.")
        return gettext("Reverted. In force now: version %(version)s, threshold %(threshold)s.") % {
            "version": row.version,
            "threshold": percent(row.threshold, 1),
        }

    return _posted(request, RevertForm(request.POST), act, gettext("Not reverted"))


def _posted(request: HttpRequest, form: forms.Form, act: Callable[[dict[str, Any]], str], refused: str) -> HttpResponse:
    """The change a valid form asks for, its outcome as a message on the site page."""
    if not form.is_valid():
        messages.error(request, f"{refused}: {_errors(form)}")
    else:
        try:
            messages.success(request, act(form.cleaned_data))
        except operating_points.NotEnoughEvidence as exc:
            messages.error(request, f"{refused}. {exc}")
    return redirect("diagnosis:site")


def _errors(form: forms.Form) -> str:
    return "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
