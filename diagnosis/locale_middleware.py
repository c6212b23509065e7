"""Each request's language and time zone, for a signed-in member: after AuthenticationMiddleware (it needs the user)
and Django's LocaleMiddleware (whose choice from the language cookie and Accept-Language it overrides).

Language: the member's own choice (Membership.language), else the clinic's (Clinic.language), else what
LocaleMiddleware found (the cookie, then the browser's Accept-Language); anonymous pages keep the browser's.
Time zone: the member's clinic's (Clinic.time_zone), else the installation's (TZ_NAME).

Neither is deactivated after the response: a streamed CSV export writes its rows after this returns, still in the
request's zone and language; the next request on the thread activates its own.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone, translation

from diagnosis.access import membership_of


class ClinicLocaleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        membership = membership_of(user) if user is not None else None
        zone = settings.TIME_ZONE
        if membership is not None:
            clinic = membership.clinic
            zone = clinic.time_zone or zone
            language = membership.language or clinic.language
            if language and translation.check_for_language(language):
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # a zone this machine's tzdata lost: the installation's
            timezone.activate(zoneinfo.ZoneInfo(settings.TIME_ZONE))
        response = self.get_response(request)
        # LocaleMiddleware (outside this one) only sets it when unset; the active language is the one rendered.
        response.headers["Content-Language"] = translation.get_language()
        return response
