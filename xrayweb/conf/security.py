"""Sign-in, sessions, cookies and response headers: login lockout, the audit trail's client address, HTTPS and
the Content-Security-Policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from csp import constants as csp

from xrayweb.conf.tasks import BROKER_SOCKET_TIMEOUT, REDIS_URL
from xrayweb.env import env_bool, env_int, env_text

# django-axes first: a locked-out user or address is refused before the password is even checked.
AUTHENTICATION_BACKENDS = ["diagnosis.lockout.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either: per account, and per address
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "diagnosis.audit.client_address"  # the address the audit trail records
AXES_VERBOSE = False
# Invalid API tokens: at most this many per minute from one address, then 429 (diagnosis.api.authentication).
API_BAD_TOKEN_LIMIT = env_int("API_BAD_TOKEN_LIMIT", 20, minimum=1)
# Failed logins count in the database (django-axes' handler), shared by every web worker.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# The rate limits (DRF's throttles, the bad-token counter above) count in a cache shared by every web worker: Django's
# default keeps one in each process's memory, so gunicorn's workers each allowed the limit (a red-team pass: 40 bad
# tokens before the first 429). Redis when REDIS_URL is set (the broker's server, under keys of their own; failing
# open: xrayweb.cache), else the database (its table made by `migrate`: diagnosis.apps).
CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "xray_cache"}
}
# Enough for every address and user counted in a window: past MAX_ENTRIES Django drops a third of the keys.
CACHES["default"]["OPTIONS"] = {"MAX_ENTRIES": 100_000}
if env_text("REDIS_URL"):
    CACHES["default"] = {
        "BACKEND": "xrayweb.cache.FailOpenRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "xray-cache",
        "OPTIONS": {"socket_timeout": BROKER_SOCKET_TIMEOUT, "socket_connect_timeout": BROKER_SOCKET_TIMEOUT},
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "diagnosis:home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
# The language switcher's cookie (diagnosis.locale_views.set_language): read by the server only, sent same-site.
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Clinic workstations are shared: a login lasts a working shift, not Django's default two weeks.
SESSION_COOKIE_AGE = env_int("SESSION_SECONDS", 12 * 3600, minimum=60)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind a reverse proxy that sets X-Forwarded-For, the audit trail records the client's address from it.
AUDIT_TRUST_X_FORWARDED_FOR = env_bool("AUDIT_TRUST_X_FORWARDED_FOR", False)
# How many reverse proxies, each appending to X-Forwarded-For, stand in front: the client is that many from the right.
AUDIT_PROXY_COUNT = env_int("AUDIT_PROXY_COUNT", 1, minimum=1)
# An invitation link (to set a password) stays valid this long.
PASSWORD_RESET_TIMEOUT = env_int("INVITATION_VALID_SECONDS", 7 * 24 * 3600, minimum=60)
if env_bool("DJANGO_SECURE_COOKIES", False):  # served over HTTPS (behind a proxy that sets X-Forwarded-Proto)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", False)
# HSTS for every subdomain and the browsers' preload list bind the whole domain, not this service: the operator
# opts in (HSTS_INCLUDE_SUBDOMAINS, HSTS_PRELOAD), so `check --deploy` does not warn about them.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# Content-Security-Policy (django-csp), enforced: no plugins, no framing, same-origin everything, and scripts
# only from the static files (no inline script or event handler: the pages pass data by data- attributes).
# Styles keep 'unsafe-inline' for the result bar's computed positions (style attributes, no script).
# tests/e2e/test_clinician_day.py fails when an inline script comes back.
_CSP = {
    "default-src": [csp.SELF],
    "script-src": [csp.SELF],
    "img-src": [csp.SELF, "data:", "blob:"],
    "style-src": [csp.SELF, "'unsafe-inline'"],
    "object-src": [csp.NONE],
    "base-uri": [csp.SELF],
    "form-action": [csp.SELF],
    "frame-ancestors": [csp.NONE],
}
CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP}
