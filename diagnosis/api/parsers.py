"""Request parsers that turn every malformed or oversized body into a 4xx in JSON with the reason.

Django raises RequestDataTooBig, TooManyFieldsSent and TooManyFilesSent (SuspiciousOperation) from the multipart
parser, which DRF does not catch, so the API answered with Django's HTML 400 page; a deeply nested JSON body
raised RecursionError (a 500).
"""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request is too large.")
    default_code = "request_too_large"


class JSONParser(parsers.JSONParser):
    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(gettext("JSON parse error - the document is nested too deeply.")) from exc


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except TooManyFilesSent as exc:
            raise ParseError(
                gettext("Too many files: send at most %(count)s per request.")
                % {"count": settings.DATA_UPLOAD_MAX_NUMBER_FILES}
            ) from exc
        except TooManyFieldsSent as exc:
            raise ParseError(
                gettext("Too many fields: send at most %(count)s per request.")
                % {"count": settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}
            ) from exc
        except RequestDataTooBig as exc:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 2**20
            raise RequestTooLarge(
                gettext("A form field is larger than %(megabytes)s MB (files go in 'images' or 'archive').")
                % {"megabytes": f"{limit:.0f}"}
            ) from exc
