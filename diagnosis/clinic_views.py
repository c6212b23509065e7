"""The clinic's pages: worklist, dashboard, audit trail and people. Parse, check the role, call one
service or selector, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.contrib.auth.views import PasswordResetConfirmView
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext, pgettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnosis import audit, audit_words, charts, exports, people, selectors
from diagnosis.access import require_membership, role_required
from diagnosis.audit import Origin
from diagnosis.filters import AuditFilter, WorklistFilter, worklist_params
from diagnosis.forms import ActiveForm, InviteForm, RoleForm
from diagnosis.models import Membership, Role
from diagnosis.presenters import intended_population, is_borderline, page_query, sort_links, worklist_query
from diagnosis.site import monitoring


@role_required()
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    filterset = WorklistFilter(worklist_params(request.GET), queryset=selectors.worklist(request.user))
    page = Paginator(filterset.qs, 25).get_page(request.GET.get("page"))
    context = {"filter": filterset, "page": page, "query": page_query(request), "population": intended_population(),
               "sorting": sort_links(request), "list_query": worklist_query(request),
               "filters_set": sum(1 for key, value in request.GET.items() if value and key != "page")}  # fmt: skip
    return render(request, "diagnosis/worklist.html", context)


@role_required()
@require_GET
def worklist_export(request: HttpRequest) -> StreamingHttpResponse:
    """The worklist with its current filters and order, every page of it, as CSV (audited)."""
    filterset = WorklistFilter(worklist_params(request.GET), queryset=selectors.worklist(request.user))
    rows = exports.study_rows(filterset.qs.iterator(), borderline=is_borderline)
    return exports.csv_response(request, "worklist", rows)


@role_required()
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    board = selectors.dashboard(request.user, days=30)
    # The day's label in the chart: month-day in English, day/month where the locale writes the day first.
    labels = [d.day.strftime(pgettext("chart day, strftime format", "%m-%d")) for d in board.days]
    x_title = pgettext("chart axis", "day (month-day)")
    per_day = charts.stacked(
        labels,
        [
            (outcome, [getattr(d, outcome) for d in board.days])
            for outcome in ("normal", "pneumonia", "rejected", "failed")
        ],
        label_every=7,
        x_title=x_title,
        y_title=pgettext("chart axis", "studies"),
        names=OUTCOMES,
    )
    rates = [d.pneumonia / (d.normal + d.pneumonia) if d.normal + d.pneumonia else 0.0 for d in board.days]
    positive = charts.stacked(
        labels, [("pneumonia", rates)], maximum=1.0, label_every=7, percent=True,
        x_title=x_title, y_title=pgettext("chart axis", "called pneumonia"), names=OUTCOMES,
    )  # fmt: skip
    a = board.agreement
    agreement = charts.stacked(
        [_("accuracy"), _("sensitivity"), _("specificity"), _("review coverage")],
        [("metric", [v or 0.0 for v in (a.accuracy, a.sensitivity, a.specificity, board.review_coverage)])],
        maximum=1.0,
        percent=True,
        y_title=pgettext("chart axis", "share"),
        names={"metric": _("metric")},
    )
    clinic = require_membership(request.user).clinic
    try:
        health = monitoring.series(clinic, days=14)
    except LookupError:  # a model card without a monitoring reference
        health = []
    context = {
        "board": board,
        "health": health,
        "per_day": per_day,
        "positive": positive,
        "agreement": agreement,
        "clinic": clinic,
        "first_day": board.days[0].day,
        "last_day": board.days[-1].day,
    }
    return render(request, "diagnosis/dashboard.html", context)


# The dashboard's outcomes by their css class, as the bars' titles name them.
OUTCOMES = {
    "normal": pgettext_lazy("outcome", "normal"),
    "pneumonia": pgettext_lazy("outcome", "pneumonia"),
    "rejected": pgettext_lazy("outcome", "rejected"),
    "failed": pgettext_lazy("outcome", "failed"),
}


@role_required(Role.ADMIN)
@require_GET
def audit_trail(request: HttpRequest) -> HttpResponse:
    filterset = AuditFilter(request.GET, queryset=selectors.audit_events(request.user))
    page = Paginator(filterset.qs, 50).get_page(request.GET.get("page"))
    listed = request.GET.copy()
    listed["thumbnails"] = "listed"
    listed.pop("page", None)
    context = {"filter": filterset, "page": page, "lines": audit_words.lines(page), "query": page_query(request),
               "hidden_thumbnails": filterset.thumbnail_loads(), "list_thumbnails": listed.urlencode()}  # fmt: skip
    return render(request, "diagnosis/audit.html", context)


@role_required(Role.ADMIN)
@require_GET
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered trail as CSV; the export itself is recorded first, so it appears in what it exports."""
    filterset = AuditFilter(request.GET, queryset=selectors.audit_events(request.user))
    return exports.csv_response(request, "audit", audit.csv_rows(filterset.qs.iterator()))


