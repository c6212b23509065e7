"""Settings. The only module that reads os.environ; bad values fail loudly at start-up.

Embedded defaults work on a laptop (SQLite and a media folder under DATA_DIR); production switches
to PostgreSQL, external Redis and S3-compatible storage through environment variables alone.
"""

from __future__ import annotations

import logging
import os
import re
import zoneinfo
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from diagnosis.task_names import (
    INFERENCE_QUEUE,
    MAINTENANCE_QUEUE,
    PRUNE_ORPHAN_FILES,
    RUN_INFERENCE,
    SEND_RESULTS,
    SEND_REVIEW,
    SWEEP_STALE_JOBS,
)
from worker.ml.limits import DEFAULT_MAX_PIXELS
from worker.ml.spec import DEFAULT_MODEL_DIR
from xrayweb.paths import BASE_DIR, DEFAULT_AE_TITLE, DEFAULT_DICOM_PORT, data_dir


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} must be <= {maximum}")
    return value


def env_str(name: str, default: str, valid: re.Pattern[str], meaning: str) -> str:
    raw = os.environ.get(name) or default
    if not valid.fullmatch(raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not {meaning}")
    return raw


def env_time_zone(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from exc
    return raw


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    if raw and not raw.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a URL starting with {' or '.join(schemes)}://")
    return raw


# DRF's throttle rate: requests per second, minute, hour or day.
RATE = re.compile(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)")
LOG_LEVELS = re.compile("|".join(logging.getLevelNamesMapping()))

DATA_DIR = data_dir(os.environ)
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("DJANGO_INSECURE_DEV_KEY", False):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (production), or use `make run`, which generates one."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "diagnosis",
]

MIDDLEWARE = [
    "diagnosis.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "xrayweb.urls"
WSGI_APPLICATION = "xrayweb.wsgi.application"
ASGI_APPLICATION = "xrayweb.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "diagnosis.context_processors.membership",
            ],
        },
    },
]

DATABASE_URL = env_url("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}", ("sqlite", "postgres", "postgresql"))
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server and the worker write concurrently: wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not :memory:, so that a real worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_time_zone("TZ_NAME", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or DATA_DIR / "media")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"  # the one declaration (apps do not repeat it)

S3_BUCKET = os.environ.get("S3_BUCKET", "")
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_url("S3_ENDPOINT_URL", "", ("http", "https")) or None,
            "region_name": os.environ.get("S3_REGION") or None,
            "access_key": os.environ.get("S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "diagnosis:home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
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
# Invitations go by SMTP when EMAIL_HOST is set; otherwise to the log (the admin also sees the link on screen).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# Without SMTP a message is printed to the log only in development (DJANGO_DEBUG=1): a set-password link in a
# production log is an account takeover waiting to happen. The admin sees each invitation link on screen.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.dummy.EmailBackend"
)
# Self-service password reset by e-mail only when e-mail can be sent; otherwise a clinic admin re-issues a link.
PASSWORD_RESET_BY_EMAIL = bool(EMAIL_HOST)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "xray-portal@localhost"
if env_bool("DJANGO_SECURE_COOKIES", False):  # served over HTTPS (behind a proxy that sets X-Forwarded-Proto)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
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
    "default-src": [SELF],
    "script-src": [SELF],
    "img-src": [SELF, "data:", "blob:"],
    "style-src": [SELF, "'unsafe-inline'"],
    "object-src": [NONE],
    "base-uri": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}
CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP}

