"""The REST API (Django REST framework) and its OpenAPI schema (drf-spectacular)."""

from __future__ import annotations

import re

from xrayweb.env import env_str

# DRF's throttle rate: requests per second, minute, hour or day.
RATE = re.compile(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "diagnosis.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["diagnosis.api.permissions.IsClinicMember"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "diagnosis.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "diagnosis.api.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_RATE", "600/min", RATE, "a rate such as 600/min (per s, min, hour or day)"),
        "submissions": env_str("API_SUBMIT_THROTTLE_RATE", "120/min", RATE, "a rate such as 120/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chest X-ray pneumonia API",
    # Files are binary in requests (not "uri"), so clients and the fuzzer send them as files.
    "COMPONENT_SPLIT_REQUEST": True,
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"LabelEnum": "diagnosis.models.Label"},
}