class SetPasswordView(PasswordResetConfirmView):
    """The one-time link to set a password (an invitation, or Reset access): not for a deactivated account, whose
    link says so instead of opening the form."""

    deactivated = False

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        if user is not None and not user.is_active:
            self.deactivated = True
            return None
        return user

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "deactivated": self.deactivated}


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def people_list(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    invitation = None
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        try:
            invitation = people.invite(
                cast(User, request.user),
                username=d["username"],
                full_name=d["full_name"],
                email=d["email"],
                role=d["role"],
                site_url=request.build_absolute_uri("/"),
                origin=Origin.of(request),
            )
            form = InviteForm()
        except people.PeopleError as exc:
            form.add_error("username", str(exc))
    context = {"members": selectors.members(request.user), "form": form, "invitation": invitation, "roles": Role}
    return render(request, "diagnosis/people.html", context, status=400 if form.errors else 200)


@role_required(Role.ADMIN)
@require_POST
def person_role(request: HttpRequest, user_id: int) -> HttpResponse:
    return _change(
        request,
        user_id,
        RoleForm,
        "role",
        people.set_role,
        said=lambda name, role: _("%(name)s is now %(role)s.") % {"name": name, "role": Role(role).label},
    )


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def person_active(request: HttpRequest, user_id: int) -> HttpResponse:
    """GET: the confirmation a deactivation asks for, naming the person and what stops. POST: deactivate or
    reactivate, and say so by name."""
    member = selectors.get_member(request.user, user_id)
    access = people.access_of(member)
    if request.method == "GET":
        context = {"member": member, "name": people.person_name(member.user), "access": access}
        return render(request, "diagnosis/people_deactivate.html", context)
    return _change(request, user_id, ActiveForm, "active", people.set_active, said=lambda name, active: (
        _("Reactivated %(name)s: they can log in again (if they never set a password, give them a new link: Reset "
          "access).") % {"name": name} if active
        else _("Deactivated %(name)s: %(what_stops)s.") % {"name": name, "what_stops": access.words()}
    ))  # fmt: skip


@role_required(Role.ADMIN)
@require_POST
def person_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """Unlock a locked-out member and show a new set-password link (instead of self-service reset by e-mail)."""
    member = selectors.get_member(request.user, user_id)
    try:
        invitation = people.reset_access(
            cast(User, request.user), member, request.build_absolute_uri("/"), Origin.of(request)
        )
    except people.PeopleError as exc:
        messages.error(request, str(exc))
        return redirect("diagnosis:people")
    context = {"members": selectors.members(request.user), "form": InviteForm(), "invitation": invitation,
               "reset": True, "roles": Role}  # fmt: skip
    return render(request, "diagnosis/people.html", context)


def _change(
    request: HttpRequest,
    user_id: int,
    form_class: type[RoleForm | ActiveForm],
    field: str,
    apply: Callable[[User, Membership, Any, Origin], None],
    *,
    said: Callable[[str, Any], str],
) -> HttpResponse:
    """A member of the admin's clinic (404 otherwise) changed by `apply` with the form's one field; said(the
    person's name, the value) is the message that reports it."""
    member = selectors.get_member(request.user, user_id)
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _("Invalid change."))
        return redirect("diagnosis:people")
    try:
        apply(cast(User, request.user), member, form.cleaned_data[field], Origin.of(request))
    except people.PeopleError as exc:
        messages.error(request, str(exc))
        return redirect("diagnosis:people")
    messages.success(request, said(people.person_name(member.user), form.cleaned_data[field]))
    return redirect("diagnosis:people")
