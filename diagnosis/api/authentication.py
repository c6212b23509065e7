"""Token authentication that rate-limits guessing: invalid tokens are counted per client address, and past
API_BAD_TOKEN_LIMIT a minute that address gets 429 with Retry-After, even for a token it then gets right."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from diagnosis.audit import client_address

WINDOW_SECONDS = 60


def _key(request: Request) -> str:
    return f"bad-token:{client_address(request._request) or 'unknown'}"


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        if not authentication.get_authorization_header(request):
            return None
        key = _key(request)
        if cache.get(key, 0) >= settings.API_BAD_TOKEN_LIMIT:
            raise exceptions.Throttled(WINDOW_SECONDS, gettext("Too many invalid tokens from this address."))
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            if not cache.add(key, 1, WINDOW_SECONDS):
                cache.incr(key)
            raise
