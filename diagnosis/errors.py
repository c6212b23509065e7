"""The 500 handler: a database outage (PostgreSQL restarting, unreachable) answers 503 with Retry-After, in JSON
for the API, instead of a 500; the study data is safe in the database and the client should simply retry."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy
from django.views import defaults

RETRY_AFTER_SECONDS = 10
UNAVAILABLE = gettext_lazy("The database is unavailable for a moment; nothing was lost. Retry shortly.")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: called inside Django's handling of an uncaught exception, so sys.exc_info() names it."""
    if not isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        return defaults.server_error(request)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": str(UNAVAILABLE)}, status=503)
    else:
        response = HttpResponse(UNAVAILABLE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
