"""The language switcher's view (every page's header), the JavaScript strings, and the clinic admin's language and
time-zone settings. Parse, check, call diagnosis.locale_settings, answer."""

from __future__ import annotations

import time
from typing import Literal, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language, get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import etag, require_GET, require_http_methods, require_POST
from django.views.i18n import JavaScriptCatalog

from diagnosis import locale_settings
from diagnosis.access import require_membership, role_required
from diagnosis.audit import Origin
from diagnosis.models import Role
from diagnosis.models.clinics import time_zone_names, validate_time_zone

# The compiled catalogs change only with a deploy, i.e. a restart: each language's script is built once per process.
STARTED = time.time_ns()
_scripts: dict[str, bytes] = {}
_catalog = JavaScriptCatalog.as_view(domain="djangojs", packages=["diagnosis"])


def _safe_next(request: HttpRequest) -> str:
    """Back to the page the switch was made on, if it is on this site; else home (no open redirect)."""
    target = request.POST.get("next") or request.headers.get("referer") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else reverse("diagnosis:home")


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the language: saved as the member's own (kept on every device they sign in on), and as the language
    cookie for everyone, so that the login page after signing out follows the switch too."""
    response = HttpResponseRedirect(_safe_next(request))
    language = request.POST.get("language", "")
    if language in dict(settings.LANGUAGES) and check_for_language(language):
        locale_settings.choose_language(request.user, language)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=cast(Literal["Lax", "Strict", "None"], settings.LANGUAGE_COOKIE_SAMESITE),
        )
    return response


def _catalog_tag(request: HttpRequest) -> str:
    return f"{get_language()}-{STARTED}"


@require_GET
@etag(_catalog_tag)
def javascript_catalog(request: HttpRequest) -> HttpResponse:
    """The JavaScript strings in the active language (Django's djangojs catalog of the diagnosis app), a same-origin
    script so that CSP's script-src 'self' holds. Cached per language in the process; the browser asks again on each
    page (no-cache, answered 304 by the ETag) because one URL serves every language: after a switch it must not keep
    the old language's script."""
    language = get_language()
    if language not in _scripts:
        _scripts[language] = cast(HttpResponse, _catalog(request)).content
    response = HttpResponse(_scripts[language], content_type="text/javascript; charset=utf-8")
    patch_cache_control(response, no_cache=True, private=True)
    return response


class ClinicLocaleForm(forms.Form):
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        required=False,
        help_text=gettext_lazy("What members see unless they chose their own language in the header."),
    )
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        validators=[validate_time_zone],
        help_text=gettext_lazy("Every page, report, export and the dashboard's days are in this zone."),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        language = cast(forms.ChoiceField, self.fields["language"])
        language.choices = [("", _("Each person's browser language")), *settings.LANGUAGES]
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = [(z, z) for z in sorted(time_zone_names())]


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def clinic_settings(request: HttpRequest) -> HttpResponse:
    """The clinic admin's page for the clinic's default language and its time zone."""
    clinic = require_membership(request.user, Role.ADMIN).clinic
    form = ClinicLocaleForm(request.POST or None, initial={"language": clinic.language, "time_zone": clinic.time_zone})
    if form.is_bound and form.is_valid():
        locale_settings.set_clinic_locale(
            cast(User, request.user),
            language=form.cleaned_data["language"],
            time_zone=form.cleaned_data["time_zone"],
            origin=Origin.of(request),
        )
        messages.success(request, _("Saved the clinic's language and time zone."))
        return redirect("diagnosis:clinic_settings")
    return render(request, "diagnosis/clinic_settings.html", {"form": form, "clinic": clinic})
