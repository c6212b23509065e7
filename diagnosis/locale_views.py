"""The language switcher's view (every page's header) and the clinic admin's language and time-zone settings."""

from __future__ import annotations

import time
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import check_for_language, get_language
from django.views.decorators.http import etag, require_GET, require_POST
from django.views.i18n import JavaScriptCatalog

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
    """Switch the language: the cookie for everyone (the login page follows it)."""
    response = HttpResponseRedirect(_safe_next(request))
    language = request.POST.get("language", "")
    if language in dict(settings.LANGUAGES) and check_for_language(language):
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
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