# Uploads: files bigger than this many bytes are refused before they are read into a study.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 30 * 1024 * 1024, minimum=1024)
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS, minimum=1024)
MAX_FILES_PER_UPLOAD = env_int("MAX_FILES_PER_UPLOAD", 50, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MAX_FILES_PER_REQUEST", 1000, minimum=1)
MAX_ARCHIVE_BYTES = env_int("MAX_ARCHIVE_BYTES", 4 * 1024 * 1024 * 1024, minimum=1024)
MAX_ARCHIVE_FILES = env_int("MAX_ARCHIVE_FILES", 10_000, minimum=1)  # files in one zip (MAX_FILES_PER_REQUEST: parts)
# A request of at most FILE_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MB) is held in memory: a chunk of 50 small
# radiographs parses in 40 % of the time it took through temporary files. Above that every uploaded file spools to
# a temporary file, so a 1,000-image request is never held in memory at once; no more of a file than
# MAX_UPLOAD_BYTES + 1 reaches the disk.
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "diagnosis.limits.CappedTemporaryFileUploadHandler",
]
# A request that declares more than this (Content-Length) is refused with 413 before any of it is read.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 2 * 1024 * 1024 * 1024, minimum=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# DICOM (issue 14): the stored copy is de-identified unless DICOM_KEEP_IDENTIFIERS; the C-STORE listener's AE title
# and port (`manage.py dicom_listener`; 0: a free port); how long a results send may take.
DICOM_KEEP_IDENTIFIERS = env_bool("DICOM_KEEP_IDENTIFIERS", False)
DICOM_AE_TITLE = env_str(
    "DICOM_AE_TITLE", DEFAULT_AE_TITLE, re.compile(r"[ -~]{1,16}"), "an AE title (1-16 ASCII characters)"
)
DICOM_PORT = env_int("DICOM_PORT", DEFAULT_DICOM_PORT, minimum=0, maximum=65535)
DICOM_SEND_TIMEOUT = env_int("DICOM_SEND_TIMEOUT", 30, minimum=1)

# Model shipped with the worker (a folder holding card.json); the worker verifies its sha256.
MODEL_DIR = Path(os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR)
if not (MODEL_DIR / "card.json").is_file():
    raise ImproperlyConfigured(f"MODEL_DIR={str(MODEL_DIR)!r} holds no card.json (the model card)")
# Going live at a site: the share of each call (NORMAL and PNEUMONIA apart) drawn at random into a clinic's
# verification sample when its result is recorded, unless the clinic's site settings say otherwise.
VERIFICATION_SAMPLE_PERCENT = env_int("VERIFICATION_SAMPLE_PERCENT", 10, minimum=0, maximum=100)
VERIFICATION_SAMPLE_RATE = VERIFICATION_SAMPLE_PERCENT / 100

# Celery: Redis is the broker only; the database is the record of every job.
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss"))
# Batched inference (issue 12): one task claims up to INFERENCE_BATCH_SIZE queued jobs (interactive first, bulk
# round-robin between clinics) and judges them in one compiled pass; 1 is the per-job path. A batch of bulk jobs
# only may wait up to INFERENCE_BATCH_WAIT_MS for more to arrive; a batch holding an interactive study never waits.
INFERENCE_BATCH_SIZE = env_int("INFERENCE_BATCH_SIZE", 32, minimum=1, maximum=512)  # at most: one task's memory
INFERENCE_BATCH_WAIT_MS = env_int("INFERENCE_BATCH_WAIT_MS", 100, minimum=0, maximum=5000)
# Threads that decode and render a batch's images beside the model: 1 on a CPU worker (the model's framework owns
# the cores), several on a GPU worker, where decoding and rendering are what is left (issue 12's GPU measurement).
INFERENCE_THREADS = env_int("INFERENCE_THREADS", 1, minimum=1, maximum=64)
# While jobs are queued, a task goes on claiming batches for up to this many seconds, and judges each while a thread
# draws and stores the one before (diagnosis.tasks). 0: one batch a task, drawn after it is judged.
# At most a minute: the other tasks of the queue wait behind it.
INFERENCE_DRAIN_SECONDS = env_int("INFERENCE_DRAIN_SECONDS", 10, minimum=0, maximum=60)
# Threads that read a batch's images from storage and write its results' files (diagnosis.result_files.storage_map). Object
# storage answers each call in tens of milliseconds: a GPU batch of 128 read and written one file at a time would
# wait seconds for it. On a local disk one thread is right (the calls take microseconds).
STORAGE_THREADS = env_int("STORAGE_THREADS", 16 if S3_BUCKET else 1, minimum=1, maximum=64)
# A task judging one study may take INFERENCE_TIME_LIMIT; a batch, INFERENCE_SECONDS_PER_STUDY more for each further
# study it may hold (decoding and rendering a 50-megapixel image take about a second on a CPU). A fixed limit
# failed every study of a big batch of big images (a GPU worker's 512) although none of them was at fault.
INFERENCE_TIME_LIMIT = env_int("INFERENCE_TIME_LIMIT", 120, minimum=10)
INFERENCE_SECONDS_PER_STUDY = 3
# A batch task that goes on with further batches claims the last of them at most INFERENCE_DRAIN_SECONDS in.
INFERENCE_TASK_TIME_LIMIT = INFERENCE_TIME_LIMIT + INFERENCE_SECONDS_PER_STUDY * (INFERENCE_BATCH_SIZE - 1)
INFERENCE_TASK_TIME_LIMIT += INFERENCE_DRAIN_SECONDS if INFERENCE_BATCH_SIZE > 1 else 0
SWEEP_INTERVAL = env_int("SWEEP_INTERVAL", 30, minimum=1)
QUEUED_STALE_SECONDS = env_int("QUEUED_STALE_SECONDS", 120, minimum=1)
RUNNING_STALE_SECONDS = env_int("RUNNING_STALE_SECONDS", INFERENCE_TASK_TIME_LIMIT + 60, minimum=1)
MAX_ATTEMPTS = env_int("MAX_ATTEMPTS", 3, minimum=1)

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT = "xrayweb.broker:Transport"  # Kombu's Redis transport, fixed for acks a stall times out
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must not hang an upload: publish fails fast, the sweeper re-enqueues later. A Redis that is
# down refuses the connection at once; one that is stalled (SIGSTOP, a full network buffer) accepts it and
# never answers, so every socket operation, not only the connect, is time-limited, and so is the publish.
BROKER_SOCKET_TIMEOUT = 1.0
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_SOCKET_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": RUNNING_STALE_SECONDS * 2,
    "socket_timeout": BROKER_SOCKET_TIMEOUT,
    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 1, minimum=1)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60.0
# Named so that `celery purge` and app.control.purge() know them, not only the workers consuming them.
CELERY_TASK_DEFAULT_QUEUE = INFERENCE_QUEUE
CELERY_TASK_QUEUES = (Queue(INFERENCE_QUEUE), Queue(MAINTENANCE_QUEUE))
CELERY_TASK_ROUTES = {
    RUN_INFERENCE: {"queue": INFERENCE_QUEUE},
    SWEEP_STALE_JOBS: {"queue": MAINTENANCE_QUEUE},
    SEND_RESULTS: {"queue": MAINTENANCE_QUEUE},
    SEND_REVIEW: {"queue": MAINTENANCE_QUEUE},
    PRUNE_ORPHAN_FILES: {"queue": MAINTENANCE_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": SWEEP_STALE_JOBS, "schedule": float(SWEEP_INTERVAL)},
    # At a time of day, not every 24 h from beat's start: a service restarted more often than daily would never run it.
    "prune-orphan-files": {"task": PRUNE_ORPHAN_FILES, "schedule": crontab(hour=3, minute=17)},
}
CELERY_TASK_ALWAYS_EAGER = False

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

LOG_LEVEL = env_str("LOG_LEVEL", "INFO", LOG_LEVELS, "a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "xrayweb.logformat.NoTracebackForClientErrors"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {
        "handlers": ["console"],
        "level": LOG_LEVEL,
    },
    # django-axes logs every login at INFO; the audit trail already records them. Lockouts are WARNING.
    "loggers": {"axes": {"level": "WARNING"}},
}
